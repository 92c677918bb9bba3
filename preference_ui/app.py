"""The annotation web app (Gradio 6 Blocks) on top of :class:`preference_ui.store.Store`.

Identity comes only from the login (``gr.Request.username``); every handler asks the store, which
refuses anything the user may not do. In the browser a refusal never raises: the handler returns
the reason into the message box beside the input that caused it (or the status line for the item
itself) and leaves every other component as it was. The answer in progress (side, strength, the
edit per side) is saved as a draft in the store on every change, so a reload or a side switch
keeps it. Submit is enabled by the page's script (``HEAD``) only while the answer shown is complete.
Prompts and responses are server-rendered, sanitised HTML (:mod:`preference_ui.render`). The editor is
a textarea (keys, undo, drafts and the stored text stay the browser's own) with a Prism-highlighted copy
of its text laid over it (``static/editor.js``: Markdown with fenced code, or Python). API
clients call the ``gr.api`` endpoints, which raise the store's refusals as errors. The server sits
behind :class:`preference_ui.security.Guard` (login rate limits, sessions, same-origin, no uploads).

The admin tab (admin accounts only; opening it takes no item) shows the statistics and runs the
admin actions: import items (pasted JSONL or a file on the server, since uploads are off), create or
reset accounts, build and download the export as a zip, and reopen an item. Every admin handler,
in the page and in the API, checks the account itself: a hidden tab is no protection, since any
logged-in client can call a page's handler by name.
"""

from __future__ import annotations

import hashlib
import html
import os
import shutil
import tempfile
from pathlib import Path

import gradio as gr
from starlette.middleware import Middleware

from preference_ui import render
from preference_ui.export import write_export
from preference_ui.items import ItemError, parse_items, prompt_text, read_items
from preference_ui.security import SESSION_SECONDS, Guard
from preference_ui.store import OUTCOME_LABELS, OUTCOMES, Claim, Store, StoreError
from workbench.config_base import ConfigError
from workbench.preferences import LEVEL_LABELS, LEVELS

LEVEL_HELP = {
    "significantly_better": "one is right and the other wrong or useless",
    "better": "clearly preferable",
    "slightly_better": "a small but real difference",
    "marginally_better": "nearly equal",
}

GUIDELINES = """
**Your task.** Read the prompt and the two responses, pick the better response and say how much
better it is. Judge correctness first (is the final `Answer:` right, does the code do what was
asked?), then clarity and length: of two correct responses prefer the shorter, cleaner one.

**Strength.** *Significantly better*: one is right and the other wrong or useless. *Better*: clearly
preferable. *Slightly better*: a small but real difference. *Marginally better*: nearly equal.

**Editing.** The editor holds the response you chose. If you can make it correct and clean, edit it:
your edit becomes the best response (edited > chosen > rejected). Leave it unchanged otherwise.
Your edit of each side is kept while you switch sides, and your answer in progress survives a reload.

**Tie / both bad / cannot judge.** When neither response is better, say so: *tie* (equally good),
*both bad* (neither is acceptable) or *cannot judge* (you cannot tell which is right). These need no
strength and are kept apart from the preferences the models train on.

**Skip** an item you do not want to answer (say why). **Flag** a broken item (bad prompt, garbled text,
something unsafe); flagging does not skip. **Undo** withdraws your last submission (after you
confirm) and brings the item back with your answer filled in. You never see other annotators' answers.
"""

def load_guidelines(path: str | Path | None = None) -> str:
    """The guidelines Markdown (``annotation.guidelines``, or the shipped :data:`GUIDELINES` for None)."""
    if path is None:
        return GUIDELINES
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"annotation.guidelines: cannot read {path}: {exc}") from None
    if not text.strip():
        raise ConfigError(f"annotation.guidelines: {path} is empty; write the guidelines in Markdown "
                          "(or set null for the shipped ones)")
    return text


