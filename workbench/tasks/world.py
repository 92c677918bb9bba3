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


def weight_problems(weights: dict[str, float]) -> list[str]:
    """Every problem of family weights: an unknown family, a negative weight, no positive weight ({}: none)."""
    problems = [f"{f!r} is not a task family (expected one of {FAMILIES})" for f in weights if f not in FAMILIES]
    problems += [f"{f}: {w} is negative" for f, w in weights.items() if not w >= 0]
    if weights and not problems and not any(w > 0 for w in weights.values()):
        problems.append("no family has a positive weight")
    return problems


def stream(family: str | None = None, seed: int = 0, *, canonical_only: bool = False,
           split: str = "posttrain", weights: dict[str, float] | None = None) -> Iterator[Task]:
    """An endless, seeded stream of tasks of ``family`` from the ``split`` side.

    ``family`` None mixes the families: uniformly, or in proportion to ``weights`` (family -> weight,
    families left out get none); templates within a family are drawn uniformly.
    """
    if family is not None and weights:
        raise ValueError("family weights apply to a mix of families (family=None), not to one family")
    if weights and (problems := weight_problems(weights)):
        raise ValueError("family weights: " + "; ".join(problems))
    families = list(FAMILIES) if family is None else [family]
    pools = {f: templates_of(f) for f in families}
    rng = random.Random(f"workbench.tasks:{family or 'mix'}:{seed}")
    if weights:
        shares = [weights.get(f, 0.0) for f in families]
        pick = lambda: rng.choices(families, shares)[0]  # noqa: E731
    else:
        pick = lambda: rng.choice(families)  # noqa: E731  (the uniform stream, unchanged draw for draw)
    while True:
        yield make_task(rng.choice(pools[pick()]), rng, canonical_only, split)


def generate(family: str | None, n: int, seed: int, *, canonical_only: bool = False,
             split: str = "posttrain", weights: dict[str, float] | None = None) -> list[Task]:
    """``n`` tasks of ``family`` (None: a mix, uniform or by ``weights``) from the ``split`` side.

    A seed gives the same tasks (and prefixes).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return list(itertools.islice(stream(family, seed, canonical_only=canonical_only, split=split, weights=weights), n))


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
