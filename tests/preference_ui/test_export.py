"""Export to the preference schema (JSONL, datasets, stats) and Krippendorff's alpha."""

from __future__ import annotations

import json

import pytest
from pui_helpers import make_items, new_store

from preference_ui.agreement import krippendorff_alpha, signed_score
from preference_ui.export import write_export
from rounds.main import main
from workbench.preferences import read_jsonl


def _answer(store, user, correct_side, level, edited=None):
    claim = store.claim_next(user)
    shown = {"a": "B" if claim.swapped else "A", "b": "A" if claim.swapped else "B"}[correct_side]
    store.submit(user, claim.item_id, shown, level, edited)
    return claim


def test_export_writes_the_schema_with_edited_over_chosen_over_rejected(tmp_path):
    store = new_store(tmp_path / "s.sqlite")
    store.import_items(make_items(2), overlap=2)
    first = _answer(store, "alice", "a", "better", edited="0 + 1 = 1\nAnswer: 1")
    _answer(store, "bob", "a", "significantly_better")
    _answer(store, "alice", "b", "marginally_better")
    stats = write_export(store, tmp_path / "out")
    records = {r.id: r for r in read_jsonl(tmp_path / "out" / "preferences.jsonl")}
    edited = records[f"{first.item_id}:alice"]
    assert edited.ranked() == ["0 + 1 = 1\nAnswer: 1", "Answer: 1", "Answer: 2"]  # edited > chosen > rejected
    assert len(edited.pairs()) == 3 and edited.round == 1 and edited.prompt[0]["role"] == "user"
    assert records[f"{first.item_id}:bob"].edited is None
    assert records["it001:alice"].chosen == "Answer: 3" and records["it001:alice"].rejected == "Answer: 2"
    from datasets import load_from_disk

    ds = load_from_disk(str(tmp_path / "out" / "dataset"))
    assert len(ds) == 3 and set(ds.column_names) >= {"prompt", "chosen", "rejected", "edited", "level"}
    on_disk = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert on_disk["levels"] == {"significantly_better": 1, "better": 1, "slightly_better": 0,
                                 "marginally_better": 1} == stats["levels"]
    assert on_disk["edited"] == 1 and on_disk["annotators"] == {"alice": 2, "bob": 1}


def test_export_keeps_outcomes_apart_and_writes_skip_and_flag_reasons(tmp_path):
    store = new_store(tmp_path / "s.sqlite")
    store.import_items(make_items(3), overlap=1)
    _answer(store, "alice", "a", "better")
    tied = store.claim_next("alice").item_id
    store.flag("alice", tied, "both say the same")
    store.flag("alice", tied, "both say the same, twice")
    store.submit("alice", tied, "tie", None)
    skipped = store.claim_next("bob").item_id
    store.skip("bob", skipped, "not my language")
    write_export(store, tmp_path / "out")
    assert [r.meta["item_id"] for r in read_jsonl(tmp_path / "out" / "preferences.jsonl")] == ["it000"]
    (outcome,) = [json.loads(line) for line in (tmp_path / "out" / "outcomes.jsonl").read_text().splitlines()]
    assert outcome["outcome"] == "tie" and outcome["meta"]["item_id"] == tied
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["outcomes"]["tie"] == 1 and stats["flags"] == 1  # two clicks, one flagged item
    assert stats["skip_reasons"] == [{"item_id": skipped, "user": "bob", "reason": "not my language"}]
    assert [f["reason"] for f in stats["flag_reasons"]] == ["both say the same", "both say the same, twice"]


