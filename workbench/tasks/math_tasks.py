"""The math family: integer arithmetic in four canonical templates (TASKS.md)."""

from __future__ import annotations

import random

from workbench.tasks import Task
from workbench.tasks.answers import answer_line
from workbench.tasks.phrasing import choose

NAMES = ("Ana", "Ben", "Carla", "David", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kenji",
         "Lea", "Marco", "Nadia", "Omar", "Priya", "Rosa", "Sven", "Tara", "Yusuf")

PHRASINGS = {
    "math.add": ("What is {a} + {b}?", "Compute {a} + {b}.", "What is the sum of {a} and {b}?"),
    "math.sub": ("What is {a} - {b}?", "Compute {a} - {b}.", "What is {a} minus {b}?"),
    "math.mul": ("What is {a} * {b}?", "Compute {a} * {b}.", "What is {a} times {b}?"),
    "math.apples": ("{name} has {a} apples and buys {b} more. How many apples does {name} have now?",
                    "{name} has {a} apples. {name} buys {b} more apples. How many apples does {name} have?"),
}
OPERATORS = {"math.add": "+", "math.sub": "-", "math.mul": "*", "math.apples": "+"}


def _operands(template: str, rng: random.Random) -> tuple[int, int]:
    """a and b in the ranges TASKS.md gives for ``template``."""
    if template == "math.add":
        return rng.randint(0, 999), rng.randint(0, 999)
    if template == "math.sub":
        a = rng.randint(0, 999)
        return a, rng.randint(0, a)
    if template == "math.mul":
        return rng.randint(0, 99), rng.randint(0, 9)
    return rng.randint(0, 99), rng.randint(0, 99)


def apply(op: str, a: int, b: int) -> int:
    """``a op b`` for op in + - *."""
    return {"+": a + b, "-": a - b, "*": a * b}[op]


def solution(a: int, op: str, b: int, result: int) -> str:
    """One reasoning line and the answer line."""
    return f"{a} {op} {b} = {result}\n{answer_line(result)}"


def make(template: str, rng: random.Random, canonical_only: bool = False) -> Task:
    """One instance of a math template."""
    a, b = _operands(template, rng)
    name = rng.choice(NAMES)
    fmt, flags = choose(rng, PHRASINGS[template], canonical_only)
    op = OPERATORS[template]
    result = apply(op, a, b)
    meta = {"a": a, "b": b, "op": op, **({"name": name} if template == "math.apples" else {}), **flags}
    return Task("math", template, fmt.format(a=a, b=b, name=name), str(result),
                solution(a, op, b, result), meta)


def corrupt(task: Task, rng: random.Random) -> str:
    """A wrong worked answer: the result off by a slip of the kind people make (carry, sign, digit)."""
    a, b, op, result = task.meta["a"], task.meta["b"], task.meta["op"], int(task.reference)
    slips = [1, -1, 2, -2, 10, -10, 100]
    if op == "+":
        slips.append(a - b - result)  # subtracted instead
    wrong = result + rng.choice([s for s in slips if s != 0])
    return solution(a, op, b, wrong)


TEMPLATES = {name: make for name in PHRASINGS}
