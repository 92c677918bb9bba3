"""The held-out split of the task world (TASKS.md, "Held-out evaluation"): post-training items and evaluation items.

Every task instance has an item key: what makes two prompts ask the same thing whatever their phrasing.
math: the operator and the operands (unordered for + and *; the apples story is a sum); code: the function
name; multilingual: the language with the number or the English word; general: the three words (reverse
and sort share them), the word to capitalise, or the word and the letter to count. A stable hash of the
key (SHA-256, never Python's salted ``hash``) puts each item on one side, ``posttrain`` or ``eval``, once
and for all: curated demonstrations, preference and rejection-sampling prompts and expert data draw from
the first, evaluation from the second.

:func:`prompt_keys` reads item keys back from any prompt text in any phrasing the generators use, so a
run's post-training files can be checked against an evaluation (:func:`contamination`).
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Iterable

from workbench.tasks import Task

SIDES = ("posttrain", "eval")
EVAL_SHARE = 0.4  # of each family's items; multilingual has 459, so about 180 are evaluation items
SALT = "workbench.heldout.v1"  # changing it re-deals every item

# What each template field looks like in a prompt (the generators' own ranges are wider than needed: a
# prompt a person wrote in a template's words still gives its key).
FIELDS = {"a": r"[0-9]+", "b": r"[0-9]+", "n": r"[0-9]+", "name": r"[A-Z][a-z]+",
          "fname": r"[A-Za-z_][A-Za-z0-9_]*", "spec": r".+?", "lang": r"French|Spanish|German",
          "word": r"[A-Za-z]+", "words": r"[A-Za-z]+ [A-Za-z]+ [A-Za-z]+", "c": r"[a-z]"}


def key_of(template: str, fields: dict) -> str:
    """The item key of ``template`` with these field values (ints or their digits)."""
    family = template.split(".")[0]
    if family == "math":
        from workbench.tasks.math_tasks import OPERATORS

        op, a, b = OPERATORS[template], int(fields["a"]), int(fields["b"])
        if op != "-":
            a, b = sorted((a, b))
        return f"math|{op}|{a}|{b}"
    if family == "code":
        return f"code|{fields['fname']}"
    if template == "multilingual.number":
        return f"multilingual|{fields['lang']}|number|{int(fields['n'])}"
    if template == "multilingual.translate":
        return f"multilingual|{fields['lang']}|word|{fields['word']}"
    if template in ("general.reverse", "general.sort"):
        words = fields["words"].split() if isinstance(fields["words"], str) else fields["words"]
        return "general|words|" + " ".join(sorted(words))
    if template == "general.upper":
        return f"general|upper|{fields['word']}"
    if template == "general.count_letter":
        return f"general|count|{fields['word']}|{fields['c']}"
    raise ValueError(f"task template {template!r}: no item key defined")


def item_key(task: Task) -> str:
    """The item key of a generated task, from its meta fields."""
    meta = task.meta
    fields = {**meta, "c": meta.get("letter")} if task.template == "general.count_letter" else meta
    return key_of(task.template, fields)


def side(key: str) -> str:
    """``eval`` or ``posttrain``: where the item ``key`` belongs, by a stable hash."""
    digest = hashlib.sha256(f"{SALT}:{key}".encode("utf-8")).digest()
    return SIDES[1] if int.from_bytes(digest[:8], "big") < EVAL_SHARE * 2**64 else SIDES[0]


def family_of(key: str) -> str:
    """The family an item key belongs to."""
    return key.split("|", 1)[0]


def _pattern(fmt: str) -> re.Pattern:
    """A regex matching ``fmt`` with each field captured (a repeated field must repeat its value)."""
    parts, seen = [], set()
    for literal, field, _, _ in string.Formatter().parse(fmt):
        parts.append(re.escape(literal))
        if field:
            parts.append(f"(?P={field})" if field in seen else f"(?P<{field}>{FIELDS[field]})")
            seen.add(field)
    return re.compile("".join(parts))


def _phrasings() -> list[tuple[str, re.Pattern]]:
    """(template, regex) for every phrasing of every template."""
    from workbench.tasks import code_tasks, general, math_tasks, multilingual

    pairs = [(template, fmt) for module in (math_tasks, multilingual, general)
             for template, fmts in module.PHRASINGS.items() for fmt in fmts]
    pairs += [("code", fmt) for fmt in code_tasks.PHRASINGS]  # the key is the name, whatever the spec
    return [(template, _pattern(fmt)) for template, fmt in pairs]


_PATTERNS: list[tuple[str, re.Pattern]] = []


def prompt_keys(text: str) -> set[str]:
    """The item keys of every task-world request found in ``text`` (any phrasing; none in other text)."""
    if not _PATTERNS:
        _PATTERNS.extend(_phrasings())
    return {key_of(template, match.groupdict()) for template, pattern in _PATTERNS
            for match in pattern.finditer(text)}


def contamination(eval_tasks: Iterable[Task], prompts: Iterable[str]) -> dict[str, dict]:
    """Per family: the evaluation's distinct items, how many occur in ``prompts``, their share, a few examples."""
    seen: set[str] = set()
    for prompt in prompts:
        seen |= prompt_keys(prompt)
    keys: dict[str, set[str]] = {}
    for task in eval_tasks:
        keys.setdefault(task.family, set()).add(item_key(task))
    report = {}
    for family, items in keys.items():
        hit = sorted(items & seen)
        report[family] = {"items": len(items), "contaminated": len(hit), "share": len(hit) / len(items),
                          "examples": hit[:3]}
    return report
