"""Math data by answer and step verification: every intermediate equation is recomputed, every column step checked.

A trace whose final answer matches the reference but one of whose steps (``a op b = c``, chains
and parentheses allowed) is wrong got its answer by accident; it is dropped (Llama 3, section 4.3.3,
step-wise reward models, here an exact checker). Column steps (``4 + 8 + 1 = 13, write 3 carry 1``, the
worked format of :func:`workbench.tasks.math_tasks.solution`) are checked against the task's own columns,
in order: the digits and carry taken in, the value, the digit written and the carry passed on.
"""

from __future__ import annotations

import ast
import operator
import re
from fractions import Fraction

from workbench.tasks import Task
from workbench.tasks.math_tasks import Column, columns
from workbench.tasks.answers import check_answer

# An arithmetic expression of integers (at least one operator) "= integer", anywhere in a line.
EQUATION = re.compile(r"((?:\(?\s*-?\d+\s*\)?\s*[-+*/×x]\s*)+\(?\s*-?\d+\s*\)?)\s*=\s*(-?\d+)(?![\d.])")
OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
MAX_OPERAND = 10**12  # larger numbers are not arithmetic steps of this world; refuse rather than compute


def evaluate(expression: str) -> Fraction:
    """The exact value of an integer expression with + - * / and parentheses (ValueError otherwise)."""
    tree = ast.parse(expression.replace("×", "*").replace("x", "*"), mode="eval")

    def value(node) -> Fraction:
        if isinstance(node, ast.Constant) and isinstance(node.value, int) and abs(node.value) <= MAX_OPERAND:
            return Fraction(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -value(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
            left, right = value(node.left), value(node.right)
            if isinstance(node.op, ast.Div) and right == 0:
                raise ValueError("division by zero")
            return OPERATORS[type(node.op)](left, right)
        raise ValueError(f"not an integer expression: {expression!r}")

    return value(tree.body)


def steps(response: str) -> list[tuple[str, int]]:
    """The equations ``(expression, claimed result)`` of the reasoning, in order."""
    return [(m.group(1).strip(), int(m.group(2))) for m in EQUATION.finditer(response)]


def wrong_step(response: str) -> str | None:
    """The first equation whose recomputed value differs from the one written, or None."""
    for expression, claimed in steps(response):
        try:
            actual = evaluate(expression)
        except (SyntaxError, ValueError):
            return f"cannot recompute {expression!r}"
        if actual != claimed:
            return f"{expression} = {claimed} is wrong (it is {actual})"
    return None


# A column step line: "expression = value, write digit[ carry|borrow n]" (a comma before carry is allowed).
STEP_LINE = re.compile(r"^\s*(?P<expr>\d+(?:\s*[-+*]\s*\d+)+)\s*=\s*(?P<value>-?\d+)\s*,\s*write\s+(?P<write>\d+)"
                       r"(?:\s*,?\s*(?P<kind>carry|borrow)\s+(?P<carry>\d+))?\s*\.?\s*$")


def _shape(op: str, terms: list[int], ops: list[str]) -> tuple | None:
    """What a column step takes in, order-free where the operation is (zeros dropped); None if not a column step."""
    if op == "+" and set(ops) == {"+"}:
        return ("+", sorted(t for t in terms if t))
    if op == "-" and set(ops) == {"-"}:
        return ("-", terms[0], sorted(t for t in terms[1:] if t))
    if op == "*" and ops and ops[0] == "*" and set(ops[1:]) <= {"+"}:
        return ("*", sorted(terms[:2]), sum(terms[2:]))
    return None


def _describe_step(op: str, expected: Column, terms: list[int], ops: list[str], value: int, write: int,
                   carry: int, kind: str | None) -> str | None:
    """What is wrong with one column step against the expected column, or None."""
    expression = " ".join(f"{t} {o}" for t, o in zip(terms, ops)) + f" {terms[-1]}"
    actual = evaluate(expression)
    if actual != value:
        return f"{expression} = {value} is wrong (it is {actual})"
    if _shape(op, terms, ops) != _shape(op, list(expected.terms), _ops(expected)):
        return f"takes in {expression}, the column is {expected.line().split(' = ')[0]}"
    if write != expected.write:
        return f"writes {write}, the column writes {expected.write}"
    if carry != expected.carry or (carry and kind != ("borrow" if op == "-" else "carry")):
        word = "borrow" if op == "-" else "carry"
        return f"passes on {kind or word} {carry}, the column passes on {word} {expected.carry}"
    return None


def _short(text: str, limit: int = 80) -> str:
    """``text`` quoted, cut to ``limit`` characters for feedback."""
    text = text.strip()
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _ops(column: Column) -> list[str]:
    return ["*"] + ["+"] * (len(column.terms) - 2) if column.op == "*" else [column.op] * (len(column.terms) - 1)


def wrong_column(task: Task, response: str) -> str | None:
    """The first wrong step of a worked math response, naming it: column steps against the task's columns,
    every other equation recomputed; a worked trace with columns missing is wrong too. None when all hold."""
    meta = task.meta
    try:
        expected = columns(int(meta["a"]), meta["op"], int(meta["b"]))
    except (KeyError, TypeError, ValueError):
        expected = None
    seen = 0
    for number, line in enumerate(response.splitlines(), 1):
        match = STEP_LINE.match(line)
        if match and expected is not None:
            if seen >= len(expected):
                return f"step {seen + 1} (line {number}: {_short(line)}): the sum has only {len(expected)} columns"
            try:
                tokens = re.findall(r"\d+|[-+*]", match["expr"])
                problem = _describe_step(meta["op"], expected[seen], [int(t) for t in tokens[::2]], tokens[1::2],
                                         int(match["value"]), int(match["write"]), int(match["carry"] or 0),
                                         match["kind"])
            except (SyntaxError, ValueError):  # numbers too long to be a column's
                problem = f"cannot recompute {_short(match['expr'])}"
            if problem:
                return f"step {seen + 1} (line {number}: {_short(line)}): {problem}"
            seen += 1
            continue
        try:
            problem = wrong_step(line)
        except ValueError:  # a claimed result too long to read as an integer
            problem = "an equation's result is too long to check"
        if problem:
            return f"line {number}: {problem}"
    if expected is not None and 0 < seen < len(expected):
        return f"step {seen + 1} is missing: {expected[seen].line()!r}"
    return None


def check_math(task: Task, response: str) -> dict[str, bool | str | None]:
    """The checks in order: final ``answer`` against the reference, then every step (:func:`wrong_column`)."""
    verdict = check_answer(response, task.reference)
    if not verdict.correct:
        return {"answer": False, "steps": False, "feedback": verdict.detail}
    problem = wrong_column(task, response)
    return {"answer": True, "steps": problem is None, "feedback": problem}
