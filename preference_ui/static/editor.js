// Syntax highlighting for the annotation editor (the textarea-over-highlight technique): a <pre> laid
// exactly over the editor's <textarea> shows the same text coloured by Prism, while the textarea, whose
// own text is transparent, keeps the caret, the selection, every key, undo and the value Gradio sends.
// The text is read as Markdown (fenced code blocks in their language) or, when it has no fence and a
// line starts a Python definition or import, as Python. It runs inside the head script that
// preference_ui/app.py builds, with `prism` (the vendored Prism of static/prism) in scope.
const EDITOR = "#wb-editor textarea";
const PLAIN_ABOVE = 30000;  // characters: a longer text is shown plain (Prism took 7 ms at 20000, 120 ms at 100000)
const PYTHON = /^(?:(?:async\s+)?def\s+\w|class\s+\w|import\s+\w|from\s+[\w.]+\s+import\b|@\w)/m;
const grammarOf = (text) => (!text.includes("```") && PYTHON.test(text) ? "python" : "markdown");
// what decides where a glyph lands: copied from the textarea, so both wrap and scroll alike
const LAYOUT = ["fontFamily", "fontSize", "fontWeight", "fontStyle", "fontVariantLigatures", "fontKerning",
  "lineHeight", "letterSpacing", "wordSpacing", "tabSize", "textIndent", "textAlign", "textTransform",
  "whiteSpace", "overflowWrap", "wordBreak", "direction", "paddingTop", "paddingRight", "paddingBottom",
  "paddingLeft", "borderTopWidth", "borderRightWidth", "borderBottomWidth", "borderLeftWidth"];
let hl = null;  // the textarea shown, its overlay, and the text the overlay holds

const place = () => {
  const {box, pre} = hl, style = getComputedStyle(box), host = box.parentElement;
  for (const p of LAYOUT) pre.style[p] = style[p];
  const px = (v) => parseFloat(v) || 0;
  // a vertical scroll bar narrows the textarea's text: narrow the overlay's text alike
  const bar = box.offsetWidth - box.clientWidth - px(style.borderLeftWidth) - px(style.borderRightWidth);
  pre.style.paddingRight = `${px(style.paddingRight) + bar}px`;
  const at = box.getBoundingClientRect(), origin = host.getBoundingClientRect();
  pre.style.left = `${at.left - origin.left - host.clientLeft}px`;
  pre.style.top = `${at.top - origin.top - host.clientTop}px`;
  pre.style.width = `${at.width}px`;
  pre.style.height = `${at.height}px`;
  pre.scrollTop = box.scrollTop;
  pre.scrollLeft = box.scrollLeft;
};

const sync = () => {
  if (!hl) return;
  const {box, pre, code} = hl, text = box.value, on = text.length <= PLAIN_ABOVE;
  box.classList.toggle("wb-hl-input", on);
  pre.hidden = !on;
  if (!on) { hl.text = null; return; }
  if (text !== hl.text) {
    const lang = grammarOf(text);
    code.className = `language-${lang}`;
    // Prism escapes the text (a typed <script> stays text); the newline keeps a final empty line,
    // which a <pre> drops and a textarea shows
    code.innerHTML = prism.highlight(text, prism.languages[lang], lang) + "\n";
    hl.text = text;
  }
  place();
};

const attach = (box) => {
  if (hl) { hl.pre.remove(); hl.observer.disconnect(); }
  const host = box.parentElement;
  if (getComputedStyle(host).position === "static") host.style.position = "relative";
  const pre = document.createElement("pre"), code = document.createElement("code");
  pre.className = "wb-hl";
  pre.setAttribute("aria-hidden", "true");
  pre.style.color = getComputedStyle(box).color;  // read before the textarea's own text turns transparent
  pre.appendChild(code);
  box.after(pre);
  box.style.caretColor = pre.style.color;
  box.spellcheck = false;
  // Gradio sets the text (a new item, a side switch) through the value property, which fires no event
  const value = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, "value");
  Object.defineProperty(box, "value", {
    configurable: true,
    get() { return value.get.call(this); },
    set(v) { value.set.call(this, v); if (hl && hl.box === this) sync(); },
  });
  box.addEventListener("input", sync);
  box.addEventListener("scroll", () => { if (hl && hl.box === box) place(); });
  const observer = new ResizeObserver(sync);
  observer.observe(box);
  observer.observe(host);
  hl = {box, pre, code, text: null, observer};
  sync();
};

// Gradio renders the textarea after the page's scripts run (and may render a new one): follow the one shown
setInterval(() => {
  const box = document.querySelector(EDITOR);
  if (box && box !== hl?.box) attach(box);
  else sync();
}, 200);
