"""Admin actions of the store and app: reopen, import from text, accounts, export zip, per-level alpha, guidelines."""

from __future__ import annotations

import itertools
import json
import os
import zipfile

import pytest
from pui_helpers import make_items, new_store

from preference_ui.app import GUIDELINES, admin_export, admin_import, guidelines_digest, load_guidelines
from preference_ui.export import write_export
from preference_ui.items import ItemError, parse_items, read_items
from preference_ui.store import StoreError, ValidationError
from workbench.config_base import ConfigError


def _answer(store, user: str, item_id: str, winner: str, level: str | None = "better") -> None:
    """``user`` claims ``item_id`` (it must be their next) and prefers the imported response ``winner``."""
    claim = store.claim_next(user)
    assert claim.item_id == item_id
    if winner in ("tie", "both_bad", "cannot_judge"):
        store.submit(user, item_id, winner, None)
        return
    store.submit(user, item_id, "A" if (winner == "a") != claim.swapped else "B", level)


def test_reopen_supersedes_the_answers_and_sends_the_item_back_to_the_pool(tmp_path):
    store = new_store(tmp_path / "s.sqlite", users=("alice", "bob", "carol"))
    store.import_items(make_items(2), overlap=2)
    _answer(store, "bob", "it000", "a")
    _answer(store, "carol", "it000", "b", "slightly_better")
    _answer(store, "bob", "it001", "a")
    store.skip("carol", store.claim_next("carol").item_id, "not sure")
    assert store.count_completed() == 1
    with pytest.raises(StoreError, match="for admin accounts only"):
        store.reopen("bob", "it000", "retrain the annotators")
    with pytest.raises(ValidationError, match="give a reason"):
        store.reopen("alice", "it000", " ")
    with pytest.raises(ValidationError, match="'nope' does not exist"):
        store.reopen("alice", "nope", "typo")
    assert len(store.export()) == 3  # nothing was written by the refusals

    ids = store.reopen("alice", "it000", "guidelines changed")
    assert len(ids) == 2 and store.count_completed() == 0
    assert [(r.meta["item_id"], r.annotator) for r in store.export()] == [("it001", "bob")]
    superseded = store.export_superseded()
    assert [(s["item_id"], s["annotator"], s["winner"], s["reopened_by"], s["reopen_reason"])
            for s in superseded] == [("it000", "bob", "a", "alice", "guidelines changed"),
                                     ("it000", "carol", "b", "alice", "guidelines changed")]
    stats = store.stats()
    assert stats["superseded"] == 2 and stats["undone"] == 0 and stats["annotations"] == 1
    (entry,) = [a for a in store.audit_log("alice") if a["action"] == "reopen"]
    assert entry["item_id"] == "it000" and entry["detail"] == {"annotations": ids, "reason": "guidelines changed"}
    assert store.last_submission("carol") is None  # a superseded answer is not the annotator's to undo
    with pytest.raises(ValidationError, match="has no answers"):
        store.reopen("alice", "it000", "again")

    # open again: bob (who answered it) is handed it anew; carol skipped it001 and gets it000 back
    assert store.claim_next("carol").item_id == "it000"
    _answer(store, "carol", "it000", "a")
    assert store.claim_next("bob").item_id == "it000"
    _answer(store, "bob", "it000", "a")
    assert store.count_completed() == 1 and store.claim_next("carol") is None
    write_export(store, tmp_path / "out")
    lines = (tmp_path / "out" / "superseded.jsonl").read_text().splitlines()
    assert [json.loads(line)["annotator"] for line in lines] == ["bob", "carol"]
    preferences = [json.loads(line) for line in (tmp_path / "out" / "preferences.jsonl").read_text().splitlines()]
    assert sorted((p["meta"]["item_id"], p["annotator"]) for p in preferences) == [
        ("it000", "bob"), ("it000", "carol"), ("it001", "bob")]


def _nominal_alpha(units: list[tuple]) -> float:
    """Krippendorff's alpha from its coincidence-matrix definition (any metric: the data take two values)."""
    pairs = [(c, k) for unit in units for c, k in itertools.permutations(unit, 2)]  # each unit has 2 values
    values = [v for unit in units for v in unit]
    n = len(values)
    counts = {v: values.count(v) for v in set(values)}
    assert len(counts) == 2, "the hand formula here holds for two values"
    disagree = sum(c != k for c, k in pairs)
    expected = sum(counts[c] * counts[k] for c in counts for k in counts if c != k)
    return 1 - (n - 1) * disagree / expected


