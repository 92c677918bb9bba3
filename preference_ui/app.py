"""The annotation web app (Gradio 6 Blocks) on top of :class:`preference_ui.store.Store`.

Identity comes only from the login (``gr.Request.username``); every handler asks the store, which
refuses anything the user may not do. Prompts and responses are shown in read-only text boxes, so
HTML or scripts inside them appear as text. Keyboard shortcuts are a ``keydown`` listener injected
with ``head`` (listed in the app under "Keyboard shortcuts").
"""

from __future__ import annotations

import functools
import html

import gradio as gr

from preference_ui.store import Claim, Store, StoreError
from workbench.preferences import LEVEL_LABELS, LEVELS

GUIDELINES = """
**Your task.** Read the prompt and the two responses, pick the better response and say how much
better it is. Judge correctness first (is the final `Answer:` right, does the code do what was
asked?), then clarity and length: of two correct responses prefer the shorter, cleaner one.

**Strength.** *Significantly better*: one is right and the other wrong or useless. *Better*: clearly
preferable. *Slightly better*: a small but real difference. *Marginally better*: nearly equal.

**Editing.** The editor holds the response you chose. If you can make it correct and clean, edit it:
your edit becomes the best response (edited > chosen > rejected). Leave it unchanged otherwise.

**Skip** an item you cannot judge (say why). **Flag** a broken item (bad prompt, garbled text,
something unsafe); flagging does not skip. **Undo** withdraws your last submission and shows that
item again. You never see other annotators' answers.
"""

SHORTCUTS = """
| key | action |
| --- | --- |
| `A` / `B` | choose the left / right response (fills the editor with it) |
| `1` `2` `3` `4` | significantly better / better / slightly better / marginally better |
| `E` | edit the chosen response (focus the editor) |
| `Ctrl+Enter` | submit (works inside the editor too) |
| `S` then type, `Enter` | skip with a reason |
| `F` then type, `Enter` | flag with a reason |
| `U` | undo your last submission |
| `G` | open or close the guidelines |
| `Esc` | leave a text box, so the keys above work again |
"""

SHORTCUT_HINT = ("Keys: `A`/`B` choose · `1`-`4` strength · `E` edit · `Ctrl+Enter` submit · `S` skip · "
                 "`F` flag · `U` undo · `G` guidelines · `Esc` leave a text box")

# Keys act only when no text box has the focus (except Ctrl+Enter and Esc).
HEAD = """
<script>
(() => {
  const q = (sel) => document.querySelector(sel);
  const typing = (el) => el && (el.tagName === "TEXTAREA" ||
    (el.tagName === "INPUT" && !["radio", "checkbox", "button"].includes(el.type)));
  const field = (id) => q(`#${id} textarea`) || q(`#${id} input`);
  const keys = {
    a: () => q('#wb-choice input[value="A"]'), b: () => q('#wb-choice input[value="B"]'),
    1: () => q('#wb-level input[value="significantly_better"]'), 2: () => q('#wb-level input[value="better"]'),
    3: () => q('#wb-level input[value="slightly_better"]'), 4: () => q('#wb-level input[value="marginally_better"]'),
    u: () => q("#wb-undo"), g: () => q("#wb-guidelines button") || q("#wb-guidelines .label-wrap"),
  };
  const focusKeys = {e: "wb-editor", s: "wb-skip-reason", f: "wb-flag-reason"};
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault(); q("#wb-submit")?.click(); return;
    }
    if (ev.key === "Escape") { document.activeElement?.blur(); return; }
    if (typing(ev.target) || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const k = ev.key.toLowerCase();
    if (keys[k]) { const el = keys[k](); if (el) { ev.preventDefault(); el.click(); } }
    else if (focusKeys[k]) { const el = field(focusKeys[k]); if (el) { ev.preventDefault(); el.focus(); } }
  });
})();
</script>
"""

