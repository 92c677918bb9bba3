"""Choosing a prompt phrasing: the canonical one of TASKS.md, or (flagged in meta) a variant."""

from __future__ import annotations

import random

CANONICAL_SHARE = 0.8  # share of canonical prompts when variants are allowed


def choose(rng: random.Random, phrasings: tuple[str, ...], canonical_only: bool) -> tuple[str, dict]:
    """A format string and its meta flags; the first phrasing is the canonical one.

    The draws from ``rng`` are the same whatever ``canonical_only`` is, so a seed gives the same
    instances (numbers, words) with and without variants.
    """
    variant = rng.random() >= CANONICAL_SHARE
    index = rng.randrange(1, len(phrasings)) if len(phrasings) > 1 else 0
    if canonical_only or not variant:
        index = 0
    return phrasings[index], {"phrasing": index, "canonical": index == 0}
