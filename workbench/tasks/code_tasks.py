"""The code family: write a list function; verified by running it on hidden test lists in the sandbox."""

from __future__ import annotations

import ast
import random
from dataclasses import dataclass
from typing import Any, Callable

from workbench.tasks import Task, Verdict
from workbench.tasks.answers import extract_code
from workbench.tasks.phrasing import choose
from workbench.tasks.sandbox import run_function

PHRASINGS = ("Write a Python function {fname}(xs) that {spec}.",
             "Define a Python function {fname}(xs) that {spec}.",
             "In Python, write {fname}(xs), a function that {spec}.")
TIMEOUT = 5.0  # wall-clock seconds for one response's whole test batch
MEMORY_MB = 512
MAX_CODE_CHARS = 20_000  # parsed in the caller's process, so bounded before ast sees it
# Whether ast.parse survives deep nesting depends on the interpreter's recursion limit, which other
# code raises (torch.compile does); this explicit bound, far below what any limit >= 1000 parses,
# makes the verdict the same whatever that global state is.
MAX_AST_DEPTH = 200
MAX_SHOWN_CHARS = 300  # of what a failed test returned or raised, in the verdict's detail
# Fixed lists that catch the usual bugs (first/last element, duplicates, negatives), then random ones.
EDGE_LISTS = ([3, -1, 7, 2, 7, 0], [5], [-4, -9, -2], [2, 4, 6, 1, 1], [0, -3, 8, -3, 5, 10, -6])
RANDOM_LISTS = 4


# Function names: adjective_noun identifiers, unrelated to any spec, so a prompt's name says nothing about
# what the function does and the held-out split (workbench.tasks.heldout) has many names on each side.
NAME_ADJECTIVES = ("amber", "bold", "brisk", "calm", "clever", "cosy", "crisp", "dusty", "eager", "fair", "fancy",
                   "gentle", "glad", "grand", "happy", "humble", "jolly", "keen", "lively", "lucky", "merry", "misty",
                   "noble", "plain", "proud", "quiet", "rapid", "rosy", "shiny", "silent", "sleepy", "swift")
NAME_NOUNS = ("acorn", "anchor", "badger", "beacon", "bucket", "canyon", "cedar", "comet", "cricket", "dune", "ember",
              "falcon", "fern", "garnet", "harbor", "heron", "island", "jasper", "kettle", "lantern", "lemon", "maple",
              "meadow", "nectar", "otter", "pebble", "quartz", "raven", "ribbon", "saddle", "thistle", "walnut")
FUNCTION_NAMES = tuple(f"{adjective}_{noun}" for adjective in NAME_ADJECTIVES for noun in NAME_NOUNS)


@dataclass(frozen=True)
class Spec:
    """One function to write: its wording, reference body and plausible bugs."""

    text: str
    body: str  # the reference implementation's return expression
    fn: Callable[[list[int]], Any]
    bugs: tuple[str, ...]  # wrong return expressions a model might write
    empty_ok: bool = True  # whether [] is a valid input


SPECS = {
    "code.sum": Spec("returns the sum of the numbers in xs", "sum(xs)", lambda xs: sum(xs),
                     ("sum(xs[1:])", "sum(xs[:-1])", "len(xs)")),
    "code.max": Spec("returns the largest number in xs", "max(xs)", lambda xs: max(xs),
                     ("xs[0]", "xs[-1]", "min(xs)"), empty_ok=False),
    "code.min": Spec("returns the smallest number in xs", "min(xs)", lambda xs: min(xs),
                     ("xs[0]", "xs[-1]", "max(xs)"), empty_ok=False),
    "code.count_even": Spec("returns the number of even numbers in xs", "sum(1 for x in xs if x % 2 == 0)",
                            lambda xs: sum(1 for x in xs if x % 2 == 0),
                            ("sum(1 for x in xs if x % 2 == 1)", "len(xs) // 2")),
    "code.reverse": Spec("returns xs in reverse order", "xs[::-1]", lambda xs: xs[::-1],
                         ("sorted(xs, reverse=True)", "xs[:0:-1]")),
    "code.sort": Spec("returns xs sorted in ascending order", "sorted(xs)", lambda xs: sorted(xs),
                      ("sorted(xs, reverse=True)", "sorted(set(xs))")),
    "code.squares": Spec("returns a list of the squares of the numbers in xs", "[x * x for x in xs]",
                         lambda xs: [x * x for x in xs], ("[x * 2 for x in xs]", "[x ** 2 for x in xs if x > 0]")),
    "code.sum_even": Spec("returns the sum of the even numbers in xs", "sum(x for x in xs if x % 2 == 0)",
                          lambda xs: sum(x for x in xs if x % 2 == 0), ("sum(x for x in xs if x % 2 == 1)", "sum(xs)")),
}


def program(fname: str, body: str) -> str:
    """A one-line function definition returning ``body``."""
    return f"def {fname}(xs):\n    return {body}\n"


