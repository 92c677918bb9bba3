"""The task world's entry points: seeded generation over all templates, verification, corruption.

Generation draws from one side of the held-out split (:mod:`workbench.tasks.heldout`): ``posttrain`` by
default (every training use), ``eval`` for evaluation, ``all`` for both (the pretraining corpus may).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

from workbench.tasks import FAMILIES, Task, Verdict, code_tasks, general, heldout, math_tasks, multilingual
from workbench.tasks.answers import check_answer

FAMILY_MODULES = {"math": math_tasks, "code": code_tasks, "multilingual": multilingual, "general": general}
# template id -> family, in a fixed order (generation draws from these lists by index)
TEMPLATES = {template: family for family in FAMILIES for template in FAMILY_MODULES[family].TEMPLATES}
SPLITS = (*heldout.SIDES, "all")
MAX_DRAWS = 10_000  # draws of one template before a side is taken to hold none of its items


def templates_of(family: str) -> list[str]:
    """The template ids of ``family``; a clear error for an unknown family."""
    if family not in FAMILY_MODULES:
        raise ValueError(f"task family {family!r}: expected one of {FAMILIES}")
    return [t for t, f in TEMPLATES.items() if f == family]


def make_task(template: str, rng: random.Random, canonical_only: bool = False, split: str = "posttrain") -> Task:
    """One instance of ``template`` drawn with ``rng`` from the ``split`` side (instances of the other are redrawn)."""
    if template not in TEMPLATES:
        raise ValueError(f"task template {template!r}: expected one of {list(TEMPLATES)}")
    if split not in SPLITS:
        raise ValueError(f"task split {split!r}: expected one of {SPLITS}")
    module = FAMILY_MODULES[TEMPLATES[template]]
    for _ in range(MAX_DRAWS):
        task = module.TEMPLATES[template](template, rng, canonical_only)
        if split == "all" or heldout.side(heldout.item_key(task)) == split:
            return task
    raise RuntimeError(f"task template {template!r}: no {split} item in {MAX_DRAWS} draws")


def stream(family: str | None = None, seed: int = 0, *, canonical_only: bool = False,
           split: str = "posttrain") -> Iterator[Task]:
    """An endless, seeded stream of tasks of ``family`` (None: families drawn uniformly) from the ``split`` side."""
    families = list(FAMILIES) if family is None else [family]
    pools = {f: templates_of(f) for f in families}
    rng = random.Random(f"workbench.tasks:{family or 'mix'}:{seed}")
    while True:
        yield make_task(rng.choice(pools[rng.choice(families)]), rng, canonical_only, split)


def generate(family: str | None, n: int, seed: int, *, canonical_only: bool = False,
             split: str = "posttrain") -> list[Task]:
    """``n`` tasks of ``family`` (None: a uniform mix) from the ``split`` side; a seed gives the same tasks (and prefixes)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return list(itertools.islice(stream(family, seed, canonical_only=canonical_only, split=split), n))


def verify(task: Task, response: str) -> Verdict:
    """Check ``response`` against ``task``: the answer line, or for code the hidden tests in the sandbox."""
    if task.family == "code":
        return code_tasks.verify_code(task, response)
    if task.family not in FAMILY_MODULES:
        raise ValueError(f"task family {task.family!r}: expected one of {FAMILIES}")
    return check_answer(response, task.reference)


def corrupt(task: Task, rng: random.Random) -> str:
    """A plausible wrong response to ``task`` (near-miss answer, wrong word, buggy code)."""
    if task.family not in FAMILY_MODULES:
        raise ValueError(f"task family {task.family!r}: expected one of {FAMILIES}")
    return FAMILY_MODULES[task.family].corrupt(task, rng)
