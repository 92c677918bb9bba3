"""Expert evaluation: one family of fresh instances per model, the other families not generated."""

import pytest

from experts import evaluation
from experts.evaluation import compare, format_comparison


@pytest.mark.slow
def test_compare_generates_only_the_family_and_reports_each_model(tiny_model_dir, monkeypatch):
    seen = []
    real = evaluation.greedy_generator

    def counting(backend, seed):
        generate = real(backend, seed)
        return lambda prompts, max_new_tokens: seen.append(len(prompts)) or generate(prompts, max_new_tokens)

    monkeypatch.setattr(evaluation, "greedy_generator", counting)
    result = compare({"expert": tiny_model_dir, "base": tiny_model_dir}, "math", n=3, seed=1, max_new_tokens=4)
    assert seen == [3, 3]
    assert set(result) == {"expert", "base"} and result["expert"]["n"] == 3
    assert 0.0 <= result["base"]["accuracy"] <= 1.0 and all(e["family"] == "math" for e in result["base"]["examples"])
    table = format_comparison({"math": result})
    assert table.splitlines()[0].split() == ["family", "expert", "base"] and "math" in table
