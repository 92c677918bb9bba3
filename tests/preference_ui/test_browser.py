"""The annotation app in Debian's Chromium (Playwright): flows, refusals, drafts, rendering, the editor, layout, admin."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from pui_helpers import PASSWORDS, new_store

from preference_ui.items import validate_item
from preference_ui.store import Store

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
XSS = "What is 2 + 3? <script>window.__xss = 1</script><b>bold</b>"
XSS_RESPONSE = "Answer: 5 <img src=x onerror=\"window.__xss = 2\">"
MARKDOWN = "Use **bold** and code:\n\n```python\ndef add(a, b):\n    return a + b\n```\n"
# The editor's highlighted copy holds its text and lies exactly over it (the textarea's own text invisible).
OVERLAY_MATCHES = """() => {
  const box = document.querySelector('#wb-editor textarea'), pre = document.querySelector('#wb-editor pre.wb-hl');
  const a = box.getBoundingClientRect(), b = pre.getBoundingClientRect();
  return pre.textContent === box.value + '\\n' && a.top === b.top && a.left === b.left && a.width === b.width &&
    a.height === b.height && box.scrollHeight === pre.scrollHeight && box.scrollTop === pre.scrollTop &&
    getComputedStyle(box).color === 'rgba(0, 0, 0, 0)';
}"""

# Records, in the first task after the app sets the item box (a message: the earliest a click could
# be handled), the item and whether Submit is disabled.
SUBMIT_STATE_WHEN_ITEM_SET = """() => {
  const box = document.querySelector('#wb-item input');
  const value = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value');
  window.__wbSubmitWhenSet = [];
  Object.defineProperty(box, 'value', {configurable: true, get() { return value.get.call(this); }, set(v) {
    value.set.call(this, v);
    const next = new MessageChannel();
    next.port1.onmessage = () => window.__wbSubmitWhenSet.push([v, document.querySelector('#wb-submit').disabled]);
    next.port2.postMessage(null);
  }});
}"""

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing: run "
                       "`bash scripts/setup.sh --browser` (apt-get install chromium chromium-driver)"),
]


def _item(item_id: str, prompt, a: str, b: str):
    return validate_item({"id": item_id, "prompt": prompt, "responses": [a, b], "models": ["new", "old"],
                          "round": 1}, "test")


def _items():
    rows = [("b000", XSS, XSS_RESPONSE, "Answer: 6"), ("b001", "What is 1 + 1?", "Answer: 2", "Answer: 3"),
            ("b002", "What is 4 + 4?", "Answer: 8", "Answer: 9")]
    return [_item(*row) for row in rows]


@pytest.fixture
def app(tmp_path, serve):
    """The app on a fresh store (alice admin, bob, carol; edits up to 1000 characters): (url, store)."""
    store = new_store(tmp_path / "annotations.sqlite", users=("alice", "bob", "carol"), max_edit_chars=1000)
    return serve(store), store


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module's synchronous tests."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def _page(browser, url: str, user: str, width: int = 1200):
    page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
    page.goto(url)
    page.locator("input[type=text]").fill(user)
    page.locator("input[type=password]").fill(PASSWORDS[user])
    page.keyboard.press("Enter")
    page.wait_for_selector("#wb-progress strong", timeout=60000)
    return page


def _wait_item(page, not_item: str = "") -> str:
    """Wait until the page shows an item other than ``not_item``; its id."""
    page.wait_for_function("prev => { const e = document.querySelector('#wb-item input'); "
                           "return e && e.value && e.value !== prev; }", arg=not_item, timeout=60000)
    return page.locator("#wb-item input").input_value()


def _left_is_a(page, store: Store, item: str) -> bool:
    return page.locator("#wb-left .wb-md").inner_text().strip() == store.get_item(item).response_a.strip()


def _saved(store: Store, user: str, item: str, side: str, text: str, timeout: float = 30.0) -> None:
    """Wait until the app saved ``text`` as the draft edit of ``side`` (it saves on every keystroke)."""
    deadline = time.monotonic() + timeout
    while store.draft(user, item)["edits"].get(side) != text:
        assert time.monotonic() < deadline, f"draft of {item} never held {text!r}: {store.draft(user, item)}"
        time.sleep(0.05)


def test_a_refused_submit_shows_its_reason_beside_the_cause_and_the_page_stays_usable(app, browser):
    url, store = app
    store.import_items([_item(f"r{k}", f"What is {k} + 1?", f"Answer: {k + 1}", f"Answer: {k + 2}")
                        for k in range(3)], overlap=1)
    page = _page(browser, url, "carol")
    item = _wait_item(page)
    assert page.locator("#wb-submit").is_disabled()
    assert "choose a side" in page.locator("#wb-submit-hint").inner_text()
    page.keyboard.press("a")
    page.keyboard.press("1")
    page.wait_for_function("() => !document.querySelector('#wb-submit').disabled")
    page.locator("#wb-editor textarea").fill("x" * 1001)  # over the store's max_edit_chars
    error = page.locator("#wb-edit-error .wb-error")
    error.wait_for()  # refused as the draft is saved, before any submit
    page.locator("#wb-submit").click()
    page.wait_for_timeout(500)
    assert error.count() == 1 and "1001 characters long; the limit is 1000" in error.inner_text()
    # nothing blanked or lost: the prompt, both responses, the answer and the edit are all still there
    assert page.locator("#wb-prompt").inner_text().strip() == f"What is {item[1]} + 1?"
    assert page.locator("#wb-left .wb-md").inner_text().strip() and page.locator("#wb-right .wb-md").inner_text()
    assert page.locator('#wb-choice input[value="A"]').is_checked()
    assert page.locator("#wb-editor textarea").input_value() == "x" * 1001
    assert page.locator(".wb-ok").count() == 0 and store.export() == []

    # the page is still usable: fix the edit and submit
    page.locator("#wb-editor textarea").fill("Answer: fixed")
    _saved(store, "carol", item, "A", "Answer: fixed")
    error.wait_for(state="detached")
    page.locator("#wb-submit").click()
    second = _wait_item(page, item)
    assert "Saved your answer on item " + item in page.locator("#wb-status").inner_text()
    assert page.locator(".wb-error").count() == 0
    assert store.export()[0].edited == "Answer: fixed"

    # a stale tab: the item is skipped elsewhere while answered here; the refusal says so, and
    # "Get my next item" goes on
    page.keyboard.press("b")
    page.keyboard.press("2")
    page.wait_for_function("t => document.querySelector('#wb-editor textarea').value === t && "
                           "!document.querySelector('#wb-submit').disabled", arg=store.shown_responses("carol", second)[1])
    store.skip("carol", second, "done in another tab")
    page.locator("#wb-submit").click()
    status = page.locator("#wb-status .wb-error")
    status.wait_for()
    assert "already skipped" in status.inner_text()
    assert page.locator("#wb-item input").input_value() == second and page.locator("#wb-prompt").inner_text()
    page.locator("#wb-next").click()
    third = _wait_item(page, second)
    assert third not in (item, second) and page.locator(".wb-error").count() == 0


def test_skip_without_a_reason_is_refused_beside_the_skip_box_and_enter_leaves_the_reason_boxes(app, browser):
    url, store = app
    store.import_items(_items()[1:], overlap=1)
    page = _page(browser, url, "bob")
    item = _wait_item(page)
    page.locator("#wb-skip").click()
    error = page.locator("#wb-skip-error .wb-error")
    error.wait_for()
    assert "give a reason" in error.inner_text()
    assert page.locator("#wb-item input").input_value() == item and page.locator("#wb-left .wb-md").inner_text()
    page.keyboard.press("s")
    page.keyboard.type("prompt is unclear")
    page.keyboard.press("Enter")
    nxt = _wait_item(page, item)
    assert store.skips()[0]["reason"] == "prompt is unclear"

    page.keyboard.press("f")  # a flag by keyboard; Enter sends it and leaves the box
    page.keyboard.type("garbled <prompt>")
    page.keyboard.press("Enter")
    page.locator("#wb-status .wb-ok", has_text="Flagged item " + nxt).wait_for()
    assert [(f["item_id"], f["reason"]) for f in store.flags()] == [(nxt, "garbled <prompt>")]
    page.keyboard.press("b")  # a shortcut again, not text in the flag box
    page.wait_for_function("() => document.querySelector('#wb-choice input[value=\"B\"]').checked")
    assert page.locator("#wb-flag-reason input").input_value() == ""


def test_a_draft_survives_a_side_switch_and_a_reload(app, browser):
    url, store = app
    store.import_items(_items()[1:], overlap=1)
    page = _page(browser, url, "bob")
    item = _wait_item(page)
    page.keyboard.press("a")
    page.keyboard.press("3")
    page.wait_for_function("() => document.querySelector('#wb-editor textarea').value !== ''")
    page.locator("#wb-editor textarea").fill("my edit of A")
    _saved(store, "bob", item, "A", "my edit of A")
    page.locator("#wb-edit-diff ins").first.wait_for()  # the edit against the response it started from
    assert "edit" in "".join(page.locator("#wb-edit-diff ins").all_inner_texts())
    assert "Answer" in "".join(page.locator("#wb-edit-diff del").all_inner_texts())
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    right = store.shown_responses("bob", item)[1]
    page.wait_for_function("t => document.querySelector('#wb-editor textarea').value === t", arg=right)
    page.locator("#wb-edit-diff ins").wait_for(state="detached")  # B is unchanged: no diff
    page.keyboard.press("a")
    page.wait_for_function("() => document.querySelector('#wb-editor textarea').value === 'my edit of A'")

    page.reload()
    assert _wait_item(page) == item
    page.wait_for_function("() => document.querySelector('#wb-editor textarea').value === 'my edit of A'")
    assert page.locator('#wb-choice input[value="A"]').is_checked()
    assert page.locator('#wb-level input[value="slightly_better"]').is_checked()
    assert page.locator("#wb-submit").is_enabled()


def test_after_a_submit_the_next_item_is_at_the_top_and_keys_work_at_once(app, browser):
    url, store = app
    store.import_items(_items()[1:], overlap=1)
    page = _page(browser, url, "bob", width=1000)
    item = _wait_item(page)
    page.keyboard.press("b")
    page.keyboard.press("2")
    page.wait_for_function("t => document.querySelector('#wb-editor textarea').value === t",
                           arg=store.shown_responses("bob", item)[1])
    page.keyboard.press("e")  # into the editor, then submit from inside it
    page.keyboard.type(" (checked)")
    _saved(store, "bob", item, "B", store.shown_responses("bob", item)[1] + " (checked)")
    page.evaluate(SUBMIT_STATE_WHEN_ITEM_SET)
    page.keyboard.press("Control+Enter")
    nxt = _wait_item(page, item)
    # Submit was already disabled for the new item (it had stayed enabled for the last item's answer
    # until a timer's next tick: a click then went out for no answer, or was lost)
    assert [d for v, d in page.evaluate("window.__wbSubmitWhenSet") if v == nxt] == [True]
    assert "Saved your answer on item " + item in page.locator("#wb-status .wb-ok").inner_text()
    page.wait_for_function("() => window.scrollY === 0 && document.activeElement === document.body")
    assert "1 left for you" in page.locator("#wb-progress").inner_text()
    page.keyboard.press("a")  # a shortcut, not text typed into a box
    page.wait_for_function("() => document.querySelector('#wb-choice input[value=\"A\"]').checked")
    page.wait_for_function("t => document.querySelector('#wb-editor textarea').value === t",
                           arg=store.shown_responses("bob", nxt)[0])
    assert store.export()[0].edited.endswith(" (checked)")


def test_tie_needs_no_strength_and_each_level_shows_its_definition(app, browser):
    url, store = app
    store.import_items(_items()[1:], overlap=1)
    page = _page(browser, url, "bob")
    item = _wait_item(page)
    guidelines = page.get_by_text("Judge correctness first")
    assert guidelines.is_visible()  # open at the first login
    levels = page.locator("#wb-level").inner_text()
    assert "significantly better [1]: one is right and the other wrong or useless" in levels
    assert "marginally better [4]: nearly equal" in levels
    page.keyboard.press("a")
    page.wait_for_function("() => document.querySelector('#wb-editor textarea').value !== ''")
    assert page.locator("#wb-submit").is_disabled()  # a side without a strength is not complete
    page.keyboard.press("t")
    page.wait_for_function("() => !document.querySelector('#wb-submit').disabled && "
                           "document.querySelector('#wb-editor textarea').value === ''")
    page.keyboard.press("Control+Enter")
    _wait_item(page, item)
    assert "(tie (equally good))" in page.locator("#wb-status").inner_text()
    assert [(o["annotator"], o["outcome"]) for o in store.export_outcomes()] == [("bob", "tie")]
    assert store.export() == []
    page.reload()
    _wait_item(page)
    guidelines.wait_for()  # still open: bob has not confirmed reading them
    page.locator("#wb-guidelines-ack").click()
    guidelines.wait_for(state="hidden")
    page.reload()
    _wait_item(page)
    assert not guidelines.is_visible()  # closed once the account confirmed reading them
    assert not page.locator("#wb-guidelines-ack").is_visible()
    page.keyboard.press("g")
    guidelines.wait_for()


def test_undo_asks_first_and_brings_back_the_answer_it_withdrew(app, browser):
    url, store = app
    store.import_items(_items()[1:], overlap=1)
    page = _page(browser, url, "bob")
    item = _wait_item(page)
    page.keyboard.press("b")
    page.keyboard.press("4")
    page.wait_for_function("t => document.querySelector('#wb-editor textarea').value === t",
                           arg=store.shown_responses("bob", item)[1])
    page.locator("#wb-editor textarea").fill("Answer: edited")
    _saved(store, "bob", item, "B", "Answer: edited")
    page.locator("#wb-submit").click()
    nxt = _wait_item(page, item)
    page.keyboard.press("u")
    confirm = page.locator("#wb-undo-confirm")
    confirm.wait_for()
    assert item in confirm.inner_text() and "B, marginally better, edited" in confirm.inner_text()
    page.locator("#wb-undo-no").click()
    confirm.wait_for(state="hidden")
    assert len(store.export()) == 1  # "keep it" withdrew nothing

    page.keyboard.press("u")
    confirm.wait_for()
    page.wait_for_function("() => document.activeElement.id === 'wb-undo-yes'")
    page.keyboard.press("Enter")  # the confirmation has the focus
    assert _wait_item(page, nxt) == item
    page.wait_for_function("() => document.querySelector('#wb-editor textarea').value === 'Answer: edited'")
    assert page.locator('#wb-choice input[value="B"]').is_checked()
    assert page.locator('#wb-level input[value="marginally_better"]').is_checked()
    assert "Withdrew your answer on item " + item in page.locator("#wb-status").inner_text()
    assert store.export() == []


def test_markdown_and_code_render_while_html_in_the_text_stays_text(app, browser):
    url, store = app
    conversation = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": XSS}]
    store.import_items([_item("m0", conversation, MARKDOWN, XSS_RESPONSE)], overlap=1)
    page = _page(browser, url, "bob")
    _wait_item(page)
    sides = page.locator("#wb-left").inner_html() + page.locator("#wb-right").inner_html()
    assert "<strong>bold</strong>" in sides and '<span class="k">def</span>' in sides
    font = page.locator("#wb-responses pre.wb-code").evaluate("e => getComputedStyle(e).fontFamily")
    assert "monospace" in font
    prompt = page.locator("#wb-prompt")
    assert [r.lower() for r in prompt.locator(".wb-role").all_inner_texts()] == ["system", "user"]
    assert "<script>window.__xss = 1</script><b>bold</b>" in prompt.inner_text()
    assert XSS_RESPONSE in page.locator("#wb-responses").inner_text()
    assert page.locator("#wb-prompt script, #wb-prompt b, #wb-responses img").count() == 0
    assert page.evaluate("window.__xss") is None


def test_a_400px_viewport_gets_one_column_with_undo_away_from_submit(app, browser):
    url, store = app
    store.import_items(_items()[1:], overlap=1)
    page = _page(browser, url, "bob", width=400)
    _wait_item(page)
    left, right = page.locator("#wb-left").bounding_box(), page.locator("#wb-right").bounding_box()
    assert right["y"] >= left["y"] + left["height"] and left["width"] > 300 and right["width"] > 300
    assert page.evaluate("document.documentElement.scrollWidth") <= 400
    submit, undo = page.locator("#wb-submit").bounding_box(), page.locator("#wb-undo").bounding_box()
    assert undo["y"] > submit["y"] + submit["height"] + 100 and undo["width"] < submit["width"]


def test_admin_opens_without_taking_an_item_and_sees_flags_and_disagreements(app, browser):
    url, store = app
    store.import_items(_items()[1:], overlap=2)
    for user, choice in (("bob", "A"), ("carol", "B")):
        claim = store.claim_next(user)
        if user == "bob":
            store.flag(user, claim.item_id, "the prompt has a <typo>")
        winner_a = choice == "A"
        shown = "A" if winner_a != claim.swapped else "B"
        store.submit(user, claim.item_id, shown, "better")
    page = _page(browser, url, "alice")
    page.locator("#wb-next").wait_for()
    assert page.locator("#wb-item input").input_value() == ""
    assert not [a for a in store.audit_log("alice") if a["action"] == "claim"]
    page.get_by_role("tab", name="Admin").click()
    flags = page.locator("#wb-admin-flags")
    flags.get_by_text("the prompt has a <typo>").wait_for()
    disagreement = page.locator("#wb-admin-disagreements .wb-disagreement")
    assert disagreement.count() == 1 and "b001" in disagreement.inner_text()
    assert "bob" in disagreement.inner_text() and "carol" in disagreement.inner_text()
    summary = page.locator("#wb-admin-summary").inner_text()
    assert "not started" in summary and "Krippendorff" in summary
    annotators = page.locator("#wb-admin-annotators").inner_text()
    assert "bob" in annotators and "0%" in annotators  # bob and carol disagree on their one shared item


def test_admin_imports_creates_accounts_reopens_and_exports_in_the_browser(app, browser, tmp_path):
    url, store = app
    store.import_items(_items()[1:], overlap=2)
    for user, winner in (("bob", "a"), ("carol", "b")):
        claim = store.claim_next(user)
        store.submit(user, claim.item_id, "A" if (winner == "a") != claim.swapped else "B", "better")
    page = _page(browser, url, "alice")
    page.locator("#wb-next").wait_for()
    page.get_by_role("tab", name="Admin").click()
    summary = page.locator("#wb-admin-summary")
    summary.get_by_text("alpha at ≥ significantly better").wait_for()
    assert "agreement on the direction alone" in summary.inner_text()

    good = '{"id": "web1", "prompt": "What is 7 + 1?", "responses": ["Answer: 8", "Answer: 9"], "round": 2}'
    page.locator("#wb-import-text textarea").fill(good + '\n{"id": "web2", "prompt": "x", "colour": 1}')
    page.locator("#wb-import").click()
    error = page.locator("#wb-import-msg .wb-error")
    error.wait_for()
    assert "pasted JSONL:2: missing field 'responses'; unknown field 'colour'" in error.inner_text()
    assert store.count_items() == 2
    page.locator("#wb-import-text textarea").fill(good)
    page.locator("#wb-import").click()
    page.locator("#wb-import-msg .wb-ok", has_text="1 items added").wait_for()
    assert store.get_item("web1").round == 2 and store.count_items(round=2) == 1

    page.locator("#wb-user-name input").fill("dave")
    page.locator("#wb-user-password input").fill("short")
    page.locator("#wb-user-add").click()
    page.locator("#wb-user-msg .wb-error", has_text="at least 8 characters").wait_for()
    page.locator("#wb-user-password input").fill("dave-password")
    page.locator("#wb-user-add").click()
    page.locator("#wb-user-msg .wb-ok", has_text="Created account dave").wait_for()
    assert store.verify_user("dave", "dave-password") and not store.is_admin("dave")
    assert page.locator("#wb-user-password input").input_value() == ""
    assert "dave" in page.locator("#wb-admin-accounts").inner_text()

    item = store.export()[0].meta["item_id"]
    page.locator("#wb-reopen-item input").fill(item)
    page.locator("#wb-reopen-reason input").fill("annotators misread the prompt")
    page.locator("#wb-reopen").click()
    page.locator("#wb-reopen-msg .wb-ok", has_text="2 answers superseded").wait_for()
    page.locator("#wb-admin-disagreements", has_text="No disagreements").wait_for()
    assert store.export() == [] and len(store.export_superseded()) == 2

    page.locator("#wb-export").click()
    link = page.locator("#wb-export-file a").first
    link.wait_for()
    from urllib.parse import unquote

    cached = unquote(link.get_attribute("href").split("file=", 1)[1])  # Gradio's copy, served to the admin
    assert os.stat(cached).st_mode & 0o777 == 0o600
    with page.expect_download() as download:
        link.click()
    path = tmp_path / "export.zip"
    download.value.save_as(path)
    import zipfile

    with zipfile.ZipFile(path) as z:
        superseded = z.read("annotations_export/superseded.jsonl").decode().splitlines()
        assert len(superseded) == 2 and z.read("annotations_export/preferences.jsonl") == b""
    assert not [a for a in store.audit_log("alice") if a["action"] == "claim"]


def test_configured_guidelines_render_sanitised_and_show_once_per_account(tmp_path, serve, browser):
    store = new_store(tmp_path / "annotations.sqlite", users=("alice", "bob", "carol"))
    store.import_items(_items()[1:], overlap=2)
    text = "# Our team's rules\n\nPrefer **short** answers. <script>window.__xss = 3</script>\n\n- one\n- two\n"
    url = serve(store, guidelines=text)
    page = _page(browser, url, "bob")
    _wait_item(page)
    box = page.locator("#wb-guidelines-text")
    box.get_by_text("Our team's rules").wait_for()
    assert box.locator("h1").inner_text() == "Our team's rules" and box.locator("strong").inner_text() == "short"
    assert "<script>window.__xss = 3</script>" in box.inner_text() and page.evaluate("window.__xss") is None
    assert "Judge correctness first" not in page.content()  # the shipped text is replaced
    page.locator("#wb-guidelines-ack").click()
    box.wait_for(state="hidden")
    page.reload()
    _wait_item(page)
    assert not box.is_visible()
    other = _page(browser, url, "carol")  # another account still sees them first
    _wait_item(other)
    other.locator("#wb-guidelines-text").get_by_text("Our team's rules").wait_for()
    assert [a["user"] for a in store.audit_log() if a["action"] == "read_guidelines"] == ["bob"]


def test_long_answers_scroll_together_and_the_editor_keeps_code_indentation(app, browser):
    url, store = app
    long_a = "\n\n".join(f"Step {k}: a long line of reasoning." for k in range(80))
    long_b = "\n\n".join(f"Point {k}." for k in range(40))
    store.import_items([_item("s0", "Explain it at length.", long_a, long_b)], overlap=1)
    page = _page(browser, url, "bob")
    item = _wait_item(page)
    left, right = page.locator("#wb-left .wb-side"), page.locator("#wb-right .wb-side")
    assert left.bounding_box()["y"] == right.bounding_box()["y"]  # aligned at the top
    sizes = "e => [e.scrollHeight - e.clientHeight, e.scrollTop]"
    assert left.evaluate(sizes)[0] > 0 and right.evaluate(sizes)[0] > 0  # both scroll in their panes
    for pane, other in ((left, right), (right, left)):
        for share in (0.5, 1.0, 0.0):
            pane.evaluate("(e, s) => { e.scrollTop = s * (e.scrollHeight - e.clientHeight); }", share)
            page.wait_for_function("([sel, s]) => { const e = document.querySelector(sel); "
                                   "return Math.abs(e.scrollTop - s * (e.scrollHeight - e.clientHeight)) <= 2; }",
                                   arg=["#wb-right .wb-side" if other is right else "#wb-left .wb-side", share])

    store.import_items([_item("s1", "Write f.", "def f(x):\n    return x", "Answer: 1")], overlap=1)
    store.skip("bob", item, "too long")
    page.reload()
    code_item = _wait_item(page)
    side = "a" if store.shown_responses("bob", code_item)[0].startswith("def") else "b"
    page.keyboard.press(side)
    page.keyboard.press("2")
    box = page.locator("#wb-editor textarea")
    page.wait_for_function("() => document.querySelector('#wb-editor textarea').value.startsWith('def')")
    box.evaluate("e => { e.focus(); e.setSelectionRange(e.value.length, e.value.length); }")
    page.keyboard.press("Enter")  # keeps the indentation of "    return x"
    page.keyboard.type("y = 1")
    page.keyboard.press("Enter")
    page.keyboard.press("Shift+Tab")  # dedents the new line
    page.keyboard.type("# end")
    page.keyboard.press("Tab")  # four spaces, the focus stays in the editor
    expected = "def f(x):\n    return x\n    y = 1\n# end    "
    assert box.input_value() == expected
    assert page.evaluate("document.activeElement.tagName") == "TEXTAREA"
    _saved(store, "bob", code_item, side.upper(), expected)
    box.evaluate("e => e.setSelectionRange(0, e.value.length)")
    page.keyboard.press("Tab")  # indents every selected line
    assert box.input_value() == "\n".join("    " + line for line in expected.split("\n"))
    page.keyboard.press("Control+z")  # the browser's undo takes it back
    assert box.input_value() == expected
    page.wait_for_function(OVERLAY_MATCHES)  # unfenced code is highlighted as Python
    assert page.locator("#wb-editor pre.wb-hl code.language-python .token.keyword").all_inner_texts() == [
        "def", "return"]
    # over 30000 characters: shown plain, by the textarea itself (set at once: fill takes a minute here)
    box.evaluate("(e, t) => { e.value = t; e.dispatchEvent(new Event('input', {bubbles: true})); }",
                 "x = 1\n" * 5001)
    page.wait_for_function("() => document.querySelector('#wb-editor pre.wb-hl').hidden && getComputedStyle("
                           "document.querySelector('#wb-editor textarea')).color !== 'rgba(0, 0, 0, 0)'")


def test_the_editor_highlights_code_and_keeps_the_keys_and_the_exact_text(app, browser):
    url, store = app
    long_line = "A line long enough to wrap in the editor. " * 6
    store.import_items([_item("k0", "Write total(xs).", f"{long_line}\n```python\ndef total(xs):\n    return 0\n```",
                              "Answer: 1"), _item("k1", "What is 1 + 1?", "Answer: 2", "Answer: 3")], overlap=1)
    page = _page(browser, url, "bob")
    item = _wait_item(page)
    side = "A" if store.shown_responses("bob", item)[0].startswith("A line") else "B"
    page.keyboard.press(side.lower())
    page.keyboard.press("1")
    overlay = page.locator("#wb-editor pre.wb-hl")
    # the text the app put in the editor (no input event) is highlighted as well, laid exactly over it
    page.wait_for_function("() => document.querySelector('#wb-editor pre.wb-hl')?.textContent.startsWith('A line')")
    page.wait_for_function(OVERLAY_MATCHES)
    assert overlay.locator(".token.keyword").all_inner_texts() == ["def", "return"]

    page.keyboard.press("e")  # into the editor: replace the text by typing
    page.keyboard.press("Control+a")
    page.keyboard.type("Fixed:\n\n```python\ndef total(xs):\n")
    page.keyboard.press("Tab")
    page.keyboard.type('s = 0  # <script>window.__xss = 4</script> <img src=x onerror="window.__xss = 5">\n')
    page.keyboard.type("return s + sum(xs)\n")  # Enter kept the four spaces
    page.keyboard.press("Shift+Tab")
    page.keyboard.type("```\n")
    expected = ('Fixed:\n\n```python\ndef total(xs):\n'
                '    s = 0  # <script>window.__xss = 4</script> <img src=x onerror="window.__xss = 5">\n'
                "    return s + sum(xs)\n```\n")
    box = page.locator("#wb-editor textarea")
    assert box.input_value() == expected
    page.wait_for_function(OVERLAY_MATCHES)

    def tokens(kind: str) -> list[str]:
        return overlay.locator(f".token.{kind}").all_inner_texts()
    assert tokens("keyword") == ["def", "return"] and tokens("function") == ["total"] and tokens("builtin") == ["sum"]
    assert tokens("number") == ["0"] and tokens("code-language") == ["python"]
    assert tokens("comment") == ['# <script>window.__xss = 4</script> <img src=x onerror="window.__xss = 5">']
    assert overlay.locator("script, img").count() == 0 and page.evaluate("window.__xss") is None

    _saved(store, "bob", item, side, expected)
    page.keyboard.press("Control+Enter")  # from inside the editor
    nxt = _wait_item(page, item)
    (record,) = store.export()
    assert record.edited == expected  # indentation and the final newline as typed
    page.wait_for_function("() => document.activeElement === document.body")
    page.keyboard.press("b")
    page.keyboard.press("e")
    page.wait_for_function("() => document.activeElement === document.querySelector('#wb-editor textarea')")
    page.keyboard.press("Escape")  # leaves the editor: the next key is a shortcut, not text
    page.keyboard.press("a")
    page.wait_for_function("() => document.querySelector('#wb-choice input[value=\"A\"]').checked")
    left, right = store.shown_responses("bob", nxt)
    page.wait_for_function("t => document.querySelector('#wb-editor textarea').value === t", arg=left)
    page.wait_for_function(OVERLAY_MATCHES)
    assert page.evaluate("window.__xss") is None


def test_a_submit_sent_while_a_side_switch_is_loading_is_refused_and_then_goes_through(app, browser, monkeypatch):
    """The server holds the switch from A to B (a gate on the store, in this process) while the page submits B."""
    url, store = app
    store.import_items([_item("s0", "What is 2 + 2?", "Answer: 4", "Answer: 5")], overlap=1)
    page = _page(browser, url, "carol")
    item = _wait_item(page)
    left, right = store.shown_responses("carol", item)
    page.keyboard.press("a")
    page.keyboard.press("1")
    page.wait_for_function("t => document.querySelector('#wb-editor textarea').value === t", arg=left)
    deadline = time.monotonic() + 30
    while store.draft("carol", item)["level"] != "significantly_better":
        assert time.monotonic() < deadline, f"the strength was never saved: {store.draft('carol', item)}"
        time.sleep(0.05)
    entered, release = threading.Event(), threading.Event()
    save_draft = store.save_draft

    def held(user, item_id, choice, level, edits):
        if choice == "B" and "A" in edits and not release.is_set():  # on_choose, from A to B
            entered.set()
            release.wait(60)
        return save_draft(user, item_id, choice, level, edits)
    monkeypatch.setattr(store, "save_draft", held)
    try:
        page.keyboard.press("b")
        assert entered.wait(60), "the side switch never reached the store"
        page.wait_for_function("() => document.querySelector('#wb-choice input[value=\"B\"]').checked && "
                               "!document.querySelector('#wb-submit').disabled")
        assert page.locator("#wb-editor textarea").input_value() == left
        page.keyboard.press("Control+Enter")
        answer = page.locator("#wb-edit-error .wb-error, #wb-status .wb-msg")  # refused, or saved
        answer.first.wait_for(timeout=60000)
        assert answer.all_inner_texts() == ["The editor does not hold response B yet (it is loading): submit "
                                            "again in a moment."]
        assert store.export() == [] and page.locator("#wb-item input").input_value() == item
    finally:
        release.set()
    page.wait_for_function("t => document.querySelector('#wb-editor textarea').value === t", arg=right)
    page.locator("#wb-edit-error .wb-error").wait_for(state="detached")
    page.keyboard.press("Control+Enter")
    page.locator("#wb-status .wb-ok", has_text=f"Saved your answer on item {item}").wait_for(timeout=60000)
    (record,) = store.export()
    assert record.chosen == right and record.rejected == left and record.edited is None


async def _login(page, url: str, user: str) -> None:
    await page.goto(url)
    await page.locator("input[type=text]").fill(user)
    await page.locator("input[type=password]").fill(PASSWORDS[user])
    await page.keyboard.press("Enter")


PAGE_STATE_JS = """() => {
  const q = (s) => document.querySelector(s);
  return {item: q('#wb-item input')?.value, choice: q('#wb-choice input:checked')?.value || null,
          level: q('#wb-level input:checked')?.value || null, submit_disabled: q('#wb-submit')?.disabled,
          hint: q('#wb-submit-hint')?.innerText, status: q('#wb-status')?.innerText,
          edit_error: q('#wb-edit-error')?.innerText, editor: q('#wb-editor textarea')?.value?.slice(0, 80)};
}"""


async def _next_item(page, previous: str, user: str, store: Store, or_submit_again: bool = False) -> str | None:
    """The item shown after ``previous`` (None: the app asked to submit again, when ``or_submit_again``); a
    stall fails with what the page and the store show."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    try:
        await page.wait_for_function(
            "([prev, again]) => { const e = document.querySelector('#wb-item input');"
            " const err = document.querySelector('#wb-edit-error')?.innerText || '';"
            " return (e && e.value !== prev && (e.value ||"
            " document.querySelector('#wb-prompt').innerText.startsWith('Nothing left')))"
            " || (again && err.includes('submit again')); }",
            arg=[previous, or_submit_again], timeout=60000)
    except PlaywrightTimeout:
        state = await page.evaluate(PAGE_STATE_JS)
        audit = [(a["action"], a["item_id"]) for a in store.audit_log(user=user)]
        raise AssertionError(f"{user}: no item after {previous!r} in 60 s; page {state}; audit {audit}") from None
    shown = await page.locator("#wb-item input").input_value()
    return None if or_submit_again and shown == previous else shown


