"""The task world's entry points: seeded generation over all templates, verification, corruption."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

from workbench.tasks import FAMILIES, Task, Verdict, code_tasks, general, math_tasks, multilingual
from workbench.tasks.answers import check_answer

FAMILY_MODULES = {"math": math_tasks, "code": code_tasks, "multilingual": multilingual, "general": general}
# template id -> family, in a fixed order (generation draws from these lists by index)
TEMPLATES = {template: family for family in FAMILIES for template in FAMILY_MODULES[family].TEMPLATES}


def templates_of(family: str) -> list[str]:
    """The template ids of ``family``; a clear error for an unknown family."""
    if family not in FAMILY_MODULES:
        raise ValueError(f"task family {family!r}: expected one of {FAMILIES}")
    return [t for t, f in TEMPLATES.items() if f == family]


def make_task(template: str, rng: random.Random, canonical_only: bool = False) -> Task:
    """One instance of ``template`` drawn with ``rng``."""
    if template not in TEMPLATES:
        raise ValueError(f"task template {template!r}: expected one of {list(TEMPLATES)}")
    module = FAMILY_MODULES[TEMPLATES[template]]
    return module.TEMPLATES[template](template, rng, canonical_only)


def stream(family: str | None = None, seed: int = 0, *, canonical_only: bool = False) -> Iterator[Task]:
    """An endless, seeded stream of tasks of ``family`` (None: families drawn uniformly)."""
    families = list(FAMILIES) if family is None else [family]
    pools = {f: templates_of(f) for f in families}
    rng = random.Random(f"workbench.tasks:{family or 'mix'}:{seed}")
    while True:
        yield make_task(rng.choice(pools[rng.choice(families)]), rng, canonical_only)


def generate(family: str | None, n: int, seed: int, *, canonical_only: bool = False) -> list[Task]:
    """``n`` tasks of ``family`` (None: a uniform mix); the same seed gives the same tasks (and prefixes)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return list(itertools.islice(stream(family, seed, canonical_only=canonical_only), n))


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