def test_alpha_per_level_is_the_agreement_on_preferences_of_at_least_that_level(tmp_path):
    store = new_store(tmp_path / "s.sqlite", users=("alice", "bob", "carol"))
    store.import_items(make_items(5), overlap=2)
    # (bob, carol) per item as signed strengths: + a wins, - b wins
    answers = [(4, 3), (3, 1), (2, 4), (-1, 1), (2, 2)]
    level_of = {4: "significantly_better", 3: "better", 2: "slightly_better", 1: "marginally_better"}
    for k, scores in enumerate(answers):
        for user, score in zip(("bob", "carol"), scores):
            _answer(store, user, f"it{k:03d}", "a" if score > 0 else "b", level_of[abs(score)])
    by_level = store.agreement_by_level()
    for strength, level in level_of.items():
        units = [tuple(0 if abs(s) < strength else (1 if s > 0 else -1) for s in pair) for pair in answers]
        assert by_level[level]["items"] == 5
        assert by_level[level]["alpha"] == pytest.approx(_nominal_alpha(units)), level
    assert by_level["marginally_better"]["alpha"] == pytest.approx(0.0)  # one direction flip among 10 answers
    assert store.stats()["agreement_by_level"] == by_level
    assert store.agreement_by_level(round=7)["better"] == {"alpha": None, "items": 0, "annotations": 0}


def test_pasted_items_get_the_same_errors_as_an_imported_file(tmp_path):
    lines = ['{"id": "x1", "prompt": "p", "responses": ["a", "b"]}', "",
             '{"id": 3, "responses": ["a"], "colour": 1}', "{not json"]
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ItemError) as from_file:
        read_items(path)
    with pytest.raises(ItemError) as pasted:
        parse_items("\n".join(lines), "pasted JSONL")
    assert str(from_file.value) == str(pasted.value).replace("pasted JSONL", str(path))
    assert str(pasted.value).startswith("pasted JSONL:3: missing field 'prompt'; unknown field 'colour'")
    assert "field 'responses' must be a list of two strings" in str(pasted.value)
    with pytest.raises(ItemError, match="pasted JSONL:2: not valid JSON"):
        parse_items(lines[0] + "\n" + lines[3], "pasted JSONL")
    with pytest.raises(ItemError, match="pasted JSONL:2: duplicate item id 'x1'"):
        parse_items(lines[0] + "\n" + lines[0], "pasted JSONL")


def test_admin_import_and_export_refuse_annotators_and_write_nothing(tmp_path, tmp_path_factory):
    store = new_store(tmp_path / "s.sqlite")
    good = json.dumps({"id": "p1", "prompt": "What is 1 + 1?", "responses": ["2", "3"], "round": 2})
    with pytest.raises(StoreError, match="admin accounts only"):
        admin_import(store, "bob", good, None, 1)
    with pytest.raises(StoreError, match="admin accounts only"):
        admin_export(store, "bob", "")
    with pytest.raises(StoreError, match="one of the two"):
        admin_import(store, "alice", good, str(tmp_path / "x.jsonl"), 1)
    with pytest.raises(StoreError, match="no such file on the server"):
        admin_import(store, "alice", "", str(tmp_path / "x.jsonl"), 1)
    with pytest.raises(ItemError, match="pasted JSONL:2: missing field 'responses'"):
        admin_import(store, "alice", good + '\n{"id": "p2", "prompt": "q"}', None, 1)
    outside = tmp_path_factory.mktemp("elsewhere") / "items.jsonl"
    outside.write_text(good + "\n")
    with pytest.raises(StoreError, match="only files inside the server's working directory or the store's folder"):
        admin_import(store, "alice", "", str(outside), 1)
    inside = tmp_path / "sub" / "items.jsonl"
    inside.parent.mkdir()
    inside.write_text(good + '\n{"id": "p2"}\n')
    with pytest.raises(ItemError, match=f"{inside}:2: missing field 'prompt'"):
        admin_import(store, "alice", "", str(tmp_path / "sub" / ".." / "sub" / "items.jsonl"), 1)
    assert store.count_items() == 0
    inside.write_text(good + "\n")
    assert admin_import(store, "alice", None, str(inside), 1).endswith("1 items added, 0 already there (overlap 1).")
    assert admin_import(store, "alice", good, None, 2.0) == "pasted JSONL: 0 items added, 1 already there (overlap 2)."
    assert [(a["user"], a["detail"]["added"]) for a in store.audit_log() if a["action"] == "import"] == [
        ("alice", 1), ("alice", 0)]
    with pytest.raises(StoreError, match="round 'two'"):
        admin_export(store, "alice", "two")
    _answer(store, "bob", "p1", "a")
    archive = admin_export(store, "alice", "2")
    assert os.stat(archive).st_mode & 0o777 == 0o600  # readable by the server's account only, as the store
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
        assert {"annotations_round02/preferences.jsonl", "annotations_round02/superseded.jsonl",
                "annotations_round02/stats.json", "annotations_round02/outcomes.jsonl"} <= names
        assert any(n.startswith("annotations_round02/dataset/") for n in names)
        (row,) = [json.loads(line) for line in z.read("annotations_round02/preferences.jsonl").splitlines()]
    assert row["chosen"] == "2" and row["annotator"] == "bob"
    assert [a["detail"] for a in store.audit_log("alice") if a["action"] == "export"] == [
        {"round": 2, "annotations": 1}]


