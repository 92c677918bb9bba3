"""Code data by execution feedback: static checks, generated unit tests in the sandbox, self-correction.

Unit tests are generated from the problem's spec (edge cases the spec allows, then seeded random
lists) and their expected values come from the task world's reference implementation. A failing
sample gets a short feedback message (the failing input, expected vs got, or the exception) as a
follow-up user turn and may correct itself, up to ``max_corrections`` times (Llama 3, section 4.3.1).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from workbench.tasks import Task
from workbench.tasks.answers import extract_code
from workbench.tasks.code_tasks import MEMORY_MB, SPECS, TIMEOUT, same, shorten, static_check
from workbench.tasks.sandbox import run_function

# (conversations) -> one response each; any backend fits behind it
Generate = Callable[[list[list[dict]]], list[str]]
# Edge cases that break the usual slips: one element, negatives only, duplicates, zeros, odd only,
# already sorted and reversed.
EDGE_CASES = ([7], [-5], [-3, -8, -1], [4, 4, 4], [0, 0], [1, 3, 5], [1, 2, 3, 4], [9, 5, 2, -2],
              [6, -6, 3, 3, 10, 0])


def unit_tests(task: Task, n_random: int = 8) -> list[list[int]]:
    """Test inputs for ``task``: [] when the spec allows it, the edge cases, then seeded random lists."""
    spec = SPECS[task.template]
    rng = random.Random(f"experts.unit_tests:{task.meta['test_seed']}")
    lists = ([[]] if spec.empty_ok else []) + [list(xs) for xs in EDGE_CASES]
    for _ in range(n_random):
        lists.append([rng.randint(-30, 30) for _ in range(rng.randint(1, 10))])
    return lists


def static_feedback(task: Task, response: str) -> str | None:
    """Why ``response`` is not one block defining the requested one-argument function, or None."""
    blocks = extract_code(response)
    if len(blocks) != 1:
        return f"expected exactly one ```python block, found {len(blocks)}"
    return static_check(blocks[0], task.reference)


def test_feedback(task: Task, response: str, n_random: int = 8) -> str | None:
    """Run the generated unit tests in the sandbox; the first failure as feedback, or None when all pass."""
    code, fname, spec = extract_code(response)[0], task.reference, SPECS[task.template]
    inputs = unit_tests(task, n_random)
    run = run_function(code, fname, inputs, timeout=TIMEOUT, memory_mb=MEMORY_MB)
    for xs, case in zip(inputs, run.cases):
        expected = spec.fn(list(xs))
        if not case.ok:
            return f"{fname}({xs!r}) raised {shorten(case.error or '')}; expected {expected!r}"
        if not same(case.value, expected):
            return f"{fname}({xs!r}) returned {shorten(repr(case.value))}; expected {expected!r}"
    return None


def check_code(task: Task, response: str, n_random: int = 8) -> dict[str, bool | str | None]:
    """The checks in order (static, tests) with the first failure's feedback."""
    problem = static_feedback(task, response)
    if problem:
        return {"static": False, "tests": False, "feedback": problem}
    failure = test_feedback(task, response, n_random)
    return {"static": True, "tests": failure is None, "feedback": failure}


def correction_prompt(task: Task, response: str, feedback: str) -> list[dict]:
    """The conversation asking the model to fix its code: the prompt, its answer, the error."""
    return [{"role": "user", "content": task.prompt},
            {"role": "assistant", "content": response},
            {"role": "user", "content": f"Your code fails a test: {feedback}\n"
                                        "Fix it and reply with the corrected function in one ```python block."}]


def self_correct(tasks: list[Task], responses: list[str], generate: Generate, max_corrections: int = 2,
                 n_random: int = 8) -> list[dict]:
    """Check every sample; failing ones get their error and another try, up to ``max_corrections`` times.

    Returns one record per sample: ``response`` (the last one), ``passed_initially``, ``passed``,
    ``attempts`` (corrections asked for), ``static``/``tests`` (of the last response) and ``feedback``.
    """
    records = []
    for task, response in zip(tasks, responses):
        checks = check_code(task, response, n_random)
        records.append({"response": response, "passed_initially": checks["tests"], "attempts": 0, **checks})
    for _ in range(max_corrections):
        failing = [i for i, r in enumerate(records) if not r["tests"]]
        if not failing:
            break
        prompts = [correction_prompt(tasks[i], records[i]["response"], records[i]["feedback"]) for i in failing]
        for i, fixed in zip(failing, generate(prompts)):
            records[i].update(response=fixed, attempts=records[i]["attempts"] + 1,
                              **check_code(tasks[i], fixed, n_random))
    for record in records:
        record["passed"] = record["tests"]
    return records