async def _submit_and_next(page, item: str, user: str, store: Store, press) -> str:
    """Submit with ``press`` and return the next item. A submission that overtakes the side switch's answer
    is refused with "submit again in a moment" and the item stays: it is submitted once more, as a user would.
    After that one retry only a new item counts (the refusal's text stays on the page until the answer)."""
    await press()
    shown = await _next_item(page, item, user, store, or_submit_again=True)
    if shown is not None:
        return shown
    await page.wait_for_function("() => !document.querySelector('#wb-submit').disabled")
    await press()
    return await _next_item(page, item, user, store)


async def _annotate(page, url: str, user: str, store: Store, keyboard: bool, edit_first: str | None) -> list:
    """Answer every item: pick the shown side holding response a; returns (item, shown choice) pairs."""
    await _login(page, url, user)
    done, item = [], await _next_item(page, "", user, store)
    while True:
        if not item:
            return done
        choice = "A" if store.shown_responses(user, item)[0] == store.get_item(item).response_a else "B"
        if keyboard:
            await page.keyboard.press("Escape")
            await page.keyboard.press(choice.lower())
            await page.keyboard.press("3")
            await page.wait_for_function("() => !document.querySelector('#wb-submit').disabled")
            press = lambda: page.keyboard.press("Control+Enter")  # noqa: E731
        else:
            await page.locator(f'#wb-choice input[value="{choice}"]').click()
            await page.locator('#wb-level input[value="better"]').click()
            await page.wait_for_function("() => !document.querySelector('#wb-submit').disabled")
            assert await page.locator("#wb-editor textarea").input_value() == store.get_item(item).response_a
            if edit_first and not done:
                await page.locator("#wb-editor textarea").fill(edit_first)
                await page.wait_for_function("() => !document.querySelector('#wb-submit').disabled")
            press = page.locator("#wb-submit").click
        done.append((item, choice))
        item = await _submit_and_next(page, item, user, store, press)