def fenced(code: str) -> str:
    """``code`` as the response's single ```python block."""
    return f"```python\n{code}```"


def make(template: str, rng: random.Random, canonical_only: bool = False) -> Task:
    """One instance of a code template; the hidden tests derive from ``meta['test_seed']``."""
    spec = SPECS[template]
    fname = rng.choice(FUNCTION_NAMES)
    test_seed = rng.randrange(2**31)
    fmt, flags = choose(rng, PHRASINGS, canonical_only)
    meta = {"fname": fname, "spec": spec.text, "test_seed": test_seed, **flags}
    return Task("code", template, fmt.format(fname=fname, spec=spec.text), fname,
                fenced(program(fname, spec.body)), meta)


def hidden_tests(task: Task) -> list[list[int]]:
    """The test lists: the fixed edge cases, [] where valid, and random lists from the task's seed."""
    spec, rng = SPECS[task.template], random.Random(task.meta["test_seed"])
    lists = [list(xs) for xs in EDGE_LISTS] + ([[]] if spec.empty_ok else [])
    for _ in range(RANDOM_LISTS):
        lists.append([rng.randint(-20, 20) for _ in range(rng.randint(1, 8))])
    return lists


def static_check(code: str, fname: str) -> str | None:
    """Why ``code`` cannot be the requested function (size, syntax, name, arity), or None when it can."""
    if len(code) > MAX_CODE_CHARS:
        return f"the code is longer than {MAX_CODE_CHARS} characters"
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        return f"the code does not parse: {exc.msg} (line {exc.lineno})"
    except (RecursionError, MemoryError, ValueError) as exc:  # pathological nesting, in our own process
        return f"the code does not parse: {type(exc).__name__}"
    if ast_depth(tree) > MAX_AST_DEPTH:
        return f"the code does not parse: it is nested more than {MAX_AST_DEPTH} levels deep"
    defs = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == fname]
    if not defs:
        return f"the code does not define a function {fname}(xs) at top level"
    args = defs[-1].args
    positional = args.posonlyargs + args.args
    required = len(positional) - len(args.defaults)
    required_kw = sum(default is None for default in args.kw_defaults)
    if required != 1 or required_kw or args.vararg:
        return f"{fname} must take exactly one argument (xs)"
    return None


def ast_depth(tree: ast.AST) -> int:
    """The deepest nesting of ``tree``'s nodes, walked without recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def same(got: Any, expected: Any) -> bool:
    """Equal values of equal types, recursively (so True is not 1 and a tuple is not a list)."""
    if type(got) is not type(expected):
        return False
    if isinstance(expected, list):
        return len(got) == len(expected) and all(same(g, e) for g, e in zip(got, expected))
    return got == expected


def verify_code(task: Task, response: str) -> Verdict:
    """Static checks, then the hidden tests in the sandbox; closeness is the share of tests passed."""
    blocks = extract_code(response)
    if len(blocks) != 1:
        return Verdict(False, blocks[0] if blocks else None, 0.0,
                       f"expected one ```python block, found {len(blocks)}")
    code, fname = blocks[0], task.reference
    problem = static_check(code, fname)
    if problem:
        return Verdict(False, code, 0.05, problem)
    inputs = hidden_tests(task)
    expected = [SPECS[task.template].fn(list(xs)) for xs in inputs]
    run = run_function(code, fname, inputs, timeout=TIMEOUT, memory_mb=MEMORY_MB)
    failures = [_failure(fname, xs, case, exp) for xs, case, exp in zip(inputs, run.cases, expected)
                if not (case.ok and same(case.value, exp))]
    if not failures:
        return Verdict(True, code, 1.0)
    passed = len(inputs) - len(failures)
    closeness = 0.1 + 0.8 * passed / len(inputs)
    return Verdict(False, code, closeness, f"{passed}/{len(inputs)} tests passed; {failures[0]}")


def _failure(fname: str, xs: list[int], case, expected: Any) -> str:
    """One failed test, readable: what was called, what came back (shortened), what was expected."""
    got = f"raised {case.error}" if not case.ok else f"returned {case.value!r}"
    return f"{fname}({xs!r}) {shorten(got)}, expected {expected!r}"


def shorten(text: str) -> str:
    """``text`` cut to MAX_SHOWN_CHARS: a 60 KB return value would swamp reports and correction prompts."""
    return text if len(text) <= MAX_SHOWN_CHARS else text[:MAX_SHOWN_CHARS] + "..."


def corrupt(task: Task, rng: random.Random) -> str:
    """A plausible wrong response: a buggy body, a syntax slip or the wrong function name."""
    spec, fname = SPECS[task.template], task.reference
    kind = rng.random()
    if kind < 0.7:
        return fenced(program(fname, rng.choice(spec.bugs)))
    if kind < 0.85:
        return fenced(program(fname, spec.body).replace("):", ")", 1))
    other = rng.choice([n for n in FUNCTION_NAMES if n != fname])
    return fenced(program(other, spec.body))


TEMPLATES = {name: make for name in SPECS}
