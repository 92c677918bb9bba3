"""The embedded task world (TASKS.md): seeded generators, reference solutions and verifiers.

Four families (math, code, multilingual, general), each with canonical templates. A :class:`Task`
carries its prompt, the reference answer and a reference solution (a response that passes
:func:`verify`). Generators are seeded and unbounded; evaluation draws fresh instances with its
own seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FAMILIES = ("math", "code", "multilingual", "general")


@dataclass
class Task:
    """One task instance."""

    family: str  # one of FAMILIES
    template: str  # template id, e.g. "math.add", "code.sum", "multilingual.number", "general.reverse"
    prompt: str  # the user message, in the canonical phrasing
    reference: str  # the reference answer X (for code: the function name)
    solution: str  # a reference response that verifies (reasoning lines + "Answer: X", or a ```python block)
    meta: dict[str, Any] = field(default_factory=dict)  # template fields (a, b, fname, spec, lang, ...)

    def to_dict(self) -> dict:
        """Plain JSON-able dict."""
        return {"family": self.family, "template": self.template, "prompt": self.prompt,
                "reference": self.reference, "solution": self.solution, "meta": self.meta}

    @classmethod
    def from_dict(cls, data: dict) -> "Task":
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


@dataclass
class Verdict:
    """The outcome of checking one response."""

    correct: bool
    answer: str | None  # the extracted answer (or the code block), None when absent
    closeness: float  # in [0, 1]: 1 for correct; partial credit for near misses (annotator tie-breaks)
    detail: str = ""  # why it failed, for reports and self-correction prompts


from workbench.tasks import world  # noqa: E402  (the implementation)
from workbench.tasks.sandbox import SandboxUnavailable  # noqa: E402
from workbench.tasks.world import corrupt, generate  # noqa: E402


def verify(task: Task, response: str) -> Verdict:
    """Check ``response`` against ``task``; any response, however hostile, gives a Verdict, never an exception.

    Two exceptions are not about the response and still raise: a task outside the task world
    (ValueError) and :class:`SandboxUnavailable` (no model code may run on this machine at all).
    """
    if task.family not in FAMILIES:
        raise ValueError(f"task family {task.family!r}: expected one of {FAMILIES}")
    try:
        return world.verify(task, response)
    except SandboxUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 (a hostile response may break any step of its check)
        return Verdict(False, None, 0.0, f"checking this response failed: {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    """``TypeError: message``, short, even when the message itself cannot be shown."""
    try:
        return f"{type(exc).__name__}: {exc}"[:300]
    except Exception:  # noqa: BLE001 (e.g. a ValueError whose message is a huge integer)
        return type(exc).__name__


__all__ = ["FAMILIES", "SandboxUnavailable", "Task", "Verdict", "corrupt", "generate", "verify"]
