"""The app's guard against a real server: login rate limits, sessions, same-origin, uploads; passwords off argv."""

from __future__ import annotations

import time

import httpx
import pytest
from pui_helpers import PASSWORDS, make_items, new_store

from preference_ui.security import LoginThrottle
from rounds.main import main

pytestmark = pytest.mark.slow


@pytest.fixture
def served(tmp_path, serve):
    """A server of its own (fresh login counts) with a 3 s session: (url, store)."""
    store = new_store(tmp_path / "annotations.sqlite", users=("alice", "bob", "carol"))
    store.import_items(make_items(4), overlap=1)
    return serve(store, session_seconds=3), store


def _login(http: httpx.Client, url: str, user: str, password: str, **headers) -> httpx.Response:
    return http.post(url + "login", data={"username": user, "password": password}, headers=headers)


def _current(http: httpx.Client, url: str, **headers) -> int:
    """Status of a call that needs a session."""
    return http.post(url + "gradio_api/call/current", json={"data": []}, headers=headers).status_code


def test_the_delay_doubles_after_the_free_failures():
    delays = [LoginThrottle.delay(n, 3) for n in range(12)]
    assert delays[:3] == [0, 0, 0] and delays[3:6] == [1, 2, 4] and delays[-1] == 256
    assert LoginThrottle.delay(40, 3) == 300  # capped


def test_wrong_logins_wait_longer_each_time_even_with_the_right_password(served):
    url, _ = served
    with httpx.Client() as http:
        assert [_login(http, url, "alice", "wrong").status_code for _ in range(3)] == [400, 400, 400]
        refused = _login(http, url, "alice", PASSWORDS["alice"])
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        assert "too many failed logins" in refused.json()["detail"]
        time.sleep(1.1)
        assert _login(http, url, "alice", "wrong").status_code == 400  # the fourth failure: 2 s now
        assert _login(http, url, "alice", "wrong").headers["retry-after"] == "2"
        time.sleep(2.1)
        assert _login(http, url, "alice", PASSWORDS["alice"]).status_code == 200
        assert _login(http, url, "alice", "wrong").status_code == 400  # a success cleared the count
        assert _current(http, url) == 200


def test_failures_across_accounts_from_one_address_are_limited_too(served):
    url, _ = served
    with httpx.Client() as http:
        assert {_login(http, url, f"guess{k}", "wrong").status_code for k in range(10)} == {400}
        assert _login(http, url, "bob", PASSWORDS["bob"]).status_code == 429


def test_a_session_dies_with_a_password_change_and_after_its_lifetime(served):
    url, store = served
    with httpx.Client() as bob, httpx.Client() as carol:
        assert _login(bob, url, "bob", PASSWORDS["bob"]).status_code == 200
        assert _login(carol, url, "carol", PASSWORDS["carol"]).status_code == 200
        assert _current(bob, url) == 200 and _current(carol, url) == 200
        store.add_user("bob", "a-new-password", update=True)
        assert _current(bob, url) == 401 and _current(carol, url) == 200
        assert _login(bob, url, "bob", "a-new-password").status_code == 200 and _current(bob, url) == 200
        time.sleep(3.2)  # the fixture's session lifetime
        assert _current(bob, url) == 401 and _current(carol, url) == 401


def test_state_changing_calls_from_another_origin_are_refused(served):
    url, _ = served
    own = url.rstrip("/")
    with httpx.Client() as http:
        foreign = _login(http, url, "bob", PASSWORDS["bob"], origin="http://evil.example")
        assert foreign.status_code == 403 and "cross-origin" in foreign.json()["detail"]
        assert _login(http, url, "bob", PASSWORDS["bob"], origin="null").status_code == 403
        assert _login(http, url, "bob", PASSWORDS["bob"], origin=own).status_code == 200
        assert _current(http, url, origin="http://evil.example") == 403
        assert _current(http, url, **{"sec-fetch-site": "cross-site"}) == 403
        assert _current(http, url, origin=own, **{"sec-fetch-site": "same-origin"}) == 200


