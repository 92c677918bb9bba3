"""The server SIGKILLed mid-session and restarted: acknowledged submissions survive, annotators resume."""

from __future__ import annotations

import threading

import pytest
from gradio_client import Client
from pui_helpers import PASSWORDS, free_port, make_items, new_store, server_process, stop_process

from preference_ui.store import Store

pytestmark = pytest.mark.slow


def test_sigkill_mid_session_loses_no_acknowledged_submission(tmp_path):
    db = tmp_path / "annotations.sqlite"
    new_store(db).import_items(make_items(40, prefix="k"), overlap=2)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    acked: dict[str, list[str]] = {"alice": [], "bob": []}
    with server_process(db, port, tmp_path / "server.log") as proc:
        alice = Client(url, auth=("alice", PASSWORDS["alice"]), verbose=False)
        item = alice.predict(api_name="/current")[0]
        for _ in range(2):
            answered, item = item, alice.predict(item, "A", "better", None, api_name="/submit")[0]
            acked["alice"].append(answered)
        alices_held = item  # alice is looking at this item when the server dies

        bob = Client(url, auth=("bob", PASSWORDS["bob"]), verbose=False)
        enough = threading.Event()

        def bob_works():  # bob keeps submitting until the server dies under him
            current = bob.predict(api_name="/current")[0]
            try:
                while True:
                    nxt = bob.predict(current, "B", "slightly_better", None, api_name="/submit")[0]
                    acked["bob"].append(current)
                    current = nxt
                    if len(acked["bob"]) >= 3:
                        enough.set()
            except Exception:  # the connection breaks when the server is killed
                enough.set()

        worker = threading.Thread(target=bob_works, daemon=True)
        worker.start()
        assert enough.wait(120)
        stop_process(proc)  # SIGKILL mid-session
    worker.join(60)
    assert len(acked["bob"]) >= 3

    with server_process(db, port, tmp_path / "server.log"):
        store = Store(db)
        stored = {(r.annotator, r.meta["item_id"]) for r in store.export()}
        assert {("alice", i) for i in acked["alice"]} <= stored
        assert {("bob", i) for i in acked["bob"]} <= stored
        assert len(stored) == len(store.export())  # nothing twice
        assert len(stored) - len(acked["alice"]) - len(acked["bob"]) <= 1  # at most the one cut off mid-reply
        alice = Client(url, auth=("alice", PASSWORDS["alice"]), verbose=False)
        assert alice.predict(api_name="/current")[0] == alices_held  # resumes where she was
        bob = Client(url, auth=("bob", PASSWORDS["bob"]), verbose=False)
        bobs_next = bob.predict(api_name="/current")[0]
        assert bobs_next and ("bob", bobs_next) not in stored  # his next, unanswered item
        bob.predict(bobs_next, "A", "better", None, api_name="/submit")
        assert ("bob", bobs_next) in {(r.annotator, r.meta["item_id"]) for r in store.export()}
