"""Multilingual data by language checks and the reference tables.

The language check asks whether every word of the answer belongs to the asked language's
vocabulary: its number words 0..99 (whole and split at spaces and hyphens) and its side of the
task world's lexicon, compared case-insensitively. A correct word in another language (``gato``
asked in French) fails it. The answer is then compared with the entry of the reference tables
(``number_words`` / ``translate``), not with a stored string.
"""

from __future__ import annotations

import re
from functools import lru_cache

from workbench.tasks import Task
from workbench.tasks.answers import extract_answer
from workbench.tasks.multilingual import LANGS, LEXICON, number_words, translate

WORD_SPLIT = re.compile(r"[\s\-]+")


@lru_cache(maxsize=None)
def vocabulary(lang: str) -> frozenset[str]:
    """Lower-cased words of ``lang`` in the task world: its number words and lexicon translations."""
    if lang not in LANGS:
        raise ValueError(f"language {lang!r}: expected one of {LANGS}")
    words = [number_words(n, lang) for n in range(100)] + [translate(w, lang) for w in LEXICON]
    return frozenset(part.lower() for w in words for part in [w, *WORD_SPLIT.split(w)] if part)


def languages_of(text: str) -> set[str]:
    """The languages whose vocabulary holds every word of ``text`` (empty: none of them)."""
    words = [w.lower() for w in WORD_SPLIT.split(text.strip()) if w]
    return {lang for lang in LANGS if words and all(w in vocabulary(lang) for w in words)}


def reference_answer(task: Task) -> str:
    """The answer the reference tables give for a multilingual task."""
    lang = task.meta["lang"]
    if task.template == "multilingual.number":
        return number_words(task.meta["n"], lang)
    return translate(task.meta["word"], lang)


def check_multilingual(task: Task, response: str) -> dict[str, bool | str | None]:
    """The checks in order: an ``answer`` line, its ``language``, then the ``reference`` tables."""
    answer, lang = extract_answer(response), task.meta["lang"]
    if answer is None:
        return {"answer": False, "language": False, "reference": False, "feedback": "no line 'Answer: X'"}
    found = languages_of(answer)
    if lang not in found:
        where = ", ".join(sorted(found)) or "no known language"
        return {"answer": True, "language": False, "reference": False,
                "feedback": f"{answer!r} is not {lang} (looks like {where})"}
    expected = reference_answer(task)
    ok = answer == expected
    return {"answer": True, "language": True, "reference": ok,
            "feedback": None if ok else f"expected {expected!r}, got {answer!r}"}
