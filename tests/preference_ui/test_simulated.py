"""The simulated annotator's rules (TASKS.md) with the task world's real verifiers, and its store use."""

from __future__ import annotations

import random

import pytest
from pui_helpers import make_items, new_store

from preference_ui.items import validate_item
from preference_ui.simulated import SimulatedAnnotator, annotate_round, judge
from workbench.tasks import generate, verify


@pytest.fixture(scope="module")
def task():
    return generate("math", 1, seed=3, canonical_only=True)[0]


def _wrong(task, delta):
    return f"Answer: {int(task.reference) + delta}"


def test_correct_beats_incorrect_significantly_when_far_off_else_better(task):
    rng = random.Random(0)
    far, near = _wrong(task, 5000), _wrong(task, 1)
    assert verify(task, far).closeness < 0.5 <= verify(task, near).closeness
    assert (judge(task, far, task.solution, rng).winner, judge(task, far, task.solution, rng).level) == \
        ("second", "significantly_better")
    verdict = judge(task, task.solution, near, rng)
    assert (verdict.winner, verdict.level) == ("first", "better")


def test_of_two_correct_the_shorter_wins_narrowly(task):
    rng = random.Random(0)
    short = f"Answer: {task.reference}"
    padded = "Let me think about this carefully step by step.\n" + task.solution
    assert (judge(task, padded, short, rng).winner, judge(task, padded, short, rng).level) == \
        ("second", "slightly_better")
    almost = f"Answer:  {task.reference}"  # one character longer: marginal
    verdict = judge(task, short, almost, rng)
    assert (verdict.winner, verdict.level) == ("first", "marginally_better")


def test_of_two_incorrect_the_closer_wins_marginally(task):
    verdict = judge(task, _wrong(task, 300), _wrong(task, 2), random.Random(0))
    assert (verdict.winner, verdict.level) == ("second", "marginally_better")


def test_noise_flips_the_winner_at_the_configured_rate(task):
    rng = random.Random(1)
    wins = [judge(task, task.solution, _wrong(task, 5000), rng, noise=0.2).winner for _ in range(2000)]
    assert 0.17 < wins.count("second") / len(wins) < 0.23
    assert all(judge(task, task.solution, _wrong(task, 1), rng, noise=1.0).winner == "second" for _ in range(20))


def test_edit_turns_the_chosen_response_into_the_reference_solution(task):
    verdict = judge(task, _wrong(task, 3), _wrong(task, 9), random.Random(0), edit_prob=1.0)
    assert verdict.edited == task.solution and verify(task, verdict.edited).correct
    assert judge(task, task.solution, _wrong(task, 9), random.Random(0), edit_prob=1.0).edited is None


def _task_items(n: int, seed: int = 5):
    items = []
    for k, t in enumerate(generate(None, n, seed=seed)):
        wrong = "I am not sure.\nAnswer: 0" if t.family != "code" else "```python\ndef f(xs):\n    return 0\n```"
        items.append(validate_item({"id": f"s{k:03d}", "prompt": t.prompt, "responses": [t.solution, wrong],
                                    "models": ["good", "bad"], "round": 1, "meta": {"task": t.to_dict()}}, "t"))
    return items


def test_simulated_annotator_works_through_the_store_and_maps_sides_back(tmp_path):
    store = new_store(tmp_path / "s.sqlite", users=())
    store.import_items(_task_items(24), overlap=1)
    counts = SimulatedAnnotator(store, "sim", edit_prob=0.0, noise=0.0, seed=0).run()
    assert counts == {"submitted": 24, "skipped": 0}
    records = store.export()
    assert len(records) == 24
    assert all(r.meta["winner"] == "a" and r.meta["chosen_model"] == "good" for r in records)
    assert {r.meta["shown_swapped"] for r in records} == {True, False}  # sides really were shuffled
    assert {a["action"] for a in store.audit_log("sim")} >= {"claim", "submit"}


def test_simulated_annotator_skips_items_without_a_task_and_is_reproducible(tmp_path):
    runs = []
    for name in ("a.sqlite", "b.sqlite"):
        store = new_store(tmp_path / name, users=())
        store.import_items(_task_items(20) + make_items(2, prefix="notask"), overlap=1)
        assert SimulatedAnnotator(store, "sim", edit_prob=0.3, noise=0.2, seed=7).run()["skipped"] == 2
        runs.append([(r.id, r.level, r.meta["winner"], r.edited) for r in store.export()])
    assert runs[0] == runs[1]
    assert any(edited for *_, edited in runs[0])


def test_annotate_round_fills_every_overlap_slot_with_distinct_accounts(tmp_path):
    store = new_store(tmp_path / "s.sqlite", users=())
    store.import_items(_task_items(10), overlap=3)
    assert annotate_round(store, round=1, annotators=3, noise=0.1, seed=1)["submitted"] == 30
    assert store.count_completed(round=1) == 10
    assert {r.annotator for r in store.export()} == {"simulated", "simulated-2", "simulated-3"}


def test_empty_and_blank_responses_are_judged_and_exported_exactly(tmp_path):
    tasks = generate(None, 8, seed=11)
    pairs = [[(t.solution, ""), ("  \n", t.solution), ("", " ")][k % 3] for k, t in enumerate(tasks)]
    items = [validate_item({"id": f"e{k:03d}", "prompt": t.prompt, "responses": list(pair), "round": 1,
                            "meta": {"task": t.to_dict()}}, "t") for k, (t, pair) in enumerate(zip(tasks, pairs))]
    store = new_store(tmp_path / "s.sqlite", users=())
    store.import_items(items)
    assert SimulatedAnnotator(store, "sim", edit_prob=0.0, noise=0.0, seed=0).run() == {"submitted": 8, "skipped": 0}
    by_id = {r.meta["item_id"]: r for r in store.export()}
    for k, (t, (a, b)) in enumerate(zip(tasks, pairs)):
        record = by_id[f"e{k:03d}"]
        assert {record.chosen, record.rejected} == {a, b} and record.edited is None  # exact, never stripped
        if t.solution in (a, b):  # a correct response beats an empty one, significantly
            assert (record.chosen, record.level) == (t.solution, "significantly_better")
        else:  # two blank responses: equally far off and equally short, a coin picks one, marginally
            assert record.level == "marginally_better"