# Runs in the browser: the editor is filled with the chosen response at once, without a round trip.
PREFILL_JS = "(choice, left, right) => choice === 'A' ? left : (choice === 'B' ? right : '')"

NOTHING_LEFT = "Nothing left to annotate for you right now. Thank you!"


def _user(request: gr.Request | None) -> str:
    user = getattr(request, "username", None)
    if not user:
        raise gr.Error("not logged in: log in first", print_exception=False)
    return user


def _prompt_text(messages: list[dict]) -> str:
    if len(messages) == 1 and messages[0]["role"] == "user":
        return messages[0]["content"]
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in messages)


def build_app(store: Store, title: str = "Preference annotation") -> gr.Blocks:
    """The Blocks app: an annotation tab for everyone and an admin tab for admins."""

    def progress_md(user: str) -> str:
        p = store.progress(user)
        pct = 100.0 * p["annotations_done"] / p["annotations_needed"] if p["annotations_needed"] else 100.0
        return (f"**{html.escape(user)}** · you: {p['submitted']} submitted, {p['skipped']} skipped · "
                f"overall: {p['annotations_done']} / {p['annotations_needed']} annotations ({pct:.0f}%)")

    def view(user: str, message: str = "") -> tuple:
        claim: Claim | None = store.claim_next(user)
        if claim is None:
            return ("", NOTHING_LEFT, "", "", None, None, "", "", "", progress_md(user), message)
        return (claim.item_id, _prompt_text(claim.prompt), claim.left, claim.right, None, None, "", "", "",
                progress_md(user), message)

    def guarded(fn):
        """Turn store refusals into a clear error shown to the user (and to API clients)."""
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except StoreError as exc:
                raise gr.Error(str(exc), print_exception=False) from exc
        return wrapper

    @guarded
    def current(request: gr.Request):
        user = _user(request)
        return (*view(user), gr.Tab(visible=store.is_admin(user)))

    @guarded
    def submit(item_id: str, choice: str | None, level: str | None, edited: str | None, request: gr.Request):
        user = _user(request)
        store.submit(user, item_id, choice, level, edited)
        return view(user, f"Saved your answer on item {html.escape(item_id)}.")

    @guarded
    def skip(item_id: str, reason: str | None, request: gr.Request):
        user = _user(request)
        store.skip(user, item_id, reason)
        return view(user, f"Skipped item {html.escape(item_id)}.")

    @guarded
    def flag(item_id: str, reason: str | None, request: gr.Request):
        user = _user(request)
        store.flag(user, item_id, reason)
        return "", f"Flagged item {html.escape(item_id)}; you can still answer or skip it."

    @guarded
    def undo(request: gr.Request):
        user = _user(request)
        item_id = store.undo_last(user)
        message = (f"Withdrew your answer on item {html.escape(item_id)}; answer it again."
                   if item_id else "Nothing to undo.")
        return view(user, message)

    @guarded
    def admin_stats(request: gr.Request):
        user = _user(request)
        if not store.is_admin(user):
            raise gr.Error("the admin view is for admin accounts only", print_exception=False)
        stats = store.stats()
        alpha = stats["agreement"]["alpha"]
        summary = (f"**{stats['annotations']}** annotations of {stats['annotations_needed']} needed · "
                   f"**{stats['items_complete']}** / {stats['items']} items complete · "
                   f"{stats['edited']} edited · {stats['skipped']} skipped · {stats['flags']} flags\n\n"
                   f"Krippendorff's alpha (signed ordinal, {stats['agreement']['items']} overlapping items): "
                   f"**{'n/a' if alpha is None else f'{alpha:.3f}'}**")
        return summary, stats

    with gr.Blocks(title=title) as demo:
        gr.Markdown(f"## {html.escape(title)}")
        with gr.Tabs():
            with gr.Tab("Annotate"):
                progress = gr.Markdown(elem_id="wb-progress")
                gr.Markdown(SHORTCUT_HINT)
                with gr.Accordion("Guidelines", open=False, elem_id="wb-guidelines"):
                    gr.Markdown(GUIDELINES)
                    gr.Markdown("**Keyboard shortcuts**\n" + SHORTCUTS)
                item_id = gr.Textbox(label="Item", interactive=False, elem_id="wb-item", max_lines=1)
                prompt = gr.Textbox(label="Prompt", interactive=False, lines=3, elem_id="wb-prompt")
                with gr.Row():
                    left = gr.Textbox(label="Response A", interactive=False, lines=8, elem_id="wb-left")
                    right = gr.Textbox(label="Response B", interactive=False, lines=8, elem_id="wb-right")
                with gr.Row():
                    choice = gr.Radio([("A (left)", "A"), ("B (right)", "B")], label="Better response [A/B]",
                                      elem_id="wb-choice")
                    level = gr.Radio([(f"{LEVEL_LABELS[key]} [{i}]", key) for i, key in enumerate(LEVELS, 1)],
                                     label="How much better [1-4]", elem_id="wb-level")
                editor = gr.Textbox(label="Chosen response: edit it to improve it (optional) [E]", lines=8,
                                    elem_id="wb-editor")
                with gr.Row():
                    submit_btn = gr.Button("Submit [Ctrl+Enter]", variant="primary", elem_id="wb-submit")
                    undo_btn = gr.Button("Undo last [U]", elem_id="wb-undo")
                with gr.Row():
                    skip_reason = gr.Textbox(label="Skip reason [S, then Enter]", elem_id="wb-skip-reason",
                                             max_lines=1)
                    skip_btn = gr.Button("Skip", elem_id="wb-skip")
                    flag_reason = gr.Textbox(label="Flag a problem [F, then Enter]", elem_id="wb-flag-reason",
                                             max_lines=1)
                    flag_btn = gr.Button("Flag", elem_id="wb-flag")
                status = gr.Markdown(elem_id="wb-status")
            with gr.Tab("Admin", visible=False) as admin_tab:
                admin_summary = gr.Markdown(elem_id="wb-admin-summary")
                admin_json = gr.JSON(label="Statistics")
                refresh = gr.Button("Refresh", elem_id="wb-admin-refresh")

        outputs = [item_id, prompt, left, right, choice, level, editor, skip_reason, flag_reason, progress, status]
        demo.load(current, None, outputs + [admin_tab], api_name="current", queue=False)
        choice.input(None, [choice, left, right], editor, js=PREFILL_JS)
        submit_btn.click(submit, [item_id, choice, level, editor], outputs, api_name="submit", queue=False)
        undo_btn.click(undo, None, outputs, api_name="undo", queue=False)
        skip_btn.click(skip, [item_id, skip_reason], outputs, api_name="skip", queue=False)
        skip_reason.submit(skip, [item_id, skip_reason], outputs, api_visibility="undocumented", queue=False)
        flag_btn.click(flag, [item_id, flag_reason], [flag_reason, status], api_name="flag", queue=False)
        flag_reason.submit(flag, [item_id, flag_reason], [flag_reason, status], api_visibility="undocumented", queue=False)
        refresh.click(admin_stats, None, [admin_summary, admin_json], api_name="admin_stats")
        admin_tab.select(admin_stats, None, [admin_summary, admin_json], api_visibility="private")
    return demo


def launch(store: Store, host: str = "127.0.0.1", port: int = 7860, concurrency: int = 8,
           prevent_thread_lock: bool = False, quiet: bool = False) -> gr.Blocks:
    """Serve the app with the store's password check as the login."""
    demo = build_app(store)
    demo.queue(default_concurrency_limit=concurrency)
    demo.launch(server_name=host, server_port=port, auth=store.verify_user,
                auth_message="Log in with the account your admin created (workbench annotate users add).",
                ssr_mode=False, head=HEAD, prevent_thread_lock=prevent_thread_lock, quiet=quiet,
                show_error=False)
    return demo
