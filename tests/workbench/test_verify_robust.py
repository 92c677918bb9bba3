"""verify() never raises because of a response: every hostile sample is a failed check with its reason."""

from __future__ import annotations

import pytest

from workbench.tasks import SandboxUnavailable, generate, verify
from workbench.tasks import sandbox
from workbench.tasks.answers import check_answer
from workbench.tasks.code_tasks import fenced


@pytest.fixture(scope="module")
def code_task():
    return generate("code", 1, seed=0)[0]


def respond(task, body: str) -> str:
    """A response defining the task's function with ``body`` (indented lines after the def)."""
    return fenced(f"import sys\ndef {task.reference}(xs):\n" + "".join(f"    {line}\n" for line in body.splitlines()))


@pytest.mark.parametrize("body, reason", [
    ("r = []\nfor _ in range(5000):\n    r = [r]\nreturn r", "RecursionError"),
    ("sys.setrecursionlimit(100000)\nr = []\nfor _ in range(5000):\n    r = [r]\nreturn r", "malformed"),
    ("sys.set_int_max_str_digits(0)\nreturn 10 ** 5000", "more than 1000 digits"),
    ("return 10 ** 5000", "Exceeds the limit"),
    ("return 'x' * 10 ** 6", "malformed"),
    ("return 'x' * 60000", "xxx..."),
])
def test_hostile_return_values_are_failed_checks(code_task, body, reason):
    verdict = verify(code_task, respond(code_task, body))
    assert not verdict.correct and reason in verdict.detail, verdict.detail
    assert len(verdict.detail) < 2000


def test_a_huge_integer_answer_is_a_failed_check():
    task = generate("math", 1, seed=0)[0]
    verdict = check_answer("Answer: " + "9" * 5000, task.reference)
    assert not verdict.correct and "more than 1000 digits" in verdict.detail
    assert not verify(task, "Answer: " + "9" * 5000).correct
    assert verify(task, "Answer: " + "0" * 5000 + task.reference).correct  # leading zeros do not count


def test_an_exception_anywhere_in_the_check_becomes_its_reason(code_task):
    verdict = verify(code_task, None)  # not even a string: extract_code raises TypeError
    assert not verdict.correct and verdict.detail.startswith("checking this response failed: TypeError")


def test_a_machine_without_the_jail_stops_the_stage_instead_of_failing_every_sample(code_task, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on it
    sandbox._check_jail.cache_clear()
    try:
        with pytest.raises(SandboxUnavailable, match="bubblewrap"):
            verify(code_task, code_task.solution)
    finally:
        sandbox._check_jail.cache_clear()


def test_the_experts_code_feedback_is_short_whatever_the_code_returns(code_task):
    from experts.code_checks import check_code
    checks = check_code(code_task, respond(code_task, "return 'x' * 60000"))
    assert not checks["tests"] and "xxx..." in checks["feedback"] and len(checks["feedback"]) < 1000
