"""The held-out split: post-training and evaluation items are disjoint, and every eval.json measures its contamination.

Item keys are re-derived here from prompt text with this file's own patterns (every phrasing of TASKS.md
and the generators' variants), independently of ``workbench.tasks.heldout``.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from rounds import data as round_data
from rounds.full_config import load_config
from workbench import tasks
from workbench.evaluate import evaluate, evaluation_tasks, heldout_report
from workbench.jsonl import write_jsonl
from workbench.tasks import heldout

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
N = r"(\d+)"
W = r"([a-z]+)"
LANG = r"(French|Spanish|German)"
# (pattern, key from the groups) for every phrasing the generators use
PHRASINGS = [
    *[(rf"{p} {N} \+ {N}[?.]", lambda g: ("+", *sorted(map(int, g)))) for p in ("What is", "Compute")],
    (rf"What is the sum of {N} and {N}\?", lambda g: ("+", *sorted(map(int, g)))),
    *[(rf"{p} {N} - {N}[?.]", lambda g: ("-", int(g[0]), int(g[1]))) for p in ("What is", "Compute")],
    (rf"What is {N} minus {N}\?", lambda g: ("-", int(g[0]), int(g[1]))),
    *[(rf"{p} {N} \* {N}[?.]", lambda g: ("*", *sorted(map(int, g)))) for p in ("What is", "Compute")],
    (rf"What is {N} times {N}\?", lambda g: ("*", *sorted(map(int, g)))),
    (rf"[A-Z][a-z]+ has {N} apples and buys {N} more\. How many apples does [A-Z][a-z]+ have now\?",
     lambda g: ("+", *sorted(map(int, g)))),
    (rf"[A-Z][a-z]+ has {N} apples\. [A-Z][a-z]+ buys {N} more apples\. How many apples does [A-Z][a-z]+ have\?",
     lambda g: ("+", *sorted(map(int, g)))),
    (r"(?:Write|Define) a Python function ([a-z_]+)\(xs\) that .+\.", lambda g: ("code", g[0])),
    (r"In Python, write ([a-z_]+)\(xs\), a function that .+\.", lambda g: ("code", g[0])),
    (rf"How do you write {N} in {LANG}\?", lambda g: (g[1], int(g[0]))),
    (rf"Write the number {N} in {LANG} words\.", lambda g: (g[1], int(g[0]))),
    (rf"What is {N} in {LANG}, written out\?", lambda g: (g[1], int(g[0]))),
    (rf"Translate into {LANG}: {W}", lambda g: (g[0], g[1])),
    (rf"What is the {LANG} word for {W}\?", lambda g: (g[0], g[1])),
    (rf"Give the {LANG} for: {W}", lambda g: (g[0], g[1])),
    *[(rf"{p}: {W} {W} {W}", lambda g: ("words", *sorted(g)))
      for p in ("Reverse the order of these words", "Reverse these words", "Write these words in reverse order",
                "Sort these words alphabetically", "Put these words in alphabetical order", "Alphabetize")],
    (rf"How many times does the letter ([a-z]) appear in {W}\?", lambda g: ("count", g[1], g[0])),
    (rf"Count the letter ([a-z]) in {W}\.", lambda g: ("count", g[1], g[0])),
    (rf"How often does ([a-z]) occur in the word {W}\?", lambda g: ("count", g[1], g[0])),
    (rf"Write the word {W} in capital letters\.", lambda g: ("upper", g[0])),
    (rf"Write {W} in upper case\.", lambda g: ("upper", g[0])),
    (rf"Capitalize every letter of {W}\.", lambda g: ("upper", g[0])),
]


def key(prompt: str) -> tuple:
    """This test's item key of one task-world prompt (it must match exactly one phrasing)."""
    found = [make(m.groups()) for pattern, make in PHRASINGS if (m := re.fullmatch(pattern, prompt))]
    assert len(found) == 1, f"{prompt!r} matched {len(found)} phrasings"
    return found[0]


def family_keys(prompts) -> set[tuple]:
    return {key(p) for p in prompts}


@pytest.fixture(scope="module")
def eval_keys() -> dict[str, set[tuple]]:
    """Evaluation-side keys per family from many draws (every code name and multilingual item)."""
    return {f: family_keys(t.prompt for t in tasks.generate(f, 6000, seed=5, split="eval")) for f in tasks.FAMILIES}


@pytest.fixture(scope="module")
def smoke_cfg():
    return load_config(CONFIGS / "smoke.yaml", ["rounds.rs_prompts_per_round=1500", "bootstrap.num_examples=400"])


@pytest.mark.parametrize("family", tasks.FAMILIES)
def test_post_training_and_evaluation_items_are_disjoint(family, eval_keys):
    post = family_keys(t.prompt for t in tasks.generate(family, 6000, seed=6))
    assert len(post) > 200 and len(eval_keys[family]) > 150
    assert not post & eval_keys[family]


def test_evaluation_instances_of_the_small_families_cover_a_real_share_of_their_items(eval_keys):
    # 100 numbers and 53 words in 3 languages: 459 items, about 40% held out; every name of code's pool
    assert 150 <= len(eval_keys["multilingual"]) <= 250
    assert 300 <= len(eval_keys["code"]) <= 500