def test_the_trl_export_holds_the_pairs_of_the_preferences_in_trls_conversational_format(tmp_path):
    store = new_store(tmp_path / "s.sqlite")
    store.import_items(make_items(3), overlap=1)
    edited = _answer(store, "alice", "a", "better", edited="0 + 1 = 1\nAnswer: 1").item_id
    plain = _answer(store, "alice", "b", "slightly_better").item_id
    store.submit("alice", store.claim_next("alice").item_id, "tie", None)  # not a preference: not exported
    write_export(store, tmp_path / "out")
    rows = [json.loads(line) for line in (tmp_path / "out" / "preferences_trl.jsonl").read_text().splitlines()]
    user = lambda text: [{"role": "user", "content": text}]  # noqa: E731
    answer = lambda text: [{"role": "assistant", "content": text}]  # noqa: E731
    assert rows == [
        {"prompt": user("What is 0 + 1?"), "chosen": answer("0 + 1 = 1\nAnswer: 1"), "rejected": answer("Answer: 1"),
         "id": f"{edited}:alice", "level": "better"},
        {"prompt": user("What is 0 + 1?"), "chosen": answer("0 + 1 = 1\nAnswer: 1"), "rejected": answer("Answer: 2"),
         "id": f"{edited}:alice", "level": "better"},
        {"prompt": user("What is 1 + 1?"), "chosen": answer("Answer: 3"), "rejected": answer("Answer: 2"),
         "id": f"{plain}:alice", "level": "slightly_better"},
    ]


def test_a_tie_scores_zero_in_the_agreement(tmp_path):
    store = new_store(tmp_path / "s.sqlite")
    store.import_items(make_items(2), overlap=2)
    for user in ("alice", "bob"):
        for _ in range(2):
            store.submit(user, store.claim_next(user).item_id, "tie", None)
    assert store.agreement() == {"alpha": None, "items": 2, "annotations": 4}  # all ties: no variation


def test_signed_score_uses_the_fixed_order_not_the_shown_one():
    assert signed_score("a", "significantly_better") == 4 and signed_score("b", "marginally_better") == -1


def test_krippendorff_alpha_on_the_signed_ordinal_scale():
    agree = [(f"i{k}", u, s) for k, s in enumerate([4, -3, 2, -1, 3]) for u in ("x", "y")]
    assert krippendorff_alpha(agree)["alpha"] == pytest.approx(1.0)
    disagree = [(f"i{k}", "x", s) for k, s in enumerate([4, -4, 4, -4])] + \
               [(f"i{k}", "y", -s) for k, s in enumerate([4, -4, 4, -4])]
    assert krippendorff_alpha(disagree)["alpha"] < 0
    single = krippendorff_alpha([("i0", "x", 3), ("i1", "y", 2)])  # no overlap: undefined
    assert single == {"alpha": None, "items": 0, "annotations": 0}


def test_store_agreement_ignores_which_side_was_shown(tmp_path):
    store = new_store(tmp_path / "s.sqlite")
    store.import_items(make_items(6), overlap=2)
    for k in range(6):
        level = ("better", "slightly_better", "significantly_better")[k % 3]
        for user in ("alice", "bob"):
            _answer(store, user, "a" if k % 2 else "b", level)
    agreement = store.stats()["agreement"]
    assert agreement["items"] == 6 and agreement["alpha"] == pytest.approx(1.0)


def test_cli_users_import_export(tmp_path, capsys, monkeypatch):
    db, items = tmp_path / "db.sqlite", tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps({"id": f"c{k}", "prompt": [{"role": "user", "content": "Hi <b>"}],
                                         "responses": ["x", "y"], "models": ["m1", "m2"], "round": 2}) + "\n"
                             for k in range(3)))
    common = ["--db", str(db), "--run-dir", str(tmp_path / "run")]
    monkeypatch.setenv("ANN_PASSWORD", "ann-password")
    assert main(["annotate", "users", "add", "ann", "--password-env", "ANN_PASSWORD", "--admin", *common]) == 0
    assert main(["annotate", "import", str(items), "--overlap", "1", *common]) == 0
    assert main(["annotate", "users", "list", *common]) == 0
    assert "ann" in capsys.readouterr().out
    from preference_ui.store import Store

    store = Store(db)
    store.submit("ann", store.claim_next("ann").item_id, "A", "better")
    assert main(["annotate", "export", "--round", "2", *common]) == 0
    out = tmp_path / "run" / "rounds" / "round_02" / "preferences"
    assert len(read_jsonl(out / "preferences.jsonl")) == 1 and (out / "stats.json").exists()
    assert main(["annotate", "import", str(tmp_path / "missing.jsonl"), *common]) == 2
