"""The store's rules: claims and leases, no double annotation, refusals, undo, overlap, audit, passwords."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading

import pytest

from preference_ui.items import ItemError, read_items
from preference_ui.store import NotClaimedError, Store, StoreError, ValidationError
from pui_helpers import make_items, new_store


class Clock:
    """A settable clock for lease expiry."""

    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_store_uses_wal_and_hashes_passwords(store):
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    hashed = conn.execute("SELECT password FROM users WHERE name = 'alice'").fetchone()[0]
    assert hashed.startswith("scrypt$") and "alice-password" not in hashed
    other = Store(store.path)  # a second account with the same password gets a different salt
    other.add_user("dave", "alice-password")
    assert conn.execute("SELECT password FROM users WHERE name = 'dave'").fetchone()[0] != hashed
    assert store.verify_user("alice", "alice-password")
    assert not store.verify_user("alice", "bob-password")
    assert not store.verify_user("nobody", "alice-password")
    assert all("password" not in u for u in store.users())


def test_claim_is_stable_until_submitted_and_overlap_needs_distinct_annotators(store):
    store.import_items(make_items(2), overlap=2)
    first = store.claim_next("alice")
    assert store.claim_next("alice").item_id == first.item_id  # a reload resumes the same item
    assert store.claim_next("bob").item_id == first.item_id  # overlap 2: bob gets the same item
    store.submit("alice", first.item_id, "A", "better")
    store.submit("bob", first.item_id, "B", "slightly_better")
    assert store.count_completed() == 1
    second = store.claim_next("alice")
    assert second.item_id != first.item_id
    store.submit("alice", second.item_id, "A", "better")
    assert store.claim_next("alice") is None  # never the same item twice
    with pytest.raises(NotClaimedError, match="already submitted"):
        store.submit("alice", first.item_id, "A", "better")


def test_overlap_one_hands_each_item_to_one_annotator(store):
    store.import_items(make_items(2), overlap=1)
    a, b = store.claim_next("alice"), store.claim_next("bob")
    assert a.item_id != b.item_id
    store.submit("alice", a.item_id, "A", "better")
    store.submit("bob", b.item_id, "A", "better")
    assert store.claim_next("alice") is None and store.claim_next("bob") is None
    assert store.count_completed() == 2


def test_expired_lease_goes_to_another_and_the_late_submit_is_refused(tmp_path):
    clock = Clock()
    store = new_store(tmp_path / "s.sqlite", lease_seconds=60, clock=clock)
    store.import_items(make_items(1), overlap=1)
    claim = store.claim_next("alice")
    assert store.claim_next("bob") is None  # held by alice's lease
    clock.t += 61
    assert store.claim_next("bob").item_id == claim.item_id  # the lease expired: bob takes it over
    with pytest.raises(NotClaimedError, match="expired"):
        store.submit("alice", claim.item_id, "A", "better")
    store.submit("bob", claim.item_id, "A", "better")
    assert [r.annotator for r in store.export()] == ["bob"]


def test_expired_lease_not_taken_over_may_still_submit(tmp_path):
    clock = Clock()
    store = new_store(tmp_path / "s.sqlite", lease_seconds=60, clock=clock)
    store.import_items(make_items(1), overlap=1)
    claim = store.claim_next("alice")
    clock.t += 600
    store.submit("alice", claim.item_id, "A", "better")
    assert store.count_completed() == 1


def test_submit_for_an_unclaimed_or_foreign_item_is_refused_and_writes_nothing(store):
    store.import_items(make_items(2), overlap=1)
    claim = store.claim_next("alice")
    audit_before = len(store.audit_log())
    with pytest.raises(NotClaimedError, match="not claimed by 'bob'"):
        store.submit("bob", claim.item_id, "A", "better")
    with pytest.raises(NotClaimedError, match="not claimed"):
        store.submit("alice", "it001", "A", "better")  # exists, but nobody claimed it
    with pytest.raises(NotClaimedError, match="unknown annotator"):
        store.submit("mallory", claim.item_id, "A", "better")
    assert store.export() == [] and len(store.audit_log()) == audit_before


@pytest.mark.parametrize("kwargs, message", [
    (dict(choice="C", level="better"), "choice 'C'"),
    (dict(choice=None, level="better"), "choice None"),
    (dict(choice="A", level="awesome"), "level 'awesome'"),
    (dict(choice="A", level="better", edited="   "), "edit is empty"),
    (dict(choice="A", level="better", edited="x" * 20001), "limit is 20000"),
])
def test_malformed_answers_get_a_clear_error_and_write_nothing(store, kwargs, message):
    store.import_items(make_items(1), overlap=1)
    claim = store.claim_next("alice")
    audit_before = len(store.audit_log())
    with pytest.raises(ValidationError, match=message):
        store.submit("alice", claim.item_id, **kwargs)
    assert store.export() == [] and len(store.audit_log()) == audit_before
    store.submit("alice", claim.item_id, "A", "better")  # the claim is intact


def test_sides_are_randomised_per_annotator_and_mapped_back(store):
    store.import_items(make_items(40), overlap=1)
    swaps = []
    for _ in range(40):
        claim = store.claim_next("alice")
        swaps.append(claim.swapped)
        correct_side = "B" if claim.swapped else "A"  # response a is the correct one
        assert (claim.left, claim.right)[correct_side == "B"] == store.get_item(claim.item_id).response_a
        store.submit("alice", claim.item_id, correct_side, "better")
    assert 5 < sum(swaps) < 35
    records = store.export()
    assert all(r.chosen == store.get_item(r.meta["item_id"]).response_a for r in records)
    assert all(r.meta["winner"] == "a" and r.meta["chosen_model"] == "policy-new" for r in records)


def test_undo_withdraws_the_last_submission_and_shows_that_item_again(store):
    store.import_items(make_items(3), overlap=1)
    first = store.claim_next("alice")
    store.submit("alice", first.item_id, "A", "better")
    second = store.claim_next("alice")  # holds the next item while undoing
    assert store.undo_last("alice") == first.item_id
    assert store.claim_next("alice").item_id == first.item_id
    assert store.export() == [] and store.stats()["undone"] == 1
    store.submit("alice", first.item_id, "B", "marginally_better")
    assert [(r.meta["item_id"], r.level) for r in store.export()] == [(first.item_id, "marginally_better")]
    assert store.claim_next("alice").item_id == second.item_id
    assert store.undo_last("bob") is None


def test_skip_needs_a_reason_and_frees_the_slot_for_others(store):
    store.import_items(make_items(1), overlap=1)
    claim = store.claim_next("alice")
    with pytest.raises(ValidationError, match="give a reason"):
        store.skip("alice", claim.item_id, "  ")
    store.skip("alice", claim.item_id, "cannot judge code")
    assert store.claim_next("alice") is None  # not offered again
    assert store.claim_next("bob").item_id == claim.item_id
    assert store.stats()["skipped"] == 1


def test_flag_only_items_the_annotator_was_given(store):
    store.import_items(make_items(2), overlap=1)
    claim = store.claim_next("alice")
    store.flag("alice", claim.item_id, "prompt is garbled")
    with pytest.raises(NotClaimedError, match="never given"):
        store.flag("alice", "it001", "probing")
    assert [f["reason"] for f in store.flags()] == ["prompt is garbled"]
    store.submit("alice", claim.item_id, "A", "better")  # flagging does not skip


def test_audit_log_records_every_action_and_is_append_only(store):
    store.import_items(make_items(2), overlap=1)
    c = store.claim_next("alice")
    store.flag("alice", c.item_id, "odd")
    store.submit("alice", c.item_id, "A", "better")
    store.undo_last("alice")
    store.claim_next("alice")
    store.skip("alice", c.item_id, "unsure")
    actions = [a["action"] for a in store.audit_log("alice")]
    assert actions == ["add_user", "claim", "flag", "submit", "undo", "skip"]
    conn = sqlite3.connect(store.path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit SET action = 'x'")


def test_quota_limits_submissions_per_annotator(tmp_path):
    store = new_store(tmp_path / "s.sqlite", quota=1)
    store.import_items(make_items(3), overlap=1)
    store.submit("alice", store.claim_next("alice").item_id, "A", "better")
    assert store.claim_next("alice") is None
    assert store.claim_next("bob") is not None


def test_import_is_idempotent_and_refuses_conflicting_ids(store, tmp_path):
    assert store.import_items(make_items(3), overlap=2) == {"added": 3, "existing": 0}
    assert store.import_items(make_items(3), overlap=2) == {"added": 0, "existing": 3}
    changed = make_items(4)
    changed[0].response_a = "Answer: 999"
    with pytest.raises(ValidationError, match="already exists"):
        store.import_items(changed, overlap=2)
    assert store.count_items() == 3  # the new it003 was not written either
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "prompt": "hi", "responses": ["only one"]}\n')
    with pytest.raises(ItemError, match=r"bad.jsonl:1: field 'responses'"):
        read_items(bad)


def test_round_filter_hands_out_only_that_rounds_items(store):
    store.import_items(make_items(2, prefix="r1-", round=1) + make_items(2, prefix="r2-", round=2), overlap=1)
    assert store.claim_next("alice", round=2).item_id.startswith("r2-")
    assert store.count_items(round=1) == 2 and store.count_completed(round=2) == 0


def test_concurrent_claims_from_threads_never_double_assign(tmp_path):
    store = new_store(tmp_path / "s.sqlite", users=())
    names = [f"user{k}" for k in range(8)]
    for name in names:
        store.ensure_user(name)
    store.import_items(make_items(30), overlap=2)
    done: dict[str, list[str]] = {name: [] for name in names}

    def work(name):
        while (claim := store.claim_next(name)) is not None:
            store.submit(name, claim.item_id, "A", "better")
            done[name].append(claim.item_id)

    threads = [threading.Thread(target=work, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    per_item: dict[str, int] = {}
    for name, items in done.items():
        assert len(items) == len(set(items))  # nobody twice
        for item in items:
            per_item[item] = per_item.get(item, 0) + 1
    assert per_item == {f"it{k:03d}": 2 for k in range(30)}  # exactly overlap each
    assert len(store.export()) == 60


def _process_worker(path: str, name: str, queue) -> None:
    store = Store(path)
    items = []
    while (claim := store.claim_next(name)) is not None:
        store.submit(name, claim.item_id, "A", "better")
        items.append(claim.item_id)
    queue.put((name, items))


def test_concurrent_claims_from_processes_never_double_assign(tmp_path):
    store = new_store(tmp_path / "s.sqlite", users=())
    names = [f"proc{k}" for k in range(4)]
    for name in names:
        store.ensure_user(name)
    store.import_items(make_items(24), overlap=1)
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_process_worker, args=(str(store.path), n, queue)) for n in names]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    handed = [item for items in results.values() for item in items]
    assert sorted(handed) == [f"it{k:03d}" for k in range(24)]  # each item once, none lost
    assert store.count_completed() == 24


def test_add_user_validates_names_and_passwords(store):
    with pytest.raises(ValidationError, match="user name"):
        store.add_user("bad name!", "long-enough")
    with pytest.raises(ValidationError, match="at least 8"):
        store.add_user("eve", "short")
    with pytest.raises(StoreError, match="already exists"):
        store.add_user("alice", "another-password")
    store.add_user("alice", "another-password", update=True)
    assert store.verify_user("alice", "another-password")


def test_the_store_file_is_readable_by_its_owner_only(store):
    import os
    import stat

    claim_and_write = store.claim_next  # any write creates the -wal file
    claim_and_write("alice")
    for path in store.path.parent.glob(store.path.name + "*"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


def test_errors_name_the_input_that_caused_them(store):
    store.import_items(make_items(1))
    item = store.claim_next("bob").item_id
    for kwargs, field in (({"choice": "C", "level": "better"}, "choice"), ({"choice": "A", "level": "best"}, "level"),
                          ({"choice": "A", "level": "better", "edited": " "}, "edit")):
        with pytest.raises(ValidationError) as exc:
            store.submit("bob", item, **kwargs)
        assert exc.value.field == field
    with pytest.raises(ValidationError) as exc:
        store.skip("bob", item, "")
    assert exc.value.field == "skip"
    with pytest.raises(NotClaimedError) as exc:
        store.submit("alice", item, "A", "better")
    assert exc.value.field is None


def test_a_draft_keeps_each_sides_edit_and_goes_with_the_submission(store):
    store.import_items(make_items(2), overlap=1)
    item = store.claim_next("bob").item_id
    assert store.draft("bob", item) == {"choice": None, "level": None, "edits": {}}
    store.save_draft("bob", item, "A", None, {"A": "edit of A"})
    store.save_draft("bob", item, "B", "better", {"B": "edit of B"})  # a side switch keeps A's edit
    assert store.draft("bob", item) == {"choice": "B", "level": "better", "edits": {"A": "edit of A", "B": "edit of B"}}
    with pytest.raises(ValidationError, match="limit is 20000") as exc:
        store.save_draft("bob", item, "A", None, {"A": "x" * 20001})
    assert exc.value.field == "edit" and store.draft("bob", item)["edits"]["A"] == "edit of A"
    with pytest.raises(NotClaimedError):
        store.save_draft("alice", item, "A", None, {})
    store.submit("bob", item, "B", "better", "edit of B")
    assert store.draft("bob", item)["edits"] == {}
    with pytest.raises(NotClaimedError, match="already submitted"):
        store.save_draft("bob", item, "A", None, {})


def test_undo_after_confirmation_restores_the_withdrawn_answer_as_the_draft(store):
    store.import_items(make_items(3), overlap=1)
    first = store.claim_next("bob").item_id
    store.submit("bob", first, "B", "slightly_better", "my better answer")
    assert store.last_submission("bob")["item_id"] == first
    second = store.claim_next("bob").item_id
    store.submit("bob", second, "A", "better")
    confirmed = store.last_submission("bob")
    with pytest.raises(NotClaimedError, match="not the one you confirmed"):
        store.undo_last("bob", annotation_id=confirmed["id"] - 1)
    assert len(store.export()) == 2  # a stale confirmation withdrew nothing
    assert store.undo_last("bob", annotation_id=confirmed["id"]) == second
    shown_a = store.shown_responses("bob", second)[0]
    assert store.draft("bob", second) == {"choice": "A", "level": "better", "edits": {"A": shown_a}}
    assert store.undo_last("bob") == first
    assert store.draft("bob", first) == {"choice": "B", "level": "slightly_better",
                                         "edits": {"B": "my better answer"}}
    assert store.claim_next("bob").item_id == first


def test_progress_counts_what_is_left_for_the_annotator(tmp_path):
    store = new_store(tmp_path / "s.sqlite", quota=3)
    store.import_items(make_items(5), overlap=1)
    assert store.progress("bob")["left"] == 3  # the quota caps it
    item = store.claim_next("bob").item_id
    assert store.progress("bob")["left"] == 3  # the held item is still left
    store.submit("bob", item, "A", "better")
    p = store.progress("bob")
    assert (p["submitted"], p["left"]) == (1, 2)
    assert store.progress("alice")["left"] == 3  # four open items, capped by the quota


def test_claim_without_taking_a_new_item_returns_only_a_held_one(store):
    store.import_items(make_items(2), overlap=1)
    assert store.claim_next("alice", take_new=False) is None
    assert not [a for a in store.audit_log("alice") if a["action"] == "claim"]
    held = store.claim_next("alice").item_id
    assert store.claim_next("alice", take_new=False).item_id == held


def test_review_lists_skips_flags_disagreements_and_per_annotator_agreement(tmp_path):
    store = new_store(tmp_path / "s.sqlite", users=("alice", "bob", "carol"))
    store.import_items(make_items(3), overlap=2)

    def answer(user: str, winner: str) -> str:
        claim = store.claim_next(user)
        store.submit(user, claim.item_id, "A" if (winner == "a") != claim.swapped else "B", "better")
        return claim.item_id

    assert answer("bob", "a") == answer("carol", "b")  # it000: they disagree
    assert answer("bob", "a") == answer("carol", "a")  # it001: they agree
    skipped = store.claim_next("bob").item_id
    store.flag("bob", skipped, "garbled")
    store.flag("bob", skipped, "garbled, really")
    store.skip("bob", skipped, "cannot tell")
    assert [(s["item_id"], s["user"], s["reason"]) for s in store.skips()] == [(skipped, "bob", "cannot tell")]
    (disagreement,) = store.disagreements()
    assert disagreement["item_id"] == "it000"
    assert sorted((a["user"], a["winner"]) for a in disagreement["answers"]) == [("bob", "a"), ("carol", "b")]
    stats = {a["user"]: a for a in store.annotator_stats()}
    assert stats["bob"]["submitted"] == 2 and stats["bob"]["skipped"] == 1 and stats["bob"]["flagged"] == 1
    assert stats["bob"]["agreement"] == stats["carol"]["agreement"] == 0.5
    assert stats["bob"]["overlapping"] == 2 and stats["bob"]["median_seconds"] >= 0.0
    store.claim_next("carol")  # it002, which bob skipped: held by carol now
    assert store.item_status() == {1: {"open": 0, "in_progress": 1, "complete": 2}}


def test_tie_both_bad_and_cannot_judge_are_answers_kept_out_of_the_preferences(tmp_path):
    store = new_store(tmp_path / "s.sqlite", users=("alice", "bob", "carol"))
    store.import_items(make_items(2), overlap=3)
    item = store.claim_next("alice").item_id
    with pytest.raises(ValidationError, match="no strength and no edit") as exc:
        store.submit("alice", item, "tie", "better")
    assert exc.value.field == "level"
    store.submit("alice", item, "tie", None)
    store.submit("bob", store.claim_next("bob").item_id, "both_bad", None)
    claim = store.claim_next("carol")
    store.submit("carol", claim.item_id, "B" if claim.swapped else "A", "slightly_better")
    assert store.count_completed() == 1  # an outcome counts towards the overlap
    assert [r.annotator for r in store.export()] == ["carol"]
    outcomes = store.export_outcomes()
    assert [(o["annotator"], o["outcome"]) for o in outcomes] == [("alice", "tie"), ("bob", "both_bad")]
    assert outcomes[0]["response_a"] == store.get_item(item).response_a
    stats = store.stats()
    assert stats["outcomes"] == {"tie": 1, "both_bad": 1, "cannot_judge": 0} and stats["annotations"] == 3
    assert len(store.disagreements()) == 1
    assert store.undo_last("alice") == item  # an outcome is withdrawn like any answer, back as the draft
    assert store.draft("alice", item) == {"choice": "tie", "level": None, "edits": {}}


def test_a_schema_1_store_is_migrated_keeping_its_annotations(tmp_path):
    path = tmp_path / "old.sqlite"
    store = new_store(path)
    store.import_items(make_items(2), overlap=1)
    claim = store.claim_next("bob")
    store.submit("bob", claim.item_id, "A", "better")
    store.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript("""
        CREATE TABLE v1 (id INTEGER PRIMARY KEY AUTOINCREMENT, item_id TEXT NOT NULL REFERENCES items(id),
            user TEXT NOT NULL REFERENCES users(name), choice TEXT NOT NULL CHECK (choice IN ('A', 'B')),
            winner TEXT NOT NULL CHECK (winner IN ('a', 'b')), level TEXT NOT NULL, edited TEXT,
            swapped INTEGER NOT NULL, claimed_at REAL NOT NULL, created_at REAL NOT NULL, undone_at REAL);
        INSERT INTO v1 SELECT * FROM annotations; DROP TABLE annotations; ALTER TABLE v1 RENAME TO annotations;
        UPDATE settings SET value = '1' WHERE key = 'schema_version';""")
    conn.close()
    migrated = Store(path)
    assert [r.meta["item_id"] for r in migrated.export()] == [claim.item_id]
    migrated.submit("bob", migrated.claim_next("bob").item_id, "cannot_judge", None)
    assert migrated.stats()["outcomes"]["cannot_judge"] == 1
    assert sqlite3.connect(path).execute("SELECT value FROM settings WHERE key = 'schema_version'").fetchone()[0] == "2"


def test_empty_and_blank_responses_are_stored_exported_and_chosen_as_they_are(store, tmp_path):
    import json

    from preference_ui.app import EMPTY_RESPONSE, _side
    from preference_ui.export import write_export
    from preference_ui.items import validate_item

    item = validate_item({"id": "e1", "prompt": "Say something.", "responses": ["", " \n\t"]}, "test")
    store.import_items([item])
    claim = store.claim_next("alice")
    assert {claim.left, claim.right} == {"", " \n\t"}
    empty_side = "A" if claim.left == "" else "B"
    store.submit("alice", "e1", empty_side, "marginally_better", edited="")  # the editor held the empty response
    (record,) = store.export()
    assert (record.chosen, record.rejected, record.edited) == ("", " \n\t", None)
    write_export(store, tmp_path / "out")
    (row,) = [json.loads(line) for line in (tmp_path / "out" / "preferences.jsonl").read_text().splitlines()]
    assert (row["chosen"], row["rejected"]) == ("", " \n\t")
    # the page marks an empty response; the stored text stays as it was
    assert EMPTY_RESPONSE in _side("Response A", " \n\t") and EMPTY_RESPONSE not in _side("Response A", "x")
    assert store.get_item("e1").response_b == " \n\t"


def test_open_items_lists_what_claim_next_hands_out_without_claiming(store):
    store.import_items(make_items(5), overlap=1)
    first = store.claim_next("bob")
    ahead = store.open_items("alice", limit=3)
    assert [i.id for i in ahead] == ["it001", "it002", "it003"] and first.item_id == "it000"
    assert [a for a in store.audit_log("alice") if a["action"] == "claim"] == []
    assert [store.claim_next("alice").item_id for _ in range(1)] == ["it001"]
    assert [i.id for i in store.open_items("alice", limit=10)] == ["it002", "it003", "it004"]