def guidelines_digest(text: str) -> str:
    """What an account acknowledges: the sha256 of the guidelines text (new text, new acknowledgement)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


SHORTCUTS = """
| key | action |
| --- | --- |
| `A` / `B` | choose the left / right response (fills the editor with it) |
| `T` / `X` / `C` | tie (equally good) / both bad / cannot judge (no strength needed) |
| `1` `2` `3` `4` | significantly better / better / slightly better / marginally better |
| `E` | edit the chosen response (focus the editor; there `Tab` / `Shift+Tab` indent / dedent, `Enter` keeps the indentation) |
| `Ctrl+Enter` | submit (works inside the editor too) |
| `S` then type, `Enter` | skip with a reason |
| `F` then type, `Enter` | flag with a reason |
| `U` | undo your last submission (asks first; `Enter` confirms) |
| `G` | open or close the guidelines |
| `Esc` | leave a text box, so the keys above work again |
"""

SHORTCUT_HINT = ("Keys: `A`/`B` choose · `T` tie · `X` both bad · `C` cannot judge · `1`-`4` strength · `E` edit · `Ctrl+Enter` submit · `S` skip · "
                 "`F` flag · `U` undo · `G` guidelines · `Esc` leave a text box")

# Keys act only when no text box has the focus (except Ctrl+Enter, Esc and Enter in the reason boxes).
HEAD = """
<script>
(() => {
  const q = (sel) => document.querySelector(sel);
  const typing = (el) => el && (el.tagName === "TEXTAREA" ||
    (el.tagName === "INPUT" && !["radio", "checkbox", "button"].includes(el.type)));
  const field = (id) => q(`#${id} textarea`) || q(`#${id} input`);
  const keys = {
    a: () => q('#wb-choice input[value="A"]'), b: () => q('#wb-choice input[value="B"]'),
    t: () => q('#wb-choice input[value="tie"]'), x: () => q('#wb-choice input[value="both_bad"]'),
    c: () => q('#wb-choice input[value="cannot_judge"]'),
    1: () => q('#wb-level input[value="significantly_better"]'), 2: () => q('#wb-level input[value="better"]'),
    3: () => q('#wb-level input[value="slightly_better"]'), 4: () => q('#wb-level input[value="marginally_better"]'),
    u: () => q("#wb-undo"), g: () => q("#wb-guidelines button") || q("#wb-guidelines .label-wrap"),
  };
  const focusKeys = {e: "wb-editor", s: "wb-skip-reason", f: "wb-flag-reason"};
  // Submit is enabled only for a complete answer, judged from what the page shows at this moment
  // (answers to events sent earlier could carry an older state); the line under it says what is missing.
  const missing = () => {
    const side = q("#wb-choice input:checked")?.value;
    if (["tie", "both_bad", "cannot_judge"].includes(side)) return [];
    const out = [];
    if (!side) out.push("choose a side [A/B]");
    if (!q("#wb-level input:checked")) out.push("choose how much better [1-4]");
    // an empty response may be chosen as it is (an empty editor then means no edit)
    const empty = side && q(`#${side === "A" ? "wb-left" : "wb-right"} .wb-empty`);
    if (side && !empty && !(field("wb-editor")?.value || "").trim()) out.push("keep a response in the editor");
    return out;
  };
  const refresh = () => {
    const button = q("#wb-submit"), hint = q("#wb-submit-hint .wb-hint");
    if (!button) return;
    const open = !!field("wb-item")?.value, gaps = open ? missing() : [];
    const off = !open || gaps.length > 0;
    if (button.disabled !== off) button.disabled = off;  // unchanged: no mutation, so no observer loop
    const text = gaps.length ? `To submit, ${gaps.join(" and ")}.` : "";
    if (hint && hint.textContent !== text) hint.textContent = text;
  };
  // Submit follows the page at once, not at the next tick of a timer: a button left enabled for the
  // last item's complete answer took a click meant for nothing yet (and a click as the timer disabled
  // it was lost). A user's choice fires input/change; the app's updates (a new item, a side's text)
  // change the page's DOM, and the observer runs after Gradio's whole update is applied. The interval
  // catches what neither shows.
  document.addEventListener("input", refresh, true);
  document.addEventListener("change", refresh, true);
  new MutationObserver(refresh).observe(document.documentElement,
    {subtree: true, childList: true, characterData: true, attributes: true});
  setInterval(refresh, 100);
  // A click reaches Submit only for a complete answer, judged at the moment of the click.
  document.addEventListener("click", (ev) => {
    const button = q("#wb-submit");
    if (!button || !(ev.target instanceof Node) || !button.contains(ev.target)) return;
    refresh();
    if (button.disabled) { ev.preventDefault(); ev.stopImmediatePropagation(); }
  }, true);
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault(); document.activeElement?.blur(); q("#wb-submit")?.click(); return;
    }
    if (ev.key === "Escape") { document.activeElement?.blur(); return; }
    if (ev.key === "Enter" && ev.target.closest && ev.target.closest("#wb-skip-reason, #wb-flag-reason")) {
      const box = ev.target; setTimeout(() => box.blur(), 0); return;  // Gradio reads the value first
    }
    if (ev.target.closest && ev.target.closest("#wb-editor") && ev.target.tagName === "TEXTAREA") {
      codeKeys(ev, ev.target); return;
    }
    if (typing(ev.target) || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const k = ev.key.toLowerCase();
    if (keys[k]) { const el = keys[k](); if (el) { ev.preventDefault(); el.click(); } }
    else if (focusKeys[k]) { const el = field(focusKeys[k]); if (el) { ev.preventDefault(); el.focus(); } }
  });
  // The editor keeps code's indentation: Tab / Shift+Tab indent / dedent the selected lines by four
  // spaces, Enter starts the new line at the current line's indentation. Text goes in through
  // insertText, so the browser's undo keeps working and Gradio sees an input event.
  const INDENT = "    ";
  const codeKeys = (ev, box) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const text = box.value, start = box.selectionStart, end = box.selectionEnd;
    const lineStart = text.lastIndexOf("\\n", start - 1) + 1;
    if (ev.key === "Enter" && !ev.shiftKey) {
      const indent = text.slice(lineStart).match(/^[ \\t]*/)[0].slice(0, start - lineStart);
      if (!indent) return;
      ev.preventDefault(); document.execCommand("insertText", false, "\\n" + indent);
    } else if (ev.key === "Tab") {
      ev.preventDefault();
      if (!ev.shiftKey && start === end) { document.execCommand("insertText", false, INDENT); return; }
      const stop = end > start && text[end - 1] === "\\n" ? end - 1 : end;
      const lines = text.slice(lineStart, stop).split("\\n");
      const changed = lines.map((l) => ev.shiftKey ? l.replace(/^( {1,4}|\\t)/, "") : INDENT + l).join("\\n");
      box.setSelectionRange(lineStart, stop);
      document.execCommand("insertText", false, changed);
      box.setSelectionRange(lineStart, lineStart + changed.length);
    }
  };
  // The two responses scroll together (wide layout, where each pane has its own scroll): scrolling
  // one moves the other to the same relative position. ``moved`` is where this script last put a pane:
  // that pane's next scroll event, if it is still there, is the move's echo and is dropped (a late echo
  // would pull the first pane back); if the pane is elsewhere by then, someone scrolled it: sync.
  let moved = null;
  document.addEventListener("scroll", (ev) => {
    const pane = ev.target;
    if (!pane.matches || !pane.matches("#wb-left .wb-side, #wb-right .wb-side")) return;
    if (moved && moved.el === pane) {
      const echo = Math.abs(pane.scrollTop - moved.top) <= 2;
      moved = null;
      if (echo) return;
    }
    const other = q(pane.closest("#wb-left") ? "#wb-right .wb-side" : "#wb-left .wb-side");
    if (!other) return;
    const range = pane.scrollHeight - pane.clientHeight, otherRange = other.scrollHeight - other.clientHeight;
    if (otherRange <= 0) return;
    const top = Math.round(range > 0 ? pane.scrollTop / range * otherRange : 0);
    if (Math.abs(other.scrollTop - top) <= 2) return;
    moved = {el: other, top: top};
    other.scrollTop = top;
  }, true);
})();
</script>
"""

STATIC = Path(__file__).resolve().parent / "static"
PRISM_FILES = ("prism-core.min.js", "prism-markup.min.js", "prism-python.min.js", "prism-markdown.min.js")


def editor_head() -> str:
    """The editor's highlighting as one inline script: the vendored Prism and ``static/editor.js``.

    Prism is kept off ``window.Prism`` (Gradio's Markdown sets its own there) and in manual mode (it
    colours only what the editor asks). Inline, so the page needs no further request and nothing is
    fetched at run time.
    """
    prism = "\n;\n".join((STATIC / "prism" / name).read_text(encoding="utf-8") for name in PRISM_FILES)
    editor = (STATIC / "editor.js").read_text(encoding="utf-8")
    body = ("(() => {\n"
            "const before = Object.getOwnPropertyDescriptor(window, 'Prism');\n"
            "window.Prism = {manual: true, disableWorkerMessageHandler: true};\n"
            f"{prism}\n;\nconst prism = Prism;\n"
            "if (before) Object.defineProperty(window, 'Prism', before); else delete window.Prism;\n"
            f"{editor}}})();")
    if "</script" in body.lower():
        raise ValueError(f"{STATIC}: a script file contains '</script', which would end the page's inline script")
    return f"<script>\n{body}\n</script>\n"


CSS = render.PYGMENTS_CSS + """
.wb-msg { padding: 6px 10px; margin: 2px 0; border-radius: 4px; border-left: 4px solid; }
.wb-error { color: #8a1020; background: #fdecea; border-color: #c62828; }
.wb-ok { color: #0b5a2a; background: #e6f4ea; border-color: #2e7d32; }
.wb-info { color: #1f3a5f; background: #e8f0fb; border-color: #1565c0; }
.wb-md { line-height: 1.5; overflow-wrap: anywhere; }
.wb-md pre.wb-code, .wb-diff { background: #f6f8fa; padding: 8px; overflow-x: auto; border-radius: 4px;
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.9em; white-space: pre; }
.wb-diff { white-space: pre-wrap; }
.wb-md code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.wb-turn { border-left: 3px solid #ccd; padding-left: 8px; margin-bottom: 8px; }
.wb-role { font-size: 0.8em; text-transform: uppercase; color: #667; }
.wb-diff del { background: #ffd7d5; text-decoration: line-through; }
.wb-diff ins { background: #ccf2d1; text-decoration: none; }
.wb-side { border: 1px solid #dde; border-radius: 6px; padding: 8px; }
.wb-side h4 { margin: 0 0 6px 0; }
.wb-empty { color: #667; font-style: italic; border: 1px dashed #aab; border-radius: 4px; padding: 6px; }
.wb-table { border-collapse: collapse; width: 100%; }
.wb-table td, .wb-table th { border: 1px solid #dde; padding: 4px 6px; vertical-align: top; text-align: left; }
#wb-editor textarea { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
#wb-editor textarea.wb-hl-input { color: transparent; }
#wb-editor textarea.wb-hl-input::selection { color: transparent; background: rgba(51, 144, 255, 0.35); }
#wb-editor textarea.wb-hl-input::placeholder { color: var(--input-placeholder-color, #9ca3af); }
.wb-hl { position: absolute; margin: 0; overflow: hidden; pointer-events: none; background: transparent;
  border-style: solid; border-color: transparent; box-sizing: border-box; z-index: 1; }
.wb-hl code { font: inherit; letter-spacing: inherit; white-space: inherit; background: none; padding: 0; border: 0;
  color: inherit; }
.wb-hl .token.comment { color: #60a0b0; }
.wb-hl .token.keyword, .wb-hl .token.builtin, .wb-hl .token.boolean { color: #007020; }
.wb-hl .token.string, .wb-hl .token.code-snippet, .wb-hl .token.code-language { color: #4070a0; }
.wb-hl .token.number { color: #40a070; }
.wb-hl .token.function { color: #06287e; }
.wb-hl .token.class-name { color: #0e84b5; }
.wb-hl .token.decorator, .wb-hl .token.operator, .wb-hl .token.punctuation { color: #666666; }
.wb-hl .token.title, .wb-hl .token.list, .wb-hl .token.hr { color: #c65d09; }
.wb-hl .token.bold, .wb-hl .token.italic, .wb-hl .token.strike { color: #1f3a5f; }
.wb-hl .token.url, .wb-hl .token.tag, .wb-hl .token.blockquote { color: #0e84b5; }
.dark .wb-hl .token.comment { color: #8ab4c0; }
.dark .wb-hl .token.keyword, .dark .wb-hl .token.builtin, .dark .wb-hl .token.boolean { color: #7ec699; }
.dark .wb-hl .token.string, .dark .wb-hl .token.code-snippet, .dark .wb-hl .token.code-language { color: #9cc3f0; }
.dark .wb-hl .token.number { color: #9be0b8; }
.dark .wb-hl .token.function, .dark .wb-hl .token.class-name, .dark .wb-hl .token.url, .dark .wb-hl .token.tag,
.dark .wb-hl .token.blockquote { color: #8fd3f5; }
.dark .wb-hl .token.decorator, .dark .wb-hl .token.operator, .dark .wb-hl .token.punctuation { color: #b0b0b0; }
.dark .wb-hl .token.title, .dark .wb-hl .token.list, .dark .wb-hl .token.hr { color: #f0a060; }
.dark .wb-hl .token.bold, .dark .wb-hl .token.italic, .dark .wb-hl .token.strike { color: #c8d8f0; }
#wb-undo { max-width: 12em; }
@media (max-width: 700px) { #wb-responses, #wb-judge { flex-direction: column; } }
@media (min-width: 701px) { #wb-responses .wb-side { max-height: 70vh; overflow-y: auto; } }
"""

# After a view change: show the first error if there is one, else go to the top with the focus on
# the page (not in a text box), so the next key is a shortcut.
AFTER_VIEW_JS = """() => {
  const err = document.querySelector('.wb-error');
  if (err) { err.scrollIntoView({block: 'center'}); return; }
  document.activeElement?.blur(); window.scrollTo(0, 0);
}"""
# The confirmation renders after the event: retry for a second until its button can take the focus.
FOCUS_UNDO_JS = """() => {
  const until = Date.now() + 1000;
  const tryFocus = () => {
    const yes = document.querySelector('#wb-undo-yes');
    if (yes && yes.offsetParent !== null) { yes.focus(); return; }
    if (Date.now() < until) setTimeout(tryFocus, 30);
  };
  tryFocus();
}"""

NOTHING_LEFT = "Nothing left to annotate for you right now. Thank you!"
ADMIN_IDLE = ("You are signed in as an admin: the Admin tab shows the statistics. Press "
              "<b>Get my next item</b> to annotate.")


def _user(request: gr.Request | None) -> str:
    user = getattr(request, "username", None)
    if not user:
        raise gr.Error("not logged in: log in first", print_exception=False)
    return user


def _msg(text: str, kind: str) -> str:
    """A message box (kind: error, ok, info) around ``text``, which is HTML (callers escape what they were given)."""
    return f'<div class="wb-msg wb-{kind}" role="{"alert" if kind == "error" else "status"}">{text}</div>'


EMPTY_RESPONSE = "(empty response: the model wrote nothing)"


def _response(text: str) -> str:
    """A response as HTML; an empty or whitespace-only one gets a visible marker (in the page only)."""
    if text.strip():
        return render.markdown(text)
    return f'<div class="wb-empty">{html.escape(EMPTY_RESPONSE)}</div>'


def _side(title: str, text: str) -> str:
    return f'<div class="wb-side"><h4>{title}</h4>{_response(text)}</div>'


def _edit_diff(original: str, text: str) -> str:
    """The edit against the response it started from, or nothing while it is unchanged."""
    if not text.strip() or text.strip() == original.strip():
        return ""
    return _msg("Your edit against the chosen response:", "info") + render.diff(original, text)


def _table(header: list[str], rows: list[list]) -> str:
    """An escaped HTML table (cells given as ``("html", value)`` are inserted as they are)."""
    def cell(v):
        return v[1] if isinstance(v, tuple) else html.escape("" if v is None else str(v))
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f'<table class="wb-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


ADMIN_ONLY = "the admin view is for admin accounts only"
PASTED = "pasted JSONL"


def require_admin(store: Store, user: str) -> None:
    """Refuse (StoreError) anyone but an admin account."""
    if not store.is_admin(user):
        raise StoreError(ADMIN_ONLY)


def admin_import(store: Store, user: str, text: str | None, path: str | None, overlap) -> str:
    """Import items pasted as JSONL or from a JSONL file on the server (one of the two); the result line.

    A file must lie inside the server's working directory or the store's folder (a web admin need
    not be allowed to read the rest of the server's disk).

    Validated as `workbench annotate import` does: every problem of a line at once, naming the line
    (``pasted JSONL:3`` or ``PATH:3``); a refused import writes nothing.
    """
    require_admin(store, user)
    text, path = (text or "").strip(), (path or "").strip()
    if bool(text) == bool(path):
        raise StoreError("paste items as JSONL or give the path of a JSONL file on the server (one of the two)")
    if isinstance(overlap, float) and overlap.is_integer():
        overlap = int(overlap)
    if path:
        resolved = Path(path).resolve()
        roots = (Path.cwd().resolve(), store.path.parent.resolve())
        if not any(resolved.is_relative_to(root) for root in roots):
            raise StoreError(f"{path}: only files inside the server's working directory or the store's folder "
                             f"({', '.join(map(str, roots))}) can be imported from the page")
        if not resolved.is_file():
            raise StoreError(f"{path}: no such file on the server")
    try:
        items = parse_items(text, PASTED) if text else read_items(resolved)
    except OSError as exc:
        raise StoreError(f"{path}: cannot read it ({exc.strerror})") from None
    if not items:
        raise StoreError(f"{path or PASTED}: no items in it")
    counts = store.import_items(items, overlap=overlap, by=user)
    return (f"{path or PASTED}: {counts['added']} items added, {counts['existing']} already there "
            f"(overlap {overlap}).")


def admin_export(store: Store, user: str, round_text: str | None) -> str:
    """Write the export (preference_ui.export) of a round or of every round; the path of its zip file."""
    require_admin(store, user)
    round_text = (round_text or "").strip()
    try:
        round_ = int(round_text) if round_text else None
    except ValueError:
        raise StoreError(f"round {round_text!r}: give a round number, or leave it empty for every round") from None
    folder = Path(tempfile.mkdtemp(prefix="wb-export-"))
    name = "annotations_export" if round_ is None else f"annotations_round{round_:02d}"
    stats = write_export(store, folder / name, round=round_)
    archive = shutil.make_archive(str(folder / name), "zip", root_dir=folder, base_dir=name)
    shutil.rmtree(folder / name)
    os.chmod(archive, 0o600)  # as the store: Gradio's cached copy for the download keeps this mode
    store.record(user, "export", round=round_, annotations=stats["annotations"])
    return archive


def build_app(store: Store, title: str = "Preference annotation", guidelines: str | None = None,
              default_overlap: int = 1) -> gr.Blocks:
    """The Blocks app: an annotation tab for everyone and an admin tab for admins.

    ``guidelines``: their Markdown (None: the shipped :data:`GUIDELINES`), open at the top of the page
    until the account confirms it read them (remembered in the store per text).
    """
    guidelines_text = guidelines or GUIDELINES
    digest = guidelines_digest(guidelines_text)
    with gr.Blocks(title=title) as demo:
        with gr.Row(equal_height=True):
            gr.Markdown(f"## {html.escape(title)}")
            progress = gr.Markdown(elem_id="wb-progress")
        with gr.Tabs():
            with gr.Tab("Annotate"):
                status = gr.HTML(elem_id="wb-status", padding=False)
                next_btn = gr.Button("Get my next item", elem_id="wb-next", visible=False, size="sm")
                gr.Markdown(SHORTCUT_HINT)
                with gr.Accordion("Guidelines", open=False, elem_id="wb-guidelines") as guidelines:
                    gr.HTML(render.document(guidelines_text), elem_id="wb-guidelines-text", padding=False)
                    ack_btn = gr.Button("I have read the guidelines", elem_id="wb-guidelines-ack", size="sm",
                                        variant="primary", visible=False)
                    gr.Markdown("**Keyboard shortcuts**\n" + SHORTCUTS)
                item_id = gr.Textbox(label="Item", interactive=False, elem_id="wb-item", max_lines=1)
                gr.Markdown("**Prompt**")
                prompt = gr.HTML(elem_id="wb-prompt", padding=False)
                with gr.Row(elem_id="wb-responses", equal_height=False):
                    with gr.Column(min_width=320):
                        left = gr.HTML(elem_id="wb-left", padding=False)
                    with gr.Column(min_width=320):
                        right = gr.HTML(elem_id="wb-right", padding=False)
                with gr.Accordion("Differences between A and B", open=False, elem_id="wb-diff"):
                    diff = gr.HTML(padding=False)
                with gr.Row(elem_id="wb-judge"):
                    with gr.Column(min_width=240):
                        choice = gr.Radio([("A (left)", "A"), ("B (right)", "B"), ("tie: equally good [T]", "tie"),
                                           ("both bad [X]", "both_bad"), ("cannot judge [C]", "cannot_judge")],
                                          label="Better response [A/B]", elem_id="wb-choice")
                        choice_err = gr.HTML(elem_id="wb-choice-error", padding=False)
                    with gr.Column(min_width=320, scale=2):
                        level = gr.Radio([(f"{LEVEL_LABELS[key]} [{i}]: {LEVEL_HELP[key]}", key)
                                          for i, key in enumerate(LEVELS, 1)],
                                         label="How much better [1-4]", elem_id="wb-level")
                        level_err = gr.HTML(elem_id="wb-level-error", padding=False)
                editor = gr.Textbox(label="Chosen response: edit it to improve it (optional) [E]", lines=8,
                                    max_lines=40, elem_id="wb-editor", placeholder="Choose a side first [A/B]")
                edit_err = gr.HTML(elem_id="wb-edit-error", padding=False)
                edit_diff = gr.HTML(elem_id="wb-edit-diff", padding=False)
                with gr.Row():
                    # enabled and explained by the page's script (HEAD), from what the page shows now
                    submit_btn = gr.Button("Submit [Ctrl+Enter]", variant="primary", elem_id="wb-submit", scale=3)
                gr.HTML('<div class="wb-hint"></div>', elem_id="wb-submit-hint", padding=False)
                with gr.Row():
                    with gr.Column(min_width=280):
                        skip_reason = gr.Textbox(label="Skip reason [S, then Enter]", elem_id="wb-skip-reason",
                                                 max_lines=1)
                        skip_btn = gr.Button("Skip", elem_id="wb-skip", size="sm")
                        skip_err = gr.HTML(elem_id="wb-skip-error", padding=False)
                    with gr.Column(min_width=280):
                        flag_reason = gr.Textbox(label="Flag a problem [F, then Enter]", elem_id="wb-flag-reason",
                                                 max_lines=1)
                        flag_btn = gr.Button("Flag", elem_id="wb-flag", size="sm")
                        flag_err = gr.HTML(elem_id="wb-flag-error", padding=False)
                gr.Markdown("---")
                undo_btn = gr.Button("Undo my last submission [U]", elem_id="wb-undo", variant="secondary",
                                     size="sm")
                with gr.Column(visible=False, elem_id="wb-undo-confirm", variant="panel") as undo_box:
                    undo_text = gr.HTML(padding=False)
                    with gr.Row():
                        undo_yes = gr.Button("Withdraw it", elem_id="wb-undo-yes", variant="stop", size="sm")
                        undo_no = gr.Button("Keep it", elem_id="wb-undo-no", size="sm")
                undo_target = gr.State(None)
                # The side whose text the editor holds, kept in the page (not a server-side gr.State) so
                # an event carries it together with the editor text it describes.
                editor_side = gr.Textbox(visible=False, elem_id="wb-editor-side")
            with gr.Tab("Admin", visible=False) as admin_tab:
                admin_summary = gr.HTML(elem_id="wb-admin-summary", padding=False)
                refresh = gr.Button("Refresh", elem_id="wb-admin-refresh", size="sm")
                gr.Markdown("### Annotators")
                admin_annotators = gr.HTML(elem_id="wb-admin-annotators", padding=False)
                gr.Markdown("### Flags")
                admin_flags = gr.HTML(elem_id="wb-admin-flags", padding=False)
                gr.Markdown("### Skips")
                admin_skips = gr.HTML(elem_id="wb-admin-skips", padding=False)
                gr.Markdown("### Disagreements")
                admin_disagree = gr.HTML(elem_id="wb-admin-disagreements", padding=False)
                gr.Markdown("### Reopen an item for re-annotation\nIts answers are withdrawn (kept in the audit "
                            "log and in the export's superseded.jsonl) and it goes back to the pool.")
                with gr.Row():
                    reopen_item = gr.Textbox(label="Item id", elem_id="wb-reopen-item", max_lines=1)
                    reopen_reason = gr.Textbox(label="Reason", elem_id="wb-reopen-reason", max_lines=1, scale=2)
                reopen_btn = gr.Button("Reopen", elem_id="wb-reopen", size="sm")
                reopen_msg = gr.HTML(elem_id="wb-reopen-msg", padding=False)
                gr.Markdown("### Import items\nOne item per line: `{id, prompt, responses: [a, b], models, "
                            "round, meta}` (as `workbench annotate import`).")
                import_text = gr.Textbox(label="Items as JSONL", lines=5, max_lines=20, elem_id="wb-import-text")
                with gr.Row():
                    import_path = gr.Textbox(label="... or a JSONL file on the server (in its working "
                                             "directory or the store's folder)", max_lines=1,
                                             elem_id="wb-import-path", scale=3)
                    import_overlap = gr.Number(label="Annotations per item", value=default_overlap, precision=0,
                                               minimum=1, elem_id="wb-import-overlap")
                import_btn = gr.Button("Import", elem_id="wb-import", size="sm")
                import_msg = gr.HTML(elem_id="wb-import-msg", padding=False)
                gr.Markdown("### Accounts")
                admin_accounts = gr.HTML(elem_id="wb-admin-accounts", padding=False)
                with gr.Row():
                    user_name = gr.Textbox(label="Account name", elem_id="wb-user-name", max_lines=1)
                    user_password = gr.Textbox(label="Password (at least 8 characters)", type="password",
                                               elem_id="wb-user-password", max_lines=1)
                with gr.Row():
                    user_admin = gr.Checkbox(label="admin", elem_id="wb-user-admin")
                    user_update = gr.Checkbox(label="reset an existing account", elem_id="wb-user-update")
                user_btn = gr.Button("Create account", elem_id="wb-user-add", size="sm")
                user_msg = gr.HTML(elem_id="wb-user-msg", padding=False)
                gr.Markdown("### Export\nA zip of preferences.jsonl, preferences_trl.jsonl, dataset/, "
                            "outcomes.jsonl, superseded.jsonl and stats.json.")
                with gr.Row():
                    export_round = gr.Textbox(label="Round (empty: every round)", elem_id="wb-export-round",
                                              max_lines=1)
                    export_btn = gr.Button("Build the export", elem_id="wb-export", size="sm")
                export_file = gr.File(label="Download", elem_id="wb-export-file", interactive=False, height=90)
                export_msg = gr.HTML(elem_id="wb-export-msg", padding=False)

        errors = [choice_err, level_err, edit_err, skip_err, flag_err]
        field_errors = {"choice": choice_err, "level": level_err, "edit": edit_err, "skip": skip_err,
                        "flag": flag_err}

        def progress_md(user: str) -> str:
            p = store.progress(user)
            pct = 100.0 * p["annotations_done"] / p["annotations_needed"] if p["annotations_needed"] else 100.0
            return (f"**{html.escape(user)}** · **{p['left']}** left for you · {p['submitted']} submitted, "
                    f"{p['skipped']} skipped · overall {p['annotations_done']} / {p['annotations_needed']} "
                    f"({pct:.0f}%)")

        def view(user: str, message: str = "", kind: str = "ok", take_new: bool = True) -> dict:
            claim: Claim | None = store.claim_next(user, take_new=take_new)
            out = {e: "" for e in errors}
            out[editor_side] = ""
            out.update({skip_reason: "", flag_reason: "", progress: progress_md(user), undo_box: gr.Column(visible=False),
                        status: _msg(html.escape(message), kind) if message else ""})
            if claim is None:
                idle = ADMIN_IDLE if not take_new else html.escape(NOTHING_LEFT)
                out.update({item_id: "", prompt: _msg(idle, "info"), left: "", right: "", diff: "", edit_diff: "",
                            choice: None,
                            level: None, editor: "", next_btn: gr.Button(visible=True)})
                return out
            draft = store.draft(user, claim.item_id)
            side = draft["choice"]
            text = (draft["edits"].get(side) or (claim.left if side == "A" else claim.right)) if side in ("A", "B") else ""
            out.update({item_id: claim.item_id, prompt: render.conversation(claim.prompt),
                        left: _side("Response A", claim.left), right: _side("Response B", claim.right),
                        diff: render.diff(claim.left, claim.right), choice: side, level: draft["level"],
                        editor_side: side if side in ("A", "B") else "",
                        edit_diff: _edit_diff(claim.left if side == "A" else claim.right, text) if text else "",
                        editor: text, next_btn: gr.Button(visible=False)})
            return out

        def refused(exc: StoreError) -> dict:
            """A refusal beside its cause; an item-level one in the status line with a way on."""
            box = field_errors.get(exc.field)
            if box is not None:
                return {box: _msg(html.escape(str(exc)), "error")}
            return {status: _msg(html.escape(str(exc)), "error"), next_btn: gr.Button(visible=True)}

        def attempt(call) -> dict | None:
            """Run a store call: None when it went through, else its refusal for the page."""
            try:
                call()
            except StoreError as exc:
                return refused(exc)
            return None

        def on_load(request: gr.Request):
            user = _user(request)
            admin = store.is_admin(user)
            unread = not store.acknowledged(user, digest)
            return {**view(user, take_new=not admin), admin_tab: gr.Tab(visible=admin),
                    guidelines: gr.Accordion(open=unread), ack_btn: gr.Button(visible=unread)}

        def on_ack(request: gr.Request):
            store.acknowledge(_user(request), digest)
            return {guidelines: gr.Accordion(open=False), ack_btn: gr.Button(visible=False)}

        def on_next(request: gr.Request):
            return view(_user(request))

        def on_choose(item: str, before: str | None, side: str | None, strength: str | None, text: str | None,
                      request: gr.Request):
            """A side switch: the editor's text goes to the side it belonged to, the new side's comes back."""
            user = _user(request)
            try:
                shown = dict(zip("AB", store.shown_responses(user, item)))
                draft = store.save_draft(user, item, side, strength, {before: text or ""} if before else {})
            except StoreError as exc:
                return refused(exc)
            if side in OUTCOMES:  # no response is chosen: the editor empties, its text stays in the draft
                return {editor: "", editor_side: "", choice_err: "", edit_err: "", edit_diff: ""}
            text = draft["edits"].get(side) or shown[side]
            return {editor: text, editor_side: side, choice_err: "", edit_err: "",
                    edit_diff: _edit_diff(shown[side], text)}

        def on_change(item: str, side: str | None, strength: str | None, before: str | None, text: str | None,
                      request: gr.Request):
            """A new strength or a keystroke in the editor (whose text belongs to ``before``)."""
            user = _user(request)
            if not item:  # the page was emptied (nothing left): no draft to save, and no refusal over the status
                return {edit_diff: ""}  # (Gradio takes an empty dict for a value: "not enough output values")
            try:
                store.save_draft(user, item, side, strength, {before: text or ""} if before else {})
                shown = dict(zip("AB", store.shown_responses(user, item)))
            except StoreError as exc:
                return refused(exc)
            changes = _edit_diff(shown[before], text or "") if before in ("A", "B") else ""
            return {level_err: "", edit_err: "", edit_diff: changes}

        def on_submit(item: str, side: str | None, strength: str | None, text: str | None, holder: str | None,
                      request: gr.Request):
            user = _user(request)
            # the side switch's answer has not reached the page yet: the editor holds the other side's text
            # (a blank editor is no edit of either side, and the store judges it)
            if side in ("A", "B") and holder != side and (text or "").strip():
                return {edit_err: _msg(f"The editor does not hold response {side} yet (it is loading): "
                                       "submit again in a moment.", "error")}
            outcome = side in OUTCOMES
            answer = OUTCOME_LABELS[side] if outcome else f"{side}, {LEVEL_LABELS.get(strength)}"
            return attempt(lambda: store.submit(user, item, side, None if outcome else strength,
                                                None if outcome else text)) or view(
                user, f"Saved your answer on item {item} ({answer}). Your next item is below.")

        def on_skip(item: str, reason: str | None, request: gr.Request):
            user = _user(request)
            return attempt(lambda: store.skip(user, item, reason)) or view(
                user, f"Skipped item {item}. Your next item is below.")

        def on_flag(item: str, reason: str | None, request: gr.Request):
            user = _user(request)
            return attempt(lambda: store.flag(user, item, reason)) or {
                flag_reason: "", flag_err: "",
                status: _msg(html.escape(f"Flagged item {item}; you can still answer or skip it."), "ok")}

        def on_undo_ask(request: gr.Request):
            last = store.last_submission(_user(request))
            if last is None:
                return {status: _msg("Nothing to undo: you have no submission to withdraw.", "info"),
                        undo_box: gr.Column(visible=False), undo_target: None}
            edited = ", edited" if last["edited"] is not None else ""
            answer = (OUTCOME_LABELS[last["choice"]] if last["choice"] in OUTCOMES
                      else f"{last['choice']}, {LEVEL_LABELS[last['level']]}{edited}")
            text = (f"Withdraw your answer on item <b>{html.escape(last['item_id'])}</b> "
                    f"({answer})? It comes back here filled in, "
                    "for you to change and submit again; the item you are on goes back to the pool.")
            return {undo_text: text, undo_box: gr.Column(visible=True), undo_target: last["id"]}

        def on_undo(target: int | None, request: gr.Request):
            user = _user(request)
            try:
                item = store.undo_last(user, annotation_id=target) if target is not None else None
            except StoreError as exc:
                return {**refused(exc), undo_box: gr.Column(visible=False)}
            if item is None:
                return {status: _msg("Nothing to undo.", "info"), undo_box: gr.Column(visible=False)}
            return view(user, f"Withdrew your answer on item {item}; it is filled in below: change it and "
                              "submit again.", kind="info")

        def on_admin(request: gr.Request):
            user = _user(request)
            if not store.is_admin(user):
                raise gr.Error(ADMIN_ONLY, print_exception=False)
            return admin_view()

        def admin_action(box, call) -> dict:
            """Run an admin action: its result line in ``box`` and the admin view refreshed, or its refusal."""
            try:
                message = call()
            except (StoreError, ItemError) as exc:
                return {box: _msg(html.escape(str(exc)), "error")}
            return {**admin_view(), box: _msg(html.escape(message), "ok")}

        def on_reopen(item: str, reason: str, request: gr.Request):
            user = _user(request)

            def call():
                require_admin(store, user)
                ids = store.reopen(user, (item or "").strip(), reason)
                return f"Reopened item {item.strip()}: {len(ids)} answers superseded; it is open again."
            return admin_action(reopen_msg, call)

        def on_import(text: str, path: str, overlap, request: gr.Request):
            user = _user(request)
            return admin_action(import_msg, lambda: admin_import(store, user, text, path, overlap))

        def on_add_user(name: str, password: str, is_admin: bool, update: bool, request: gr.Request):
            user = _user(request)

            def call():
                store.add_user_by_admin(user, (name or "").strip(), password or "", admin_account=bool(is_admin),
                                        update=bool(update))
                return (f"{'Reset' if update else 'Created'} {'admin ' if is_admin else ''}account "
                        f"{name.strip()}.")
            out = admin_action(user_msg, call)
            return {**out, user_password: ""} if user_msg in out and "wb-ok" in out[user_msg] else out

        def on_export(round_text: str, request: gr.Request):
            user = _user(request)
            try:
                archive = admin_export(store, user, round_text)
            except StoreError as exc:
                return {export_msg: _msg(html.escape(str(exc)), "error"), export_file: None}
            return {export_file: archive, export_msg: _msg(f"Built {html.escape(Path(archive).name)}.", "ok")}

        def admin_view() -> dict:
            stats = store.stats()
            alpha = stats["agreement"]["alpha"]

            def fmt(agreement: dict) -> str:
                value = "n/a" if agreement["alpha"] is None else f"{agreement['alpha']:.3f}"
                return f"{value} ({agreement['items']})"

            summary = (f"<p><b>{stats['annotations']}</b> annotations of {stats['annotations_needed']} needed · "
                       f"<b>{stats['items_complete']}</b> / {stats['items']} items complete · "
                       f"{stats['edited']} edited · {stats['skipped']} skipped · {stats['flags']} flags · "
                       f"{stats['undone']} withdrawn · "
                       + " · ".join(f"{n} {OUTCOME_LABELS[o]}" for o, n in stats["outcomes"].items())
                       + "</p><p>Krippendorff's alpha (signed ordinal, "
                       f"{stats['agreement']['items']} overlapping items): "
                       f"<b>{'n/a' if alpha is None else f'{alpha:.3f}'}</b></p>")
            by_level = {r: store.agreement_by_level(r) for r in store.item_status()}
            per_round = _table(
                ["round", "not started", "in progress", "complete", "Krippendorff's alpha (overlapping items)",
                 *(f"alpha at ≥ {LEVEL_LABELS[level]}" for level in LEVELS)],
                [[r, c["open"], c["in_progress"], c["complete"], fmt(store.agreement(r)),
                  *(fmt(by_level[r][level]) for level in LEVELS)] for r, c in store.item_status().items()])
            per_round += ("<p>Alpha at ≥ a level: agreement on which response wins by at least that level "
                          "(a weaker preference or a tie counts as neither), i.e. on the pairs training would "
                          "keep with that level as its threshold; at ≥ marginally better it is agreement on "
                          "the direction alone. Both bad and cannot judge are left out.</p>")
            annotators = _table(
                ["annotator", "submitted", "skipped", "flagged items", "median s / answer", "agrees with others",
                 "overlapping answers"],
                [[a["user"], a["submitted"], a["skipped"], a["flagged"], a["median_seconds"],
                  "n/a" if a["agreement"] is None else f"{100 * a['agreement']:.0f}%", a["overlapping"]]
                 for a in store.annotator_stats()])
            flags = _table(["item", "annotator", "reason"], [[f["item_id"], f["user"], f["reason"]]
                                                              for f in store.flags()])
            skips = _table(["item", "annotator", "reason"], [[s["item_id"], s["user"], s["reason"]]
                                                              for s in store.skips()])
            blocks = []
            for d in store.disagreements():
                answers = _table(["annotator", "prefers", "strength", "edit"],
                                 [[a["user"], OUTCOME_LABELS.get(a["winner"], a["winner"]),
                                   LEVEL_LABELS.get(a["level"], ""), a["edited"] or ""]
                                  for a in d["answers"]])
                blocks.append(f'<div class="wb-disagreement"><h4>{html.escape(d["item_id"])}</h4>'
                              f'{render.conversation(d["prompt"])}'
                              f'{_table(["a", "b"], [[("html", _response(d["response_a"])), ("html", _response(d["response_b"]))]])}'
                              f"{answers}</div>")
            accounts = _table(["account", "admin", "live annotations"],
                              [[u["name"], "admin" if u["admin"] else "", u["annotations"]] for u in store.users()])
            return {admin_summary: summary + per_round, admin_annotators: annotators, admin_flags: flags, admin_skips: skips,
                    admin_disagree: "".join(blocks) or "<p>No disagreements.</p>", admin_accounts: accounts}

        view_outputs = [item_id, prompt, left, right, diff, edit_diff, choice, level, editor, editor_side,
                        skip_reason, flag_reason, progress, status, next_btn, undo_box, *errors]
        admin_outputs = [admin_summary, admin_annotators, admin_flags, admin_skips, admin_disagree, admin_accounts]
        quiet = {"queue": False, "api_visibility": "private", "show_progress": "hidden"}

        demo.load(on_load, None, view_outputs + [admin_tab, guidelines, ack_btn], **quiet)
        ack_btn.click(on_ack, None, [guidelines, ack_btn], **quiet)
        next_btn.click(on_next, None, view_outputs, **quiet).then(None, js=AFTER_VIEW_JS)
        change_outputs = [level_err, edit_err, edit_diff, status, next_btn]
        # always_last: a second key pressed while the first one's answer is on its way runs after it
        # (Gradio's default drops it, leaving one side checked and the other side's text in the editor)
        choice.input(on_choose, [item_id, editor_side, choice, level, editor],
                     [editor, editor_side, choice_err, edit_err, edit_diff, status, next_btn],
                     trigger_mode="always_last", **quiet)
        level.input(on_change, [item_id, choice, level, editor_side, editor], change_outputs,
                    trigger_mode="always_last", **quiet)
        editor.change(on_change, [item_id, choice, level, editor_side, editor], change_outputs,
                     trigger_mode="always_last", **quiet)
        submit_btn.click(on_submit, [item_id, choice, level, editor, editor_side], view_outputs, **quiet).then(
            None, js=AFTER_VIEW_JS)
        for trigger in (skip_btn.click, skip_reason.submit):
            trigger(on_skip, [item_id, skip_reason], view_outputs, **quiet).then(None, js=AFTER_VIEW_JS)
        for trigger in (flag_btn.click, flag_reason.submit):
            trigger(on_flag, [item_id, flag_reason], [flag_reason, flag_err, status, next_btn], **quiet)
        undo_btn.click(on_undo_ask, None, [undo_text, undo_box, undo_target, status], **quiet).then(
            None, js=FOCUS_UNDO_JS)
        undo_yes.click(on_undo, [undo_target], view_outputs, **quiet).then(None, js=AFTER_VIEW_JS)
        undo_no.click(lambda: gr.Column(visible=False), None, undo_box, **quiet)
        refresh.click(on_admin, None, admin_outputs, **quiet)
        admin_tab.select(on_admin, None, admin_outputs, **quiet)
        reopen_btn.click(on_reopen, [reopen_item, reopen_reason], admin_outputs + [reopen_msg],
                         api_name="admin_page_reopen", **quiet)
        import_btn.click(on_import, [import_text, import_path, import_overlap], admin_outputs + [import_msg],
                         api_name="admin_page_import", **quiet)
        user_btn.click(on_add_user, [user_name, user_password, user_admin, user_update],
                       admin_outputs + [user_msg, user_password], api_name="admin_page_add_user", **quiet)
        export_btn.click(on_export, [export_round], [export_file, export_msg], api_name="admin_page_export", **quiet)
        _api(store)
    return demo


def _api(store: Store) -> None:
    """The endpoints for API clients (gradio_client): refusals raise, with the store's reason."""

    def claim_tuple(user: str, message: str) -> tuple[str, str, str, str, str, str]:
        claim = store.claim_next(user)
        p = store.progress(user)
        progress = f"{user}: {p['submitted']} submitted, {p['skipped']} skipped, {p['left']} left"
        if claim is None:
            return "", NOTHING_LEFT, "", "", progress, message
        return claim.item_id, prompt_text(claim.prompt), claim.left, claim.right, progress, message

    def raising(call):
        try:
            return call()
        except StoreError as exc:
            raise gr.Error(str(exc), print_exception=False) from exc

    def current(request: gr.Request) -> tuple[str, str, str, str, str, str]:
        """Your current item: (item id, prompt, response A, response B, progress, message)."""
        return raising(lambda: claim_tuple(_user(request), ""))

    def submit(item_id: str, choice: str | None, level: str | None, edited: str | None,
               request: gr.Request) -> tuple[str, str, str, str, str, str]:
        """Answer your item (choice A/B as shown, level, optional edit); returns your next item."""
        user = _user(request)
        raising(lambda: store.submit(user, item_id, choice, level, edited))
        return claim_tuple(user, f"Saved your answer on item {item_id}.")

    def skip(item_id: str, reason: str | None, request: gr.Request) -> tuple[str, str, str, str, str, str]:
        """Skip your item with a reason; returns your next item."""
        user = _user(request)
        raising(lambda: store.skip(user, item_id, reason))
        return claim_tuple(user, f"Skipped item {item_id}.")

    def flag(item_id: str, reason: str | None, request: gr.Request) -> tuple[str, str]:
        """Flag an item you were given: ("", message)."""
        user = _user(request)
        raising(lambda: store.flag(user, item_id, reason))
        return "", f"Flagged item {item_id}; you can still answer or skip it."

    def undo(request: gr.Request) -> tuple[str, str, str, str, str, str]:
        """Withdraw your last submission; returns that item again."""
        user = _user(request)
        item = raising(lambda: store.undo_last(user))
        return claim_tuple(user, f"Withdrew your answer on item {item}; answer it again." if item
                           else "Nothing to undo.")

    def admin_stats(request: gr.Request) -> tuple[str, dict]:
        """Admins only: (summary line, statistics)."""
        user = _user(request)
        if not store.is_admin(user):
            raise gr.Error(ADMIN_ONLY, print_exception=False)
        stats = store.stats()
        alpha = stats["agreement"]["alpha"]
        return (f"{stats['annotations']} annotations · Krippendorff's alpha "
                f"{'n/a' if alpha is None else f'{alpha:.3f}'}"), stats

    def admin_import_items(jsonl: str, overlap: int, request: gr.Request) -> str:
        """Admins only: import items given as JSONL text with ``overlap`` annotations each; the result line."""
        user = _user(request)
        try:
            return admin_import(store, user, jsonl, None, overlap)
        except (StoreError, ItemError) as exc:
            raise gr.Error(str(exc), print_exception=False) from exc

    def admin_add_user(name: str, password: str, admin: bool, update: bool, request: gr.Request) -> str:
        """Admins only: create an account (``update``: reset an existing one's password and admin flag)."""
        user = _user(request)
        raising(lambda: store.add_user_by_admin(user, name, password, admin_account=bool(admin), update=bool(update)))
        return f"{'reset' if update else 'created'} account {name}"

    def admin_reopen(item_id: str, reason: str, request: gr.Request) -> list[int]:
        """Admins only: reopen an item for re-annotation; the ids of the answers it superseded."""
        user = _user(request)
        return raising(lambda: (require_admin(store, user), store.reopen(user, item_id, reason))[1])

    def admin_export_stats(round: int | None, request: gr.Request) -> dict:
        """Admins only: the export's statistics (stats.json) of a round (None: every round)."""
        user = _user(request)
        return raising(lambda: (require_admin(store, user), store.stats(round))[1])

    for fn in (current, submit, skip, flag, undo, admin_stats, admin_import_items, admin_add_user, admin_reopen,
               admin_export_stats):
        gr.api(fn, api_name=fn.__name__, queue=False)


def launch(store: Store, host: str = "127.0.0.1", port: int = 7860, concurrency: int = 8,
           prevent_thread_lock: bool = False, quiet: bool = False,
           session_seconds: float = SESSION_SECONDS, guidelines: str | None = None,
           default_overlap: int = 1) -> gr.Blocks:
    """Serve the app with the store's password check as the login, behind :class:`security.Guard`.

    ``guidelines``: the Markdown text shown at first login (None: the shipped one; see :func:`load_guidelines`).
    """
    demo = build_app(store, guidelines=guidelines, default_overlap=default_overlap)
    demo.queue(default_concurrency_limit=concurrency)
    guard = Middleware(Guard, store=store, session_seconds=session_seconds)
    demo.launch(server_name=host, server_port=port, auth=store.verify_user,
                auth_message="Log in with the account your admin created (workbench annotate users add).",
                ssr_mode=False, head=HEAD + editor_head(), css=CSS, prevent_thread_lock=prevent_thread_lock,
                quiet=quiet, show_error=False, max_file_size="1kb", app_kwargs={"middleware": [guard]})
    return demo