def test_uploads_are_refused_even_with_a_session(served):
    url, _ = served
    with httpx.Client() as http:
        assert _login(http, url, "bob", PASSWORDS["bob"]).status_code == 200
        response = http.post(url + "gradio_api/upload", files={"files": ("big.bin", b"x" * 20_000)})
        assert response.status_code == 403 and "uploads are off" in response.json()["detail"]


def test_users_add_takes_the_password_from_a_file_or_the_environment_never_argv(tmp_path, monkeypatch, capsys):
    db = str(tmp_path / "s.sqlite")
    secret = tmp_path / "pw.txt"
    secret.write_text("from-a-file-pw\n")
    secret.chmod(0o600)
    assert main(["annotate", "users", "add", "ann", "--password-file", str(secret), "--db", db]) == 0
    monkeypatch.setenv("ANN_PW", "from-the-environment")
    assert main(["annotate", "users", "add", "ben", "--password-env", "ANN_PW", "--db", db]) == 0
    from preference_ui.store import Store

    store = Store(db)
    assert store.verify_user("ann", "from-a-file-pw") and store.verify_user("ben", "from-the-environment")
    with pytest.raises(SystemExit):
        main(["annotate", "users", "add", "cat", "--password", "on-the-command-line", "--db", db])
    assert "a password on the command line shows in `ps`" in capsys.readouterr().err and not store.has_user("cat")
    monkeypatch.delenv("ANN_PW")
    assert main(["annotate", "users", "add", "dan", "--password-env", "ANN_PW", "--db", db]) == 2
    assert "ANN_PW is not set" in capsys.readouterr().err and not store.has_user("dan")


ITEM = '{"id": "new1", "prompt": "What is 9 + 1?", "responses": ["10", "11"]}'
# every admin endpoint with arguments that an admin's call would carry out
ADMIN_CALLS = {
    "admin_import_items": [ITEM, 1],
    "admin_add_user": ["mallory", "mallory-password", True, False],
    "admin_reopen": ["it000", "to check the refusal"],
    "admin_export_stats": [None],
    "admin_page_import": [ITEM, "", 1],
    "admin_page_add_user": ["mallory", "mallory-password", True, False],
    "admin_page_reopen": ["it000", "to check the refusal"],
    "admin_page_export": [""],
}


def _run(http: httpx.Client, url: str, name: str, data: list, **headers) -> httpx.Response:
    return http.post(url + f"gradio_api/run/{name}", json={"data": data}, headers=headers)


def _admin_writes(store) -> tuple:
    return (store.count_items(), store.has_user("mallory"), len(store.export()),
            [a["action"] for a in store.audit_log() if a["action"] in ("import", "reopen", "export", "add_user")])


def test_admin_endpoints_refuse_annotators_strangers_and_other_origins(served):
    url, store = served
    claim = store.claim_next("carol")
    store.submit("carol", claim.item_id, "A", "better")
    before = _admin_writes(store)
    with httpx.Client() as stranger, httpx.Client() as bob, httpx.Client() as alice:
        assert _login(bob, url, "bob", PASSWORDS["bob"]).status_code == 200
        assert _login(alice, url, "alice", PASSWORDS["alice"]).status_code == 200
        for name, data in ADMIN_CALLS.items():
            assert _run(stranger, url, name, data).status_code == 401, name
            refused = _run(bob, url, name, data)
            # the API raises; the page's handlers answer with the reason in their message box
            assert "admin accounts only" in refused.text and ("mallory" not in refused.text), name
            assert _run(alice, url, name, data, origin="http://evil.example").status_code == 403, name
            assert _admin_writes(store) == before, name
        # the same calls from an admin go through
        assert "1 items added" in _run(alice, url, "admin_import_items", ADMIN_CALLS["admin_import_items"]).text
        assert _run(alice, url, "admin_add_user", ADMIN_CALLS["admin_add_user"]).status_code == 200
        assert _run(alice, url, "admin_reopen", [claim.item_id, "recheck"]).status_code == 200
        assert "zip" in _run(alice, url, "admin_page_export", [""]).text
    assert store.count_items() == before[0] + 1 and store.is_admin("mallory") and store.export() == []
    assert not [a for a in store.audit_log("alice") if a["action"] == "claim"]  # no item taken by the admin