def test_two_annotators_concurrently_with_overlap_2_mouse_and_keyboard(app):
    from playwright.async_api import async_playwright

    url, store = app
    store.import_items(_items(), overlap=2)
    edit = "2 + 3 = 5\nAnswer: 5"

    async def run():
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            pages = [await (await browser.new_context()).new_page() for _ in range(2)]
            results = await asyncio.gather(
                _annotate(pages[0], url, "bob", store, keyboard=False, edit_first=edit),
                _annotate(pages[1], url, "carol", store, keyboard=True, edit_first=None))
            await browser.close()
            return results

    # a thread of its own: the module's synchronous Playwright keeps an event loop running here
    with ThreadPoolExecutor(1) as pool:
        bob_done, carol_done = pool.submit(asyncio.run, run()).result()

    assert sorted(i for i, _ in bob_done) == sorted(i for i, _ in carol_done) == ["b000", "b001", "b002"]
    records = {(r.annotator, r.meta["item_id"]): r for r in store.export()}
    assert len(records) == 6 and store.count_completed() == 3
    for user, done, level in (("bob", bob_done, "better"), ("carol", carol_done, "slightly_better")):
        for item, _ in done:
            record = records[(user, item)]
            assert record.meta["winner"] == "a" and record.level == level
            assert record.chosen == store.get_item(item).response_a
    first_edited = records[("bob", bob_done[0][0])]
    assert first_edited.ranked() == [edit, first_edited.chosen, first_edited.rejected]
    assert sum(r.edited is not None for r in records.values()) == 1
    shown = {(a["user"], a["item_id"]): a["detail"]["choice"] for a in store.audit_log() if a["action"] == "submit"}
    assert shown == {**{("bob", i): c for i, c in bob_done}, **{("carol", i): c for i, c in carol_done}}


def test_an_empty_response_is_marked_in_the_page_and_can_be_chosen_as_it_is(app, browser):
    url, store = app
    store.import_items([_item("e0", "Say something.", "", " \n")], overlap=1)
    page = _page(browser, url, "bob")
    item = _wait_item(page)
    for side in ("#wb-left", "#wb-right"):
        assert page.locator(f"{side} .wb-empty").inner_text().strip() == "(empty response: the model wrote nothing)"
    page.keyboard.press("a")
    page.keyboard.press("4")
    # a loaded machine (the suite beside other jobs) takes more than the default 30 s here
    page.wait_for_function("() => !document.querySelector('#wb-submit').disabled", timeout=60000)
    page.locator("#wb-submit").click()
    page.wait_for_function("() => document.querySelector('#wb-status').innerText.includes('Saved')", timeout=60000)
    (record,) = store.export()
    assert (record.chosen, record.rejected, record.edited) == (*store.shown_responses("bob", item), None)
