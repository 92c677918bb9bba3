"""The app through `gradio_client` against a real server: login, ownership, validation, admin view."""

from __future__ import annotations

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError, AuthenticationError
from pui_helpers import PASSWORDS, make_items

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(live_server):
    url, store = live_server
    store.import_items(make_items(6, prefix="c"), overlap=2)
    return url, store


def _client(url: str, user: str) -> Client:
    return Client(url, auth=(user, PASSWORDS[user]), verbose=False)


def _writes(store) -> tuple[int, int]:
    return len(store.export()), sum(a["action"] in ("submit", "skip") for a in store.audit_log())


def test_calls_without_login_are_refused(server):
    url, store = server
    with pytest.raises(AuthenticationError):
        Client(url, verbose=False)
    with pytest.raises((AuthenticationError, ValueError), match="Could not login"):
        Client(url, auth=("alice", "wrong-password"), verbose=False)
    before = _writes(store)
    for path in ("gradio_api/call/submit", "gradio_api/call/current"):
        response = httpx.post(url + path, json={"data": ["c000", "A", "better", None]})
        assert response.status_code == 401
    assert _writes(store) == before


def test_login_shows_the_users_own_item_and_submit_records_it(server):
    url, store = server
    client = _client(url, "carol")
    item_id, prompt, left, right, *_, progress, status = client.predict(api_name="/current")
    assert item_id.startswith("c") and prompt.startswith("What is") and "carol" in progress
    new = client.predict(item_id, "A", "better", None, api_name="/submit")
    assert new[0] != item_id and "Saved" in new[-1]
    (record,) = [r for r in store.export() if r.annotator == "carol"]
    assert record.meta["item_id"] == item_id and record.chosen == left and record.rejected == right


def test_submit_for_another_users_or_an_unclaimed_item_is_refused(server):
    url, store = server
    alice, bob = _client(url, "alice"), _client(url, "bob")
    bobs_item = bob.predict(api_name="/current")[0]
    bobs_next = bob.predict(bobs_item, "B", "better", None, api_name="/submit")[0]
    alices_item = alice.predict(api_name="/current")[0]
    if alices_item == bobs_next:  # overlap 2 lets both hold one item; move alice on to another
        alices_item = alice.predict(alices_item, "A", "better", None, api_name="/submit")[0]
    assert alices_item not in (bobs_item, bobs_next)
    claimed = {a["item_id"] for a in store.audit_log() if a["action"] == "claim"}
    unclaimed = sorted({f"c{k:03d}" for k in range(6)} - claimed)[0]
    before = _writes(store)
    for item, pattern in ((alices_item, "not claimed by 'bob'"), (unclaimed, "not claimed by 'bob'"),
                          ("no-such-item", "not claimed by 'bob'"), (bobs_item, "already submitted")):
        with pytest.raises(AppError, match=pattern):
            bob.predict(item, "A", "better", None, api_name="/submit")
    with pytest.raises(AppError, match="not claimed by 'bob'"):
        bob.predict(alices_item, "nobody reads this", api_name="/skip")
    assert _writes(store) == before


@pytest.mark.parametrize("choice, level, edited, message", [
    ("A", "awesome", None, "level .awesome.: expected one of"),
    ("C", "better", None, "choice .C.: expected .A. \(left\), .B. \(right\) or one of"),
    (None, "better", None, "choice None"),
    ("A", None, None, "level None"),
    ("A", "better", "", "edit is empty"),
    ("A", "better", "   \n ", "edit is empty"),
    ("A", "better", "x" * 1001, "limit is 1000"),
])
def test_malformed_input_gets_a_clear_error_and_writes_nothing(server, choice, level, edited, message):
    url, store = server
    client = _client(url, "carol")
    item_id = client.predict(api_name="/current")[0]
    before = _writes(store)
    with pytest.raises(AppError, match=message):
        client.predict(item_id, choice, level, edited, api_name="/submit")
    assert _writes(store) == before
    assert client.predict(api_name="/current")[0] == item_id  # still the same claimed item


def test_undo_and_flag_through_the_api(server):
    url, store = server
    client = _client(url, "carol")
    item_id = client.predict(api_name="/current")[0]
    client.predict(item_id, "B", "slightly_better", "Answer: edited", api_name="/submit")
    assert store.export()[-1].edited == "Answer: edited"
    undone = client.predict(api_name="/undo")
    assert undone[0] == item_id and "Withdrew" in undone[-1]
    assert all(r.meta["item_id"] != item_id or r.annotator != "carol" for r in store.export())
    reason, status = client.predict(item_id, "looks truncated", api_name="/flag")
    assert reason == "" and "Flagged" in status and store.flags()[-1]["user"] == "carol"


def test_admin_view_is_for_admins_only(server):
    url, store = server
    with pytest.raises(AppError, match="admin"):
        _client(url, "bob").predict(api_name="/admin_stats")
    summary, stats = _client(url, "alice").predict(api_name="/admin_stats")
    assert "Krippendorff" in summary and stats["annotations"] == len(store.export())