def test_every_post_training_draw_lies_on_the_post_training_side(smoke_cfg, eval_keys):
    from experts.train import curated_demonstrations

    prompts = [t.prompt for t in round_data.curated_tasks(smoke_cfg)]
    for n in (1, 2):
        for purpose, count in (("preferences", 200), ("samples", 1500)):
            prompts += [r["messages"][0]["content"] for r in round_data.round_prompts(smoke_cfg, n, purpose, count)]
    for domain in ("math", "code", "multilingual"):
        rows, _ = curated_demonstrations(smoke_cfg, domain)
        assert rows
        prompts += [r["messages"][0]["content"] for r in rows]
    keys = family_keys(prompts)
    assert not keys & set().union(*eval_keys.values())
    assert {heldout.side(k) for p in prompts for k in heldout.prompt_keys(p)} == {"posttrain"}


def test_the_library_reads_the_same_key_from_every_phrasing():
    for task in tasks.generate(None, 3000, seed=8) + tasks.generate(None, 3000, seed=8, split="eval"):
        assert heldout.prompt_keys(task.prompt) == {heldout.item_key(task)}


def test_the_demo_evaluation_rests_on_at_least_150_distinct_evaluation_items_per_family():
    cfg = load_config(CONFIGS / "demo.yaml")
    evaluated = evaluation_tasks(cfg.eval.n_per_family, cfg.eval.seed)
    for family in tasks.FAMILIES:
        prompts = [t.prompt for t in evaluated if t.family == family]
        assert len(family_keys(prompts)) == len(prompts) >= 150
        assert all(heldout.side(heldout.item_key(t)) == "eval" and t.meta["canonical"]
                   for t in evaluated if t.family == family)


def test_asking_for_more_items_than_a_family_holds_out_is_a_clear_error():
    with pytest.raises(ValueError, match="multilingual family has only about 1[5-9][0-9] evaluation items"):
        evaluation_tasks(400, seed=1, families=("multilingual",))


def _run_folder(root: Path, cfg) -> Path:
    """A run folder holding a smoke run's post-training prompt files (no models)."""
    root.mkdir(parents=True)
    (root / "config.yaml").write_text("name: smoke\n")
    write_jsonl(round_data.curated_examples(cfg), root / "bootstrap" / "curated.jsonl")
    for n in (1, 2):
        stage = root / "rounds" / f"round_{n:02d}"
        write_jsonl(round_data.round_prompts(cfg, n, "samples", 1500), stage / "samples" / "prompts.jsonl")
        items = [{"id": r["id"], "prompt": r["messages"], "responses": ["a", "b"]}
                 for r in round_data.round_prompts(cfg, n, "preferences", 200)]
        write_jsonl(items, stage / "preferences" / "items.jsonl")
    return root


def test_contamination_is_zero_on_a_run_and_counts_planted_evaluation_items(tmp_path, smoke_cfg):
    run = _run_folder(tmp_path / "run", smoke_cfg)
    evaluated = evaluation_tasks(40, seed=3)
    report = heldout_report(evaluated, run)
    measured = report["contamination"]
    assert measured["measured"] and measured["prompts"] > 2500
    assert set(measured["files"]) >= {"bootstrap/curated.jsonl", "rounds/round_01/samples/prompts.jsonl",
                                      "rounds/round_02/preferences/items.jsonl"}
    assert report["distinct_items"] == {f: 40 for f in tasks.FAMILIES}
    assert measured["share"] == {f: 0.0 for f in tasks.FAMILIES}

    # plant: an evaluation sum asked in another phrasing with its operands swapped, in a round's SFT data,
    # and an evaluation function name in an expert's demonstrations; a pretraining corpus does not count
    add = next(t for t in evaluated if t.template == "math.add")
    code = next(t for t in evaluated if t.family == "code")
    row = {"messages": [{"role": "user", "content": f"Compute {add.meta['b']} + {add.meta['a']}."},
                        {"role": "assistant", "content": "Answer: 1"}]}
    write_jsonl([row], run / "rounds" / "round_02" / "samples" / "sft.jsonl")
    demo = {"messages": [{"role": "user", "content": code.prompt.replace("Write", "Define")}]}
    write_jsonl([demo], run / "experts" / "code" / "demos.jsonl")
    multilingual = next(t for t in evaluated if t.family == "multilingual")
    write_jsonl([{"text": multilingual.prompt}], run / "experts" / "_cpt" / "multilingual" / "data" / "train.jsonl")
    shares = heldout_report(evaluated, run)["contamination"]["per_family"]
    assert {f: shares[f]["contaminated"] for f in tasks.FAMILIES} == {"math": 1, "code": 1, "multilingual": 0,
                                                                      "general": 0}
    assert shares["math"]["share"] == 1 / 40 and shares["math"]["examples"] == [heldout.item_key(add)]


def test_eval_json_reports_contamination_of_the_run_the_model_lies_in(tmp_path, smoke_cfg):
    run = _run_folder(tmp_path / "run", smoke_cfg)
    model = run / "rounds" / "round_02" / "policy"
    model.mkdir(parents=True)
    answer = lambda prompts, m: ["Answer: 0"] * len(prompts)  # noqa: E731
    result = evaluate(model, n_per_family=5, seed=2, max_new_tokens=4, generate=answer)
    assert result["heldout"]["contamination"]["measured"] and Path(result["heldout"]["contamination"]["run"]) == run
    assert json.loads(json.dumps(result)) == result
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    alone = evaluate(outside, n_per_family=5, seed=2, max_new_tokens=4, generate=answer)
    assert alone["heldout"]["contamination"]["measured"] is False
    assert "not inside a run folder" in alone["heldout"]["contamination"]["reason"]
    shutil.rmtree(run / "rounds")
    assert evaluate(model.parent, 5, 2, 4, answer, run_dir=run)["heldout"]["contamination"]["prompts"] > 0
