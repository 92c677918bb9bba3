"""The domain data checks behind one interface: per-sample results, aggregate shares, a verifier hook.

Each domain runs its checks in a fixed order (:data:`CHECKS`); a sample is kept when all pass, and
the summary counts each removed sample once, under the first check it failed, so the ``removed_by``
shares add up to ``1 - kept``.
"""

from __future__ import annotations

from collections.abc import Callable

from experts.code_checks import Generate, check_code, self_correct
from experts.language_checks import check_multilingual
from experts.math_checks import check_math
from workbench.tasks import Task

CHECKS = {"code": ("static", "tests"), "math": ("answer", "steps"),
          "multilingual": ("answer", "language", "reference")}
Verifier = Callable[[dict, str], "bool | None"]


def check_sample(task: Task, response: str, n_random: int = 8) -> dict:
    """The domain's checks of one response (check name -> passed, plus ``feedback``)."""
    if task.family == "code":
        return check_code(task, response, n_random)
    if task.family == "math":
        return check_math(task, response)
    if task.family == "multilingual":
        return check_multilingual(task, response)
    raise ValueError(f"task family {task.family!r} has no expert checks; expected one of {list(CHECKS)}")


def passes(domain: str, result: dict) -> bool:
    """Whether a sample passed every check of its domain."""
    return all(result[name] for name in CHECKS[domain])


def summarise(domain: str, results: list[dict]) -> dict:
    """Shares over ``results``: kept, and removed by each check (the first one that failed)."""
    n = len(results)
    first_failed = [next((c for c in CHECKS[domain] if not r[c]), None) for r in results]
    summary = {"samples": n, "kept": sum(f is None for f in first_failed) / n if n else 0.0}
    summary.update({f"removed_by_{c}": (first_failed.count(c) / n if n else 0.0) for c in CHECKS[domain]})
    return summary


def check_samples(domain: str, tasks: list[Task], responses: list[str], *, generate: Generate | None = None,
                  max_corrections: int = 0, n_random: int = 8) -> tuple[list[dict], dict]:
    """Check samples of one domain; code samples may correct themselves through ``generate``.

    Returns the per-sample results (each with the final ``response`` and ``passed``) and the summary;
    for code it adds ``passed_before_correction`` and ``passed_after_correction``.
    """
    if domain not in CHECKS:
        raise ValueError(f"domain {domain!r}: expected one of {list(CHECKS)}")
    if any(t.family != domain for t in tasks):
        raise ValueError(f"check_samples({domain!r}): every task must be of the {domain} family")
    if domain == "code" and generate is not None and max_corrections > 0:
        results = self_correct(tasks, responses, generate, max_corrections, n_random)
    else:
        results = [{"response": r, **check_sample(t, r, n_random)} for t, r in zip(tasks, responses)]
        for r in results:
            r["passed_initially"] = r["passed"] = passes(domain, r)
    summary = summarise(domain, results)
    if domain == "code":
        n = max(1, len(results))
        summary["passed_before_correction"] = sum(r["passed_initially"] for r in results) / n
        summary["passed_after_correction"] = sum(r["passed"] for r in results) / n
    return results, summary


def domain_verifier(domain: str, n_random: int = 8) -> Verifier:
    """The ``verifier(record, response)`` hook of rejection sampling for ``domain``'s prompts.

    Records whose task is of ``domain`` get the domain's checks; other tasks the task world's
    verifier; records without a task are not checked (None).
    """
    if domain not in CHECKS:
        raise ValueError(f"domain {domain!r}: expected one of {list(CHECKS)}")

    def verifier(record: dict, response: str) -> bool | None:
        if not record.get("task"):
            return None
        task = Task.from_dict(record["task"])
        if task.family != domain:
            from workbench.tasks import verify

            return bool(verify(task, response).correct)
        return passes(domain, check_sample(task, response, n_random))

    return verifier
