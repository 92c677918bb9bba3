"""The annotation web app (Gradio 6 Blocks) on top of :class:`preference_ui.store.Store`.

Identity comes only from the login (``gr.Request.username``); every handler asks the store, which
refuses anything the user may not do. In the browser a refusal never raises: the handler returns
the reason into the message box beside the input that caused it (or the status line for the item
itself) and leaves every other component as it was. The answer in progress (side, strength, the
edit per side) is saved as a draft in the store on every change, so a reload or a side switch
keeps it. Submit is enabled by the page's script (``HEAD``) only while the answer shown is complete.
Prompts and responses are server-rendered, sanitised HTML (:mod:`preference_ui.render`). API
clients call the ``gr.api`` endpoints, which raise the store's refusals as errors. The server sits
behind :class:`preference_ui.security.Guard` (login rate limits, sessions, same-origin, no uploads).
"""

from __future__ import annotations

import html

import gradio as gr
from starlette.middleware import Middleware

from preference_ui import render
from preference_ui.items import prompt_text
from preference_ui.security import SESSION_SECONDS, Guard
from preference_ui.store import OUTCOME_LABELS, OUTCOMES, Claim, Store, StoreError
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

SHORTCUTS = """
| key | action |
| --- | --- |
| `A` / `B` | choose the left / right response (fills the editor with it) |
| `T` / `X` / `C` | tie (equally good) / both bad / cannot judge (no strength needed) |
| `1` `2` `3` `4` | significantly better / better / slightly better / marginally better |
| `E` | edit the chosen response (focus the editor) |
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
  setInterval(() => {
    const button = q("#wb-submit"), hint = q("#wb-submit-hint .wb-hint");
    if (!button) return;
    const open = !!field("wb-item")?.value, gaps = open ? missing() : [];
    button.disabled = !open || gaps.length > 0;
    const text = gaps.length ? `To submit, ${gaps.join(" and ")}.` : "";
    if (hint && hint.textContent !== text) hint.textContent = text;
  }, 100);
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault(); document.activeElement?.blur(); q("#wb-submit")?.click(); return;
    }
    if (ev.key === "Escape") { document.activeElement?.blur(); return; }
    if (ev.key === "Enter" && ev.target.closest && ev.target.closest("#wb-skip-reason, #wb-flag-reason")) {
      const box = ev.target; setTimeout(() => box.blur(), 0); return;  // Gradio reads the value first
    }
    if (typing(ev.target) || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const k = ev.key.toLowerCase();
    if (keys[k]) { const el = keys[k](); if (el) { ev.preventDefault(); el.click(); } }
    else if (focusKeys[k]) { const el = field(focusKeys[k]); if (el) { ev.preventDefault(); el.focus(); } }
  });
})();
</script>
"""

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
#wb-undo { max-width: 12em; }
@media (max-width: 700px) { #wb-responses, #wb-judge { flex-direction: column; } }
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


def build_app(store: Store, title: str = "Preference annotation") -> gr.Blocks:
    """The Blocks app: an annotation tab for everyone and an admin tab for admins."""
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
                    gr.Markdown(GUIDELINES)
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
            p = store.progress(user)
            first_time = p["submitted"] + p["skipped"] == 0 and store.last_submission(user) is None
            return {**view(user, take_new=not admin), admin_tab: gr.Tab(visible=admin),
                    guidelines: gr.Accordion(open=first_time)}

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
            try:
                store.save_draft(user, item, side, strength, {before: text or ""} if before else {})
                shown = dict(zip("AB", store.shown_responses(user, item)))
            except StoreError as exc:
                return refused(exc)
            changes = _edit_diff(shown[before], text or "") if before in ("A", "B") else ""
            return {level_err: "", edit_err: "", edit_diff: changes}

        def on_submit(item: str, side: str | None, strength: str | None, text: str | None, request: gr.Request):
            user = _user(request)
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
                raise gr.Error("the admin view is for admin accounts only", print_exception=False)
            return admin_view()

        def admin_view() -> dict:
            stats = store.stats()
            alpha = stats["agreement"]["alpha"]
            summary = (f"<p><b>{stats['annotations']}</b> annotations of {stats['annotations_needed']} needed · "
                       f"<b>{stats['items_complete']}</b> / {stats['items']} items complete · "
                       f"{stats['edited']} edited · {stats['skipped']} skipped · {stats['flags']} flags · "
                       f"{stats['undone']} withdrawn · "
                       + " · ".join(f"{n} {OUTCOME_LABELS[o]}" for o, n in stats["outcomes"].items())
                       + "</p><p>Krippendorff's alpha (signed ordinal, "
                       f"{stats['agreement']['items']} overlapping items): "
                       f"<b>{'n/a' if alpha is None else f'{alpha:.3f}'}</b></p>")
            def alpha(round_: int) -> str:
                agreement = store.agreement(round_)
                value = "n/a" if agreement["alpha"] is None else f"{agreement['alpha']:.3f}"
                return f"{value} ({agreement['items']})"

            per_round = _table(
                ["round", "not started", "in progress", "complete", "Krippendorff's alpha (overlapping items)"],
                [[r, c["open"], c["in_progress"], c["complete"], alpha(r)] for r, c in store.item_status().items()])
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
            return {admin_summary: summary + per_round, admin_annotators: annotators, admin_flags: flags, admin_skips: skips,
                    admin_disagree: "".join(blocks) or "<p>No disagreements.</p>"}

        view_outputs = [item_id, prompt, left, right, diff, edit_diff, choice, level, editor, editor_side,
                        skip_reason, flag_reason, progress, status, next_btn, undo_box, *errors]
        admin_outputs = [admin_summary, admin_annotators, admin_flags, admin_skips, admin_disagree]
        draft_inputs = [item_id, choice, level, editor]
        quiet = {"queue": False, "api_visibility": "private", "show_progress": "hidden"}

        demo.load(on_load, None, view_outputs + [admin_tab, guidelines], **quiet)
        next_btn.click(on_next, None, view_outputs, **quiet).then(None, js=AFTER_VIEW_JS)
        change_outputs = [level_err, edit_err, edit_diff, status, next_btn]
        choice.input(on_choose, [item_id, editor_side, choice, level, editor],
                     [editor, editor_side, choice_err, edit_err, edit_diff, status, next_btn],
                     **quiet)
        level.input(on_change, [item_id, choice, level, editor_side, editor], change_outputs, **quiet)
        editor.change(on_change, [item_id, choice, level, editor_side, editor], change_outputs,
                     trigger_mode="always_last", **quiet)
        submit_btn.click(on_submit, draft_inputs, view_outputs, **quiet).then(None, js=AFTER_VIEW_JS)
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
            raise gr.Error("the admin view is for admin accounts only", print_exception=False)
        stats = store.stats()
        alpha = stats["agreement"]["alpha"]
        return (f"{stats['annotations']} annotations · Krippendorff's alpha "
                f"{'n/a' if alpha is None else f'{alpha:.3f}'}"), stats

    for fn in (current, submit, skip, flag, undo, admin_stats):
        gr.api(fn, api_name=fn.__name__, queue=False)


def launch(store: Store, host: str = "127.0.0.1", port: int = 7860, concurrency: int = 8,
           prevent_thread_lock: bool = False, quiet: bool = False,
           session_seconds: float = SESSION_SECONDS) -> gr.Blocks:
    """Serve the app with the store's password check as the login, behind :class:`security.Guard`."""
    demo = build_app(store)
    demo.queue(default_concurrency_limit=concurrency)
    guard = Middleware(Guard, store=store, session_seconds=session_seconds)
    demo.launch(server_name=host, server_port=port, auth=store.verify_user,
                auth_message="Log in with the account your admin created (workbench annotate users add).",
                ssr_mode=False, head=HEAD, css=CSS, prevent_thread_lock=prevent_thread_lock, quiet=quiet,
                show_error=False, max_file_size="1kb", app_kwargs={"middleware": [guard]})
    return demo
