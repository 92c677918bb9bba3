"""Screenshots of the annotation app for the README: annotator view (wide and 400 px) and admin view.

    .venv/bin/python docs/screenshots/take.py     # writes annotator.png, annotator_narrow.png, admin.png here

Needs Debian's Chromium (`bash scripts/setup.sh --browser`). The store is a temporary one with a
few items, two annotators' answers (one disagreement), a flag and a skip.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from preference_ui.items import validate_item  # noqa: E402
from preference_ui.store import Store  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PASSWORD = "screenshot-password"
CODE_A = ("Here is a version that stops at the first duplicate:\n\n```python\ndef first_duplicate(xs):\n"
          "    seen = set()\n    for x in xs:\n        if x in seen:\n            return x\n        seen.add(x)\n"
          "    return None\n```\n\nIt runs in **O(n)** time.")
CODE_B = ("```python\ndef first_duplicate(xs):\n    for i, x in enumerate(xs):\n        if x in xs[:i]:\n"
          "            return x\n```\n\nThis is simple but *quadratic*; it also returns nothing explicitly "
          "when there is no duplicate.")


def make_store(path: Path) -> Store:
    """A store with the items and answers the screenshots show."""
    store = Store(path)
    for name, admin in (("admin", True), ("alice", False), ("bob", False), ("carol", False)):
        store.add_user(name, PASSWORD, admin=admin)
    rows = [("py-0001", "Write a Python function `first_duplicate(xs)` that returns the first repeated "
             "element of a list, or `None`.", CODE_A, CODE_B),
            ("math-0002", "What is 17 * 3?", "17 * 3 = 51\nAnswer: 51", "Answer: 41"),
            ("math-0003", "What is 12 + 30?", "Answer: 42", "12 + 30 = 42\nAnswer: 42"),
            ("math-0004", "What is 9 - 4?", "Answer: 5", "Answer: 6")]
    store.import_items([validate_item({"id": i, "prompt": p, "responses": [a, b], "models": ["round02", "round01"],
                                       "round": 2}, "screenshots") for i, p, a, b in rows], overlap=2)
    for user, winner in (("bob", "a"), ("carol", "b")):  # a disagreement on math-0002
        for _ in range(2):
            claim = store.claim_next(user)
            if claim.item_id == "py-0001":
                store.skip(user, claim.item_id, "I cannot run Python code here")
                continue
            store.submit(user, claim.item_id, "A" if (winner == "a") != claim.swapped else "B", "better")
    store.flag("bob", "math-0002", "response B has no working, only the answer")
    return store


def main() -> int:
    """Serve a temporary store and photograph it."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from playwright.sync_api import sync_playwright

    from preference_ui.app import launch

    store = make_store(Path(tempfile.mkdtemp(prefix="screenshots.")) / "annotations.sqlite")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = launch(store, port=port, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for user, width, name in (("alice", 1280, "annotator.png"), ("alice", 400, "annotator_narrow.png"),
                                      ("admin", 1280, "admin.png")):
                page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
                page.goto(url)
                page.locator("input[type=text]").fill(user)
                page.locator("input[type=password]").fill(PASSWORD)
                page.keyboard.press("Enter")
                page.wait_for_selector("#wb-progress strong", timeout=60000)
                if user == "admin":
                    page.get_by_role("tab", name="Admin").click()
                    page.locator("#wb-admin-disagreements .wb-disagreement").wait_for()
                else:
                    page.wait_for_function("() => document.querySelector('#wb-item input').value")
                    page.keyboard.press("g")  # close the guidelines, open at a first login
                    page.keyboard.press("a")
                    page.keyboard.press("2")
                    page.wait_for_function("() => !document.querySelector('#wb-submit').disabled")
                page.screenshot(path=str(HERE / name), full_page=True)
                print(HERE / name)
            browser.close()
    finally:
        demo.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
