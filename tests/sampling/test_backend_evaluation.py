"""Evaluation through the sampling backends: one generation path for sampling and `workbench eval`."""

from __future__ import annotations

import json

import pytest

from rounds.main import main
from sampling.evaluation import greedy_generator
from workbench import tasks
from workbench.evaluate import evaluate

pytestmark = pytest.mark.slow


def test_evaluation_answers_are_the_same_through_vllm_and_transformers(hf_backend, vllm_backend, tiny_model_dir):
    hf = evaluate(tiny_model_dir, 2, 3, 12, greedy_generator(hf_backend, 3))
    vl = evaluate(tiny_model_dir, 2, 3, 12, greedy_generator(vllm_backend, 3))
    assert set(hf["per_family"]) == set(tasks.FAMILIES) and hf["families"]["code"]["n"] == 2
    assert [e["response"] for e in hf["examples"]] == [e["response"] for e in vl["examples"]]
    assert hf["per_family"] == vl["per_family"]


def test_greedy_answers_stop_at_the_end_of_turn(hf_backend, tiny_model_dir):
    prompts = [[{"role": "user", "content": t.prompt}] for t in tasks.generate("math", 4, 1, canonical_only=True)]
    answers = greedy_generator(hf_backend, 0)(prompts, 12)
    full = hf_backend.generate(prompts, n=1, temperature=0.0, top_p=1.0, max_new_tokens=12, seed=0)
    assert answers == [g[0].text for g in full]
    assert all("<|eot_id|>" not in a for a in answers)


def test_the_eval_command_prints_a_table_and_writes_json(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "eval" / "tiny.json"
    code = main(["eval", "--model", str(tiny_model_dir), "--out", str(out), "--n", "1", "--backend", "transformers",
                 "--set", "eval.max_new_tokens=8", "--set", "eval.batch_size=4"])
    assert code == 0
    written = json.loads(out.read_text())
    assert written["n_per_family"] == 1 and set(written["per_family"]) == set(tasks.FAMILIES)
    printed = capsys.readouterr().out
    assert "mean" in printed and str(out) in printed


def test_the_eval_command_rejects_a_folder_without_a_model(tmp_path, capsys):
    assert main(["eval", "--model", str(tmp_path), "--out", str(tmp_path / "x.json")]) == 2
    assert "not a model folder" in capsys.readouterr().err
