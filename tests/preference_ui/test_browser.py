"""Two annotators in two Chromium contexts at once (Playwright), one by mouse and one keyboard-only."""

from __future__ import annotations

import asyncio
import os

import pytest
from pui_helpers import PASSWORDS

from preference_ui.items import validate_item
from preference_ui.store import Store

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
XSS = "What is 2 + 3? <script>window.__xss = 1</script><b>bold</b>"
XSS_RESPONSE = "Answer: 5 <img src=x onerror=\"window.__xss = 2\">"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing: run "
                       "`bash scripts/setup.sh --browser` (apt-get install chromium chromium-driver)"),
]


def _items():
    rows = [("b000", XSS, XSS_RESPONSE, "Answer: 6"), ("b001", "What is 1 + 1?", "Answer: 2", "Answer: 3"),
            ("b002", "What is 4 + 4?", "Answer: 8", "Answer: 9")]
    return [validate_item({"id": i, "prompt": p, "responses": [a, b], "models": ["new", "old"], "round": 1},
                          "test") for i, p, a, b in rows]


async def _login(page, url: str, user: str) -> None:
    await page.goto(url)
    await page.locator("input[type=text]").fill(user)
    await page.locator("input[type=password]").fill(PASSWORDS[user])
    await page.keyboard.press("Enter")


async def _next_item(page, previous: str) -> str:
    await page.wait_for_function(
        "prev => { const e = document.querySelector('#wb-item input'); return e && e.value !== prev && "
        "(e.value || document.querySelector('#wb-prompt textarea').value.startsWith('Nothing left')); }",
        arg=previous, timeout=60000)
    return await page.locator("#wb-item input").input_value()


async def _annotate(page, url: str, user: str, store: Store, keyboard: bool, edit_first: str | None) -> list:
    """Answer every item: pick the shown side holding response a; returns (item, shown choice) pairs."""
    await _login(page, url, user)
    done, item = [], ""
    while True:
        item = await _next_item(page, item)
        if not item:
            return done
        left = await page.locator("#wb-left textarea").input_value()
        choice = "A" if left == store.get_item(item).response_a else "B"
        if item == "b000":  # shown as text, never run
            assert await page.locator("#wb-prompt textarea").input_value() == XSS
            assert XSS_RESPONSE in (left, await page.locator("#wb-right textarea").input_value())
            assert await page.evaluate("window.__xss") is None
        if keyboard:
            await page.keyboard.press("Escape")
            await page.keyboard.press(choice.lower())
            await page.keyboard.press("3")
            await page.wait_for_function(  # the editor was filled with the chosen response
                "() => document.querySelector('#wb-editor textarea').value !== ''")
            await page.keyboard.press("Control+Enter")
        else:
            await page.locator(f'#wb-choice input[value="{choice}"]').click()
            await page.locator('#wb-level input[value="better"]').click()
            chosen = await page.locator("#wb-editor textarea").input_value()
            assert chosen == store.get_item(item).response_a
            if edit_first and not done:
                await page.locator("#wb-editor textarea").fill(edit_first)
            await page.locator("#wb-submit").click()
        done.append((item, choice))


@pytest.mark.slow
def test_two_annotators_concurrently_with_overlap_2_mouse_and_keyboard(tmp_path):
    from playwright.async_api import async_playwright
    from pui_helpers import free_port, new_store, wait_for_http

    from preference_ui.app import launch

    store = new_store(tmp_path / "annotations.sqlite")
    store.import_items(_items(), overlap=2)
    port = free_port()
    demo = launch(store, port=port, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    wait_for_http(url)
    edit = "2 + 3 = 5\nAnswer: 5"

    async def run():
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            pages = [await (await browser.new_context()).new_page() for _ in range(2)]
            results = await asyncio.gather(
                _annotate(pages[0], url, "alice", store, keyboard=False, edit_first=edit),
                _annotate(pages[1], url, "bob", store, keyboard=True, edit_first=None))
            await browser.close()
            return results

    try:
        alice_done, bob_done = asyncio.run(run())
    finally:
        demo.close()

    assert sorted(i for i, _ in alice_done) == sorted(i for i, _ in bob_done) == ["b000", "b001", "b002"]
    records = {(r.annotator, r.meta["item_id"]): r for r in store.export()}
    assert len(records) == 6 and store.count_completed() == 3
    for user, done, level in (("alice", alice_done, "better"), ("bob", bob_done, "slightly_better")):
        for item, _ in done:
            record = records[(user, item)]
            assert record.meta["winner"] == "a" and record.level == level
            assert record.chosen == store.get_item(item).response_a
    first_edited = records[("alice", alice_done[0][0])]
    assert first_edited.ranked() == [edit, first_edited.chosen, first_edited.rejected]
    assert sum(r.edited is not None for r in records.values()) == 1
    shown = {(a["user"], a["item_id"]): a["detail"]["choice"] for a in store.audit_log() if a["action"] == "submit"}
    assert shown == {**{("alice", i): c for i, c in alice_done}, **{("bob", i): c for i, c in bob_done}}
