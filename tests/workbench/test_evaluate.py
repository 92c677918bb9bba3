"""`evaluate`: held-out canonical instances per family, verified, summarised (generation: tests/sampling)."""

from __future__ import annotations

import pytest

from workbench import tasks
from workbench.evaluate import evaluate, evaluation_tasks, format_table


def _oracle(prompts, max_new_tokens):
    """A generator answering every evaluation prompt with the task world's reference solution."""
    solutions = {t.prompt: t.solution for t in evaluation_tasks(3, 7)}
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
        evaluate("broken", n_per_family=1, seed=0, max_new_tokens=8, generate=lambda prompts, m: [])
