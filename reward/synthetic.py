"""Simulated preferences from the task world, for the reward model's own checks and its benchmark.

Follows the simulated annotator's rules (TASKS.md) without its store: a correct response beats a
wrong one (significantly better when the wrong one is far off, else better); of two correct ones
the short one beats a padded one (slightly or marginally better). With probability
``edit_fraction`` a strong pair carries an edit: edited (the reference) > chosen (a padded correct
response) > rejected (wrong), giving a three-response row. ``split`` picks the side of the task
world's held-out split (:mod:`workbench.tasks.heldout`) the items come from: ``posttrain`` for
training data, ``eval`` for a held-out set (:func:`heldout_preferences`).
"""

from __future__ import annotations

import random

from workbench import chat
from workbench.preferences import Preference

PADDING = ("Let me work through this carefully.", "Here is my answer, step by step.", "Sure, this is how it goes.")


def simulated_preferences(n: int, seed: int, *, strong_fraction: float = 0.7, edit_fraction: float = 0.3,
                          families: tuple[str, ...] | None = None, split: str = "posttrain") -> list[Preference]:
    """``n`` preferences over fresh task-world instances of the ``split`` side (families round-robin), seeded."""
    from workbench.tasks import FAMILIES, corrupt, generate, verify

    families = families or FAMILIES
    rng = random.Random(seed)
    tasks = [t for i, family in enumerate(families)
             for t in generate(family, -(-n // len(families)), seed + 1000 * i, split=split)]
    rng.shuffle(tasks)
    records = []
    for i, task in enumerate(tasks[:n]):
        prompt = chat.user_prompt(task.prompt)
        padded = f"{rng.choice(PADDING)}\n{task.solution}"
        meta = {"task": task.template, "source": "reward.synthetic", "split": split}
        if rng.random() < strong_fraction:
            wrong = corrupt(task, rng)
            level = "significantly_better" if verify(task, wrong).closeness < 0.5 else "better"
            edit = rng.random() < edit_fraction
            records.append(Preference(
                id=f"sim-{seed}-{i:06d}", prompt=prompt, chosen=padded if edit else task.solution,
                rejected=wrong, edited=task.solution if edit else None, level=level,
                annotator="reward.synthetic", meta=meta))
        else:
            short = task.solution if task.family == "code" else f"Answer: {task.reference}"
            level = "slightly_better" if len(padded) > 2 * len(short) else "marginally_better"
            records.append(Preference(
                id=f"sim-{seed}-{i:06d}", prompt=prompt, chosen=short, rejected=padded, level=level,
                annotator="reward.synthetic", meta=meta))
    return records


def heldout_preferences(n: int, seed: int) -> list[Preference]:
    """``n`` simulated preferences on evaluation-side items, without edits: a held-out set for reward models."""
    return simulated_preferences(n, seed, edit_fraction=0.0, split="eval")
