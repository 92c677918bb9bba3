"""Reading answers out of responses (TASKS.md, "Answers") and scoring them against the reference.

A non-code response is correct when its last line matching ``^Answer:\\s*(.+?)\\s*$`` gives the
reference: integers compared as integers, words compared case-sensitively after stripping. Code
responses contain one fenced ```python block.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

from workbench.tasks import Verdict

ANSWER_LINE = re.compile(r"^Answer:\s*(.+?)\s*$")
INTEGER = re.compile(r"^[+-]?\d+$")
CODE_BLOCK = re.compile(r"```python[ \t]*\n(.*?)```", re.DOTALL)
NEAR_MISS_CAP = 0.9  # closeness of any incorrect answer stays below a correct one's 1.0
MAX_ANSWER_DIGITS = 1000  # far beyond any reference; below Python's int-from-string limit (4300)


def extract_answer(response: str) -> str | None:
    """X from the last line ``Answer: X`` (lines whose X is blank do not count); None when absent."""
    for line in reversed(response.splitlines()):
        match = ANSWER_LINE.match(line)
        if match and match.group(1).strip():
            return match.group(1).strip()
    return None


def extract_code(response: str) -> list[str]:
    """The bodies of every ```python fenced block in ``response``."""
    return CODE_BLOCK.findall(response)


def is_integer(text: str) -> bool:
    """Whether ``text`` is an integer literal such as ``42``, ``-7`` or ``+03``."""
    return bool(INTEGER.match(text.strip()))


def answer_line(answer: str | int) -> str:
    """The closing line of a non-code response."""
    return f"Answer: {answer}"


def check_answer(response: str, reference: str) -> Verdict:
    """Verdict on a non-code response: integers by value, words exactly; closeness for near misses."""
    answer = extract_answer(response)
    if answer is None:
        return Verdict(False, None, 0.0, "no line 'Answer: X' in the response")
    if is_integer(reference):
        return _check_integer(answer, int(reference))
    if answer == reference:
        return Verdict(True, answer, 1.0)
    closeness = NEAR_MISS_CAP * SequenceMatcher(None, answer, reference).ratio()
    return Verdict(False, answer, closeness, f"expected {reference!r}, got {answer!r}")


def _check_integer(answer: str, reference: int) -> Verdict:
    """Compare an answer with an integer reference; closeness falls with the relative distance."""
    if not is_integer(answer):
        return Verdict(False, answer, 0.05, f"expected the integer {reference}, got {answer!r}")
    text = answer.strip()
    sign, digits = text[0] if text[0] in "+-" else "", text.lstrip("+-").lstrip("0")
    if len(digits) > MAX_ANSWER_DIGITS:  # int() refuses (and would be slow on) longer ones
        return Verdict(False, answer, 0.0, f"expected {reference}, got an integer of more than "
                                           f"{MAX_ANSWER_DIGITS} digits")
    value = int(sign + (digits or "0"))
    if value == reference:
        return Verdict(True, answer, 1.0)
    relative = abs(value - reference) / (abs(reference) + 1)
    closeness = NEAR_MISS_CAP / (1.0 + 10.0 * relative)
    return Verdict(False, answer, closeness, f"expected {reference}, got {value}")
