"""`workbench eval` and `evaluate`: fresh canonical instances per family, greedy, verified, summarised."""

from __future__ import annotations

import json

import pytest

from workbench import tasks
from rounds.main import main
from workbench.evaluate import evaluate, format_table


def _oracle(prompts, max_new_tokens):
    """A generator answering every canonical prompt with the task world's reference solution."""
    solutions = {t.prompt: t.solution for f in tasks.FAMILIES for t in tasks.generate(f, 3, 7, canonical_only=True)}
    return [solutions[p[-1]["content"]] for p in prompts]


def test_a_perfect_generator_scores_one_and_sees_canonical_prompts():
    seen = []

    def generate(prompts, max_new_tokens):
        seen.extend(prompts)
        return _oracle(prompts, max_new_tokens)

    result = evaluate("oracle", n_per_family=3, seed=7, max_new_tokens=16, generate=generate)
    assert result["per_family"] == {f: 1.0 for f in tasks.FAMILIES} and result["mean"] == 1.0
    assert len(seen) == 12 and all(p == [{"role": "user", "content": p[0]["content"]}] for p in seen)
    assert all(f in format_table(result) for f in tasks.FAMILIES)


def test_wrong_answers_score_zero_with_partial_closeness():
    result = evaluate("wrong", n_per_family=2, seed=1, max_new_tokens=8,
                      generate=lambda prompts, m: ["Answer: nope"] * len(prompts))
    assert result["mean"] == 0.0
    assert {e["family"] for e in result["examples"]} == set(tasks.FAMILIES)
    assert all(not e["correct"] and e["detail"] for e in result["examples"])


def test_a_generator_returning_too_few_responses_is_an_error():
    with pytest.raises(ValueError, match="returned 0 responses"):
        evaluate("broken", n_per_family=1, seed=0, generate=lambda prompts, m: [])


@pytest.mark.slow
def test_evaluate_runs_on_an_untrained_model(tiny_model_dir):
    result = evaluate(tiny_model_dir, n_per_family=2, seed=3, max_new_tokens=12, batch_size=4)
    assert set(result["per_family"]) == set(tasks.FAMILIES)
    assert all(0.0 <= a <= 1.0 for a in result["per_family"].values())
    assert all(isinstance(e["response"], str) for e in result["examples"])
    assert result["families"]["code"]["n"] == 2


@pytest.mark.slow
def test_the_eval_command_prints_a_table_and_writes_json(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "eval" / "tiny.json"
    code = main(["eval", "--model", str(tiny_model_dir), "--out", str(out), "--n", "1",
                 "--set", "eval.max_new_tokens=8", "--set", "eval.batch_size=4"])
    assert code == 0
    written = json.loads(out.read_text())
    assert written["n_per_family"] == 1 and set(written["per_family"]) == set(tasks.FAMILIES)
    printed = capsys.readouterr().out
    assert "mean" in printed and str(out) in printed


def test_the_eval_command_rejects_a_folder_without_a_model(tmp_path, capsys):
    assert main(["eval", "--model", str(tmp_path), "--out", str(tmp_path / "x.json")]) == 2
    assert "not a model folder" in capsys.readouterr().err
