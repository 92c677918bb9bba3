"""A model's accuracy on fresh, canonical task-world instances, per family (`workbench eval`).

Greedy decoding; each family gets ``n_per_family`` new instances drawn with the eval seed (which no
training stage uses), in exactly the canonical phrasings of TASKS.md. The result is a JSON-able
dict with ``per_family`` accuracies, their ``mean``, details per template and a few examples.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from workbench import chat
from workbench import tasks as task_world

Generate = Callable[[list[list[dict]], int], list[str]]  # (conversations, max_new_tokens) -> responses
EXAMPLES_PER_FAMILY = 2
VERIFY_WORKERS = 2  # code verification waits on sandbox children; two overlap well on two cores


def evaluate(model_dir: str | Path, n_per_family: int, seed: int, max_new_tokens: int, generate: Generate) -> dict:
    """Score ``model_dir``'s answers (from ``generate``) per family on fresh canonical instances.

    ``generate`` comes from a generation backend (``sampling.evaluation.greedy_generator``), so evaluation
    decodes exactly as sampling does; this module stays free of model code.
    """
    start = time.monotonic()
    if n_per_family < 1:
        raise ValueError(f"n_per_family must be at least 1, got {n_per_family}")
    # 1) fresh canonical instances, the same for every model at this seed
    tasks = [t for family in task_world.FAMILIES
             for t in task_world.generate(family, n_per_family, seed, canonical_only=True)]
    # 2) greedy answers
    responses = generate([chat.user_prompt(t.prompt) for t in tasks], max_new_tokens)
    if len(responses) != len(tasks):
        raise ValueError(f"the generator returned {len(responses)} responses for {len(tasks)} prompts")
    # 3) verify and summarise
    with ThreadPoolExecutor(VERIFY_WORKERS) as pool:
        verdicts = list(pool.map(task_world.verify, tasks, responses))
    result = summarise(tasks, responses, verdicts)
    result.update(model=str(model_dir), seed=seed, n_per_family=n_per_family, max_new_tokens=max_new_tokens,
                  seconds=round(time.monotonic() - start, 2))
    return result


def summarise(tasks: list, responses: list[str], verdicts: list) -> dict:
    """Accuracy and mean closeness per family and per template, their mean, and a few examples."""
    families: dict[str, dict] = {}
    examples = []
    for task, response, verdict in zip(tasks, responses, verdicts):
        fam = families.setdefault(task.family, {"n": 0, "correct": 0, "closeness": 0.0, "templates": {}})
        tpl = fam["templates"].setdefault(task.template, {"n": 0, "correct": 0})
        for counts in (fam, tpl):
            counts["n"] += 1
            counts["correct"] += int(verdict.correct)
        fam["closeness"] += verdict.closeness
        if sum(e["family"] == task.family for e in examples) < EXAMPLES_PER_FAMILY:
            examples.append({"family": task.family, "template": task.template, "prompt": task.prompt,
                             "response": response, "reference": task.reference, "correct": verdict.correct,
                             "detail": verdict.detail})
    for fam in families.values():
        fam["accuracy"] = fam["correct"] / fam["n"]
        fam["closeness"] = round(fam["closeness"] / fam["n"], 4)
        for tpl in fam["templates"].values():
            tpl["accuracy"] = tpl["correct"] / tpl["n"]
    per_family = {name: fam["accuracy"] for name, fam in families.items()}
    mean = sum(per_family.values()) / len(per_family) if per_family else 0.0
    return {"per_family": per_family, "mean": mean, "families": families, "examples": examples}


def format_table(result: dict) -> str:
    """A plain-text table: accuracy and mean closeness per family, then the mean accuracy."""
    lines = [f"{'family':<14}{'n':>6}{'correct':>9}{'accuracy':>10}{'closeness':>11}"]
    for name, fam in result["families"].items():
        lines.append(f"{name:<14}{fam['n']:>6}{fam['correct']:>9}{fam['accuracy']:>10.1%}{fam['closeness']:>11.3f}")
    lines.append(f"{'mean':<14}{'':>6}{'':>9}{result['mean']:>10.1%}")
    return "\n".join(lines)
