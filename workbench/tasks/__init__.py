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


from workbench.tasks.world import corrupt, generate, verify  # noqa: E402  (the implementation)

__all__ = ["FAMILIES", "Task", "Verdict", "corrupt", "generate", "verify"]