def test_accounts_from_the_admin_page_follow_the_cli_rules(tmp_path):
    store = new_store(tmp_path / "s.sqlite")
    with pytest.raises(StoreError, match="admin accounts only"):
        store.add_user_by_admin("bob", "eve", "long-enough-pw")
    with pytest.raises(ValidationError, match="at least 8 characters"):
        store.add_user_by_admin("alice", "eve", "short")
    with pytest.raises(ValidationError, match="use 1-64 letters"):
        store.add_user_by_admin("alice", "e ve", "long-enough-pw")
    with pytest.raises(StoreError, match="already exists"):
        store.add_user_by_admin("alice", "bob", "long-enough-pw")
    assert not store.has_user("eve")
    store.add_user_by_admin("alice", "eve", "long-enough-pw", admin_account=True)
    assert store.verify_user("eve", "long-enough-pw") and store.is_admin("eve")
    store.add_user_by_admin("alice", "bob", "bobs-new-password", update=True)
    assert store.verify_user("bob", "bobs-new-password") and not store.is_admin("bob")
    assert [(a["user"], a["action"], a["detail"]) for a in store.audit_log() if a["detail"].get("by")] == [
        ("eve", "add_user", {"admin": True, "by": "alice"}), ("bob", "update_user", {"admin": False, "by": "alice"})]


def test_guidelines_load_from_a_file_and_are_acknowledged_per_text(store, tmp_path):
    assert load_guidelines(None) == GUIDELINES
    with pytest.raises(ConfigError, match="annotation.guidelines: cannot read .*missing.md"):
        load_guidelines(tmp_path / "missing.md")
    (tmp_path / "empty.md").write_text("  \n")
    with pytest.raises(ConfigError, match="empty.md is empty"):
        load_guidelines(tmp_path / "empty.md")
    (tmp_path / "g.md").write_text("# Our rules\n\nPrefer **short** answers.\n")
    text = load_guidelines(tmp_path / "g.md")
    first, second = guidelines_digest(text), guidelines_digest(text + "\nNew rule.")
    assert not store.acknowledged("bob", first)
    store.acknowledge("bob", first)
    store.acknowledge("bob", first)  # twice is once
    assert store.acknowledged("bob", first) and not store.acknowledged("alice", first)
    assert not store.acknowledged("bob", second)  # changed guidelines are shown again
    assert [a["action"] for a in store.audit_log("bob")].count("read_guidelines") == 2


def test_serve_refuses_unreadable_guidelines_before_starting(tmp_path, capsys):
    from rounds.main import main

    missing = tmp_path / "missing.md"
    assert main(["annotate", "serve", "--db", str(tmp_path / "s.sqlite"), "--port", "0",
                 "--set", f"annotation.guidelines={missing}"]) == 2
    assert f"annotation.guidelines: cannot read {missing}" in capsys.readouterr().err
