"""Math data by answer and step verification: every intermediate equation is recomputed.

A trace whose final answer matches the reference but one of whose steps (``a op b = c``, chains
and parentheses allowed) is wrong got its answer by accident; it is dropped (Llama 3, section 4.3.3,
step-wise reward models, here an exact checker).
"""

from __future__ import annotations

import ast
import operator
import re
from fractions import Fraction

from workbench.tasks import Task
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


def check_math(task: Task, response: str) -> dict[str, bool | str | None]:
    """The checks in order: final ``answer`` against the reference, then every ``steps`` equation."""
    verdict = check_answer(response, task.reference)
    if not verdict.correct:
        return {"answer": False, "steps": False, "feedback": verdict.detail}
    problem = wrong_step(response)
    return {"answer": True, "steps": problem is None, "feedback": problem}
