"""The math family: integer arithmetic in four canonical templates (TASKS.md), solved column by column.

A reference solution works digit by digit, right to left, one line per column with its carry or borrow
(:class:`Column`), then the result and the answer line; the verifier reads only the answer line, the math
expert checks each column step (:mod:`experts.math_checks`)."""

from __future__ import annotations

import random
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Column:
    """One step of column arithmetic: ``terms`` combined by ``op`` gives ``value``; ``write`` is put down, ``carry`` moves on.

    Addition: digit + digit (+ carry in). Subtraction: top digit (+10 when borrowing) - borrow in - bottom digit.
    Multiplication: digit * multiplier (+ carry in). The last column writes its whole value.
    """

    op: str
    terms: tuple[int, ...]
    value: int
    write: int
    carry: int  # carry (borrow) to the next column; 0 on the last column

    def line(self) -> str:
        """The step line, e.g. ``4 + 8 + 1 = 13, write 3 carry 1`` or ``12 - 5 = 7, write 7 borrow 1``."""
        if self.op == "*":
            expr = f"{self.terms[0]} * {self.terms[1]}" + (f" + {self.terms[2]}" if len(self.terms) > 2 else "")
        else:
            expr = f" {self.op} ".join(str(t) for t in self.terms)
        out = f" {'borrow' if self.op == '-' else 'carry'} {self.carry}" if self.carry else ""
        return f"{expr} = {self.value}, write {self.write}{out}"


def _digits(n: int, width: int) -> list[int]:
    """The decimal digits of ``n``, least significant first, padded with zeros to ``width``."""
    return [int(c) for c in str(n).zfill(width)[::-1]]


def columns(a: int, op: str, b: int, slip: tuple[int, str] | None = None) -> list[Column]:
    """The column steps of ``a op b`` (a, b >= 0; a >= b for -; b one digit for *), right to left.

    ``slip`` = (column, kind) plants one mistake people make, carried through the later columns:
    kind ``off`` gets that column's value wrong by one, ``drop`` forgets the carry (borrow) coming into it.
    """
    if a < 0 or b < 0 or (op == "-" and b > a) or (op == "*" and b > 9) or op not in "+-*":
        raise ValueError(f"no column steps for {a} {op} {b}")
    if op == "*":
        tops, bottoms = _digits(a, 1), None
    else:
        width = max(len(str(a)), len(str(b)))
        tops, bottoms = _digits(a, width), _digits(b, width)
    steps, carry = [], 0
    for i, top in enumerate(tops):
        last = i == len(tops) - 1
        carry_in = 0 if slip == (i, "drop") else carry
        if op == "+":
            terms = (top, bottoms[i]) + ((carry_in,) if carry_in else ())
            value = sum(terms)
        elif op == "*":
            terms = (top, b) + ((carry_in,) if carry_in else ())
            value = top * b + carry_in
        else:
            borrow = 1 if top - carry_in - bottoms[i] < 0 and not last else 0
            terms = (top + 10 * borrow,) + ((carry_in,) if carry_in else ()) + (bottoms[i],)
            value = terms[0] - carry_in - bottoms[i]
        if slip == (i, "off"):
            value += 1 if value % 10 != 9 else -1
        if last:
            write, carry = value, 0
        else:
            write, carry = value % 10, (borrow if op == "-" else value // 10)
        steps.append(Column(op, terms, value, write, carry))
    return steps


def column_result(steps: list[Column]) -> int:
    """The number the written digits make (the last column's whole value in front)."""
    return int("".join(str(s.write) for s in reversed(steps)))


def solution(a: int, op: str, b: int, result: int | None = None, slip: tuple[int, str] | None = None) -> str:
    """The worked solution: one line per column, the result line, the answer line (TASKS.md, "Answers").

    ``result`` defaults to what the columns give; a ``slip`` gives a wrong trace (:func:`columns`).
    """
    steps = columns(a, op, b, slip)
    result = column_result(steps) if result is None else result
    return "\n".join([*(s.line() for s in steps), f"{a} {op} {b} = {result}", answer_line(result)])


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
    """A wrong worked answer: one slip of the kind people make (a column off by one, a forgotten carry or
    borrow), carried through to the answer."""
    a, b, op, result = task.meta["a"], task.meta["b"], task.meta["op"], int(task.reference)
    n = len(columns(a, op, b))
    slips = [(i, "off") for i in range(n)] + [(i, "drop") for i in range(1, n)]
    rng.shuffle(slips)
    for slip in slips:
        wrong = solution(a, op, b, slip=slip)
        if column_result(columns(a, op, b, slip)) != result:
            return wrong
    raise AssertionError(f"no slip changes {a} {op} {b}")  # "off" always changes the result


TEMPLATES = {name: make for name in PHRASINGS}
