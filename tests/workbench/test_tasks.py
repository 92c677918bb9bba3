"""The task world: canonical templates and ranges of TASKS.md, reference solutions, verifiers, corruption."""

from __future__ import annotations

import random
import re
import sys

import pytest

from workbench.tasks import FAMILIES, Task, corrupt, generate, math_tasks, verify
from workbench.tasks.answers import check_answer, extract_answer
from workbench.tasks.code_tasks import SPECS, fenced, hidden_tests, program, static_check
from workbench.tasks.multilingual import LEXICON, number_words
from workbench.tasks.world import TEMPLATES

N = 1200  # canonical instances in the sweep: every template many times

CANONICAL = {
    "math.add": r"What is (\d+) \+ (\d+)\?",
    "math.sub": r"What is (\d+) - (\d+)\?",
    "math.mul": r"What is (\d+) \* (\d+)\?",
    "math.apples": r"([A-Z][a-z]+) has (\d+) apples and buys (\d+) more\. How many apples does \1 have now\?",
    "code": r"Write a Python function ([a-z_]+)\(xs\) that (.+)\.",
    "multilingual.number": r"How do you write (\d+) in (French|Spanish|German)\?",
    "multilingual.translate": r"Translate into (French|Spanish|German): ([a-z]+)",
    "general.reverse": r"Reverse the order of these words: ([a-z]+) ([a-z]+) ([a-z]+)",
    "general.sort": r"Sort these words alphabetically: ([a-z]+) ([a-z]+) ([a-z]+)",
    "general.count_letter": r"How many times does the letter ([a-z]) appear in ([a-z]+)\?",
    "general.upper": r"Write the word ([a-z]+) in capital letters\.",
}
RANGES = {"math.add": (999, 999), "math.mul": (99, 9), "math.apples": (99, 99)}
SPEC_TEXTS = {"returns the sum of the numbers in xs", "returns the largest number in xs",
              "returns the smallest number in xs", "returns the number of even numbers in xs",
              "returns xs in reverse order", "returns xs sorted in ascending order",
              "returns a list of the squares of the numbers in xs", "returns the sum of the even numbers in xs"}


@pytest.fixture(scope="module")
def canonical_tasks() -> list[Task]:
    """A large canonical mix."""
    return generate(None, N, seed=11, canonical_only=True)


def _canonical_match(task: Task) -> re.Match:
    """The canonical template's match on the task's prompt."""
    pattern = CANONICAL["code" if task.family == "code" else task.template]
    match = re.fullmatch(pattern, task.prompt)
    assert match, f"{task.template}: {task.prompt!r} is not in the canonical phrasing"
    return match


def test_every_template_appears_in_canonical_phrasing_within_the_ranges(canonical_tasks):
    assert {t.template for t in canonical_tasks} == set(TEMPLATES)
    for task in canonical_tasks:
        match = _canonical_match(task)
        assert task.meta["canonical"] is True
        if task.template in RANGES:
            a, b = (int(x) for x in match.groups()[-2:])
            assert 0 <= a <= RANGES[task.template][0] and 0 <= b <= RANGES[task.template][1]
        elif task.template == "math.sub":
            a, b = int(match.group(1)), int(match.group(2))
            assert 0 <= b <= a <= 999
        elif task.family == "code":
            assert match.group(1) == task.reference and match.group(2) in SPEC_TEXTS
        elif task.template == "multilingual.number":
            assert 0 <= int(match.group(1)) <= 99
        elif task.template == "multilingual.translate":
            assert match.group(2) in LEXICON


def test_references_follow_the_templates(canonical_tasks):
    for task in canonical_tasks:
        groups = _canonical_match(task).groups()
        if task.template == "general.reverse":
            assert task.reference == " ".join(reversed(groups))
        elif task.template == "general.sort":
            assert task.reference == " ".join(sorted(groups)) and list(groups) != sorted(groups)
        elif task.template == "general.count_letter":
            assert task.reference == str(groups[1].count(groups[0]))
        elif task.template == "general.upper":
            assert task.reference == groups[0].upper()
        elif task.template == "math.apples":
            assert int(task.reference) == int(groups[1]) + int(groups[2])


def test_families_are_a_uniform_mix(canonical_tasks):
    counts = {f: sum(t.family == f for t in canonical_tasks) for f in FAMILIES}
    assert all(abs(c - N / 4) < N / 10 for c in counts.values()), counts


def test_variants_are_flagged_and_canonical_only_gives_the_same_instances():
    mixed, canonical = generate("math", 200, seed=5), generate("math", 200, seed=5, canonical_only=True)
    variants = [t for t in mixed if not t.meta["canonical"]]
    assert variants and all(t.meta["phrasing"] > 0 for t in variants)
    assert all(m.reference == c.reference and m.meta["a"] == c.meta["a"] for m, c in zip(mixed, canonical))


def test_generation_is_deterministic_per_seed_and_prefix_stable():
    first = [t.to_dict() for t in generate(None, 60, seed=3)]
    assert first == [t.to_dict() for t in generate(None, 60, seed=3)]
    assert first[:20] == [t.to_dict() for t in generate(None, 20, seed=3)]
    assert first != [t.to_dict() for t in generate(None, 60, seed=4)]
    assert Task.from_dict(first[0]).to_dict() == first[0]


def test_family_weights_set_the_mix_and_leave_the_uniform_stream_alone():
    n = 4000
    weighted = generate(None, n, seed=3, weights={"math": 0.5, "general": 0.3, "multilingual": 0.2})
    counts = {f: sum(t.family == f for t in weighted) for f in FAMILIES}
    assert counts["code"] == 0
    for family, share in {"math": 0.5, "general": 0.3, "multilingual": 0.2}.items():
        sd = (n * share * (1 - share)) ** 0.5  # binomial spread
        assert abs(counts[family] - n * share) < 4 * sd, counts
    assert {t.template for t in weighted if t.family == "general"} == {
        t for t, f in TEMPLATES.items() if f == "general"}  # templates stay uniform within a family
    assert [t.to_dict() for t in weighted[:50]] == [t.to_dict() for t in generate(
        None, 50, seed=3, weights={"math": 5, "general": 3, "multilingual": 2})]  # only the proportions count
    # no weights ({} or None) is the uniform stream, draw for draw
    assert [t.to_dict() for t in generate(None, 40, seed=3, weights={})] == [
        t.to_dict() for t in generate(None, 40, seed=3)]


def test_family_weights_name_every_problem():
    with pytest.raises(ValueError, match=r"'poetry' is not a task family.*code: -1 is negative"):
        generate(None, 3, seed=0, weights={"poetry": 1, "code": -1})
    with pytest.raises(ValueError, match="no family has a positive weight"):
        generate(None, 3, seed=0, weights={"code": 0})
    with pytest.raises(ValueError, match="not to one family"):
        generate("math", 3, seed=0, weights={"math": 1})


def test_generate_rejects_unknown_families():
    with pytest.raises(ValueError, match="task family 'poetry'"):
        generate("poetry", 3, seed=0)


@pytest.mark.parametrize("family", ["math", "multilingual", "general"])
def test_reference_solutions_verify_and_corruptions_fail(family):
    rng = random.Random(0)
    for task in generate(family, 300, seed=21):
        assert task.solution.splitlines()[-1] == f"Answer: {task.reference}"
        assert verify(task, task.solution) == verify(task, task.solution)
        assert verify(task, task.solution).correct, task
        wrong = verify(task, corrupt(task, rng))
        assert not wrong.correct and 0.0 <= wrong.closeness < 1.0, task


def worked_lines(a: int, op: str, b: int) -> list[str]:
    """Column arithmetic written out by hand, from place values (a // 10**i % 10), not from digit strings."""
    places = len(str(a)) if op == "*" else max(len(str(a)), len(str(b)))
    lines, carry = [], 0
    for i in range(places):
        top, last = a // 10**i % 10, i == places - 1
        if op == "*":
            value = top * b + carry
            expr = f"{top} * {b}" + (f" + {carry}" if carry else "")
            nxt = value // 10
        elif op == "+":
            bottom = b // 10**i % 10
            value = top + bottom + carry
            expr = f"{top} + {bottom}" + (f" + {carry}" if carry else "")
            nxt = value // 10
        else:
            bottom = b // 10**i % 10
            nxt = int(top < bottom + carry) if not last else 0
            value = top + 10 * nxt - carry - bottom
            expr = f"{top + 10 * nxt}" + (f" - {carry}" if carry else "") + f" - {bottom}"
        word = "borrow" if op == "-" else "carry"
        if last:
            lines.append(f"{expr} = {value}, write {value}")
        else:
            lines.append(f"{expr} = {value}, write {value % 10}" + (f" {word} {nxt}" if nxt else ""))
        carry = nxt
    result = {"+": a + b, "-": a - b, "*": a * b}[op]
    return [*lines, f"{a} {op} {b} = {result}", f"Answer: {result}"]


def test_math_solutions_work_digit_by_digit_with_carries_and_borrows():
    for a, op, b, lines in [
            (347, "+", 285, ["7 + 5 = 12, write 2 carry 1", "4 + 8 + 1 = 13, write 3 carry 1", "3 + 2 + 1 = 6, write 6",
                             "347 + 285 = 632", "Answer: 632"]),
            (999, "+", 1, ["9 + 1 = 10, write 0 carry 1", "9 + 0 + 1 = 10, write 0 carry 1",
                           "9 + 0 + 1 = 10, write 10", "999 + 1 = 1000", "Answer: 1000"]),
            (700, "-", 5, ["10 - 5 = 5, write 5 borrow 1", "10 - 1 - 0 = 9, write 9 borrow 1", "7 - 1 - 0 = 6, write 6",
                           "700 - 5 = 695", "Answer: 695"]),
            (37, "*", 6, ["7 * 6 = 42, write 2 carry 4", "3 * 6 + 4 = 22, write 22", "37 * 6 = 222", "Answer: 222"])]:
        assert math_tasks.solution(a, op, b).splitlines() == lines == worked_lines(a, op, b)


def test_every_math_solution_is_the_hand_worked_one():
    for task in generate("math", 400, seed=2, split="all"):
        a, op, b = task.meta["a"], task.meta["op"], task.meta["b"]
        assert task.solution.splitlines() == worked_lines(a, op, b), task.prompt


def test_math_corruptions_are_worked_traces_with_one_slip():
    rng = random.Random(4)
    for task in generate("math", 200, seed=6):
        wrong = corrupt(task, rng).splitlines()
        right = worked_lines(task.meta["a"], task.meta["op"], task.meta["b"])
        assert len(wrong) == len(right) and wrong[-1] != right[-1], task.prompt
        first = next(i for i, (w, r) in enumerate(zip(wrong, right)) if w != r)
        assert first < len(right) - 2, (wrong, right)  # the slip is in a column step, the rest follows from it


def test_code_reference_solutions_pass_and_every_planted_bug_fails():
    tasks = {t.template: t for t in generate("code", 80, seed=8)}
    assert set(tasks) == set(SPECS)
    for template, task in tasks.items():
        assert re.fullmatch(r"```python\ndef [a-z_]+\(xs\):\n    return .+\n```", task.solution)
        assert verify(task, task.solution).correct, template
        # all bugs of a spec in one program: each variant must fail the hidden tests
        for bug in SPECS[template].bugs:
            verdict = verify(task, fenced(program(task.reference, bug)))
            assert not verdict.correct and 0.1 <= verdict.closeness < 0.9, (template, bug)


def test_code_corruptions_fail():
    rng = random.Random(1)
    for task in generate("code", 12, seed=9):
        verdict = verify(task, corrupt(task, rng))
        assert not verdict.correct and verdict.closeness < 1.0


def test_code_static_checks():
    assert static_check("def f(xs):\n    return xs\n", "f") is None
    assert static_check("def f(xs, key=None):\n    return xs\n", "f") is None
    assert "does not parse" in static_check("def f(xs)\n    return xs\n", "f")
    assert "does not define" in static_check("def g(xs):\n    return xs\n", "f")
    assert "exactly one argument" in static_check("def f(xs, ys):\n    return xs\n", "f")
    assert "exactly one argument" in static_check("def f(*xs):\n    return xs\n", "f")
    assert "does not parse" in static_check("x = " + "+".join(["1"] * 5000), "f")
    assert "longer than" in static_check("x = 1\n" * 10000, "f")


@pytest.mark.parametrize("limit", [1000, 100_000])
def test_code_static_check_verdict_ignores_the_recursion_limit(limit):
    """torch.compile raises the process's recursion limit; the verdict on deep code must not follow it."""
    deep, shallow = "x = " + "+".join(["1"] * 5000), "def f(xs):\n    return " + "+".join(["xs[0]"] * 150) + "\n"
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    try:
        assert static_check(deep, "f").startswith("the code does not parse")
        assert static_check(shallow, "f") is None
    finally:
        sys.setrecursionlimit(before)


def test_code_verdicts_explain_failures():
    task = next(t for t in generate("code", 40, seed=4) if t.template == "code.sum")
    fname = task.reference
    assert "found 0" in verify(task, "def f(xs): return sum(xs)").detail
    two = fenced(program(fname, "sum(xs)")) + "\n" + fenced(program(fname, "sum(xs)"))
    assert "found 2" in verify(task, two).detail
    wrong_type = verify(task, fenced(program(fname, "float(sum(xs))")))
    assert not wrong_type.correct and "expected" in wrong_type.detail
    prose = verify(task, f"Here you go:\n```python\ndef {fname}(xs):\n    return sum(xs)\n```\nDone.")
    assert prose.correct


def test_hidden_tests_include_edge_cases_and_respect_empty_list_rules():
    tasks = {t.template: t for t in generate("code", 80, seed=8)}
    assert [] not in hidden_tests(tasks["code.max"]) and [] in hidden_tests(tasks["code.sum"])
    assert hidden_tests(tasks["code.sum"]) == hidden_tests(tasks["code.sum"])


@pytest.mark.parametrize("response, expected", [
    ("Answer: 42", "42"),
    ("12 + 30 = 42\nAnswer: 42", "42"),
    ("Answer: 41\nWait, no.\nAnswer:   42  ", "42"),
    ("Answer: 42\nsomething after", "42"),
    ("The answer is 42", None),
    ("answer: 42", None),
    (" Answer: 42", None),
    ("Answer:\nAnswer:   ", None),
    ("Answer: vingt et un\r\n", "vingt et un"),
    ("", None),
])
def test_extract_answer(response, expected):
    assert extract_answer(response) == expected


def test_integers_compare_as_integers_and_words_case_sensitively():
    assert check_answer("Answer: 042", "42").correct
    assert check_answer("Answer: +42", "42").correct
    assert not check_answer("Answer: 42.0", "42").correct
    assert check_answer("Answer:  Katze ", "Katze").correct
    assert not check_answer("Answer: katze", "Katze").correct
    assert check_answer("Answer: blue green red", "blue green red").correct


def test_closeness_ranks_near_misses():
    near, far = check_answer("Answer: 41", "42"), check_answer("Answer: 90", "42")
    assert 0 < far.closeness < near.closeness < 1.0
    assert check_answer("no answer", "42").closeness == 0.0
    assert check_answer("Answer: forty", "42").closeness < far.closeness
    word_near, word_far = check_answer("Answer: katze", "Katze"), check_answer("Answer: Hund", "Katze")
    assert word_far.closeness < word_near.closeness < 1.0
    assert check_answer("Answer: 42", "42").closeness == 1.0


@pytest.mark.parametrize("n, lang, words", [
    (21, "French", "vingt et un"), (71, "French", "soixante et onze"), (80, "French", "quatre-vingts"),
    (81, "French", "quatre-vingt-un"), (91, "French", "quatre-vingt-onze"), (17, "French", "dix-sept"),
    (22, "French", "vingt-deux"), (70, "French", "soixante-dix"), (99, "French", "quatre-vingt-dix-neuf"),
    (0, "French", "zéro"), (16, "Spanish", "dieciséis"), (21, "Spanish", "veintiuno"),
    (22, "Spanish", "veintidós"), (31, "Spanish", "treinta y uno"), (40, "Spanish", "cuarenta"),
    (1, "German", "eins"), (16, "German", "sechzehn"), (17, "German", "siebzehn"),
    (21, "German", "einundzwanzig"), (30, "German", "dreißig"), (76, "German", "sechsundsiebzig"),
])
def test_number_words(n, lang, words):
    assert number_words(n, lang) == words


def test_number_words_are_lower_case_and_distinct():
    for lang in ("French", "Spanish", "German"):
        words = [number_words(n, lang) for n in range(100)]
        assert len(set(words)) == 100 and all(w == w.lower() for w in words)
    with pytest.raises(ValueError):
        number_words(100, "French")


def test_lexicon_has_the_required_entries():
    required = {"cat": ("chat", "gato", "Katze"), "dog": ("chien", "perro", "Hund"),
                "horse": ("cheval", "caballo", "Pferd"), "bird": ("oiseau", "pájaro", "Vogel"),
                "fish": ("poisson", "pez", "Fisch"), "red": ("rouge", "rojo", "rot"),
                "blue": ("bleu", "azul", "blau"), "green": ("vert", "verde", "grün"),
                "black": ("noir", "negro", "schwarz"), "white": ("blanc", "blanco", "weiß")}
    assert len(LEXICON) >= 40
    assert {w: LEXICON[w] for w in required} == required
    colours = {"red", "blue", "green", "black", "white", "yellow", "grey", "pink"}
    assert all(de[0].isupper() for w, (_, _, de) in LEXICON.items() if w not in colours)


def test_the_pretraining_corpus_teaches_the_same_worked_steps():
    from workbench.data.generate import generate_documents

    docs = generate_documents({"math": 12}, seed=3)
    prompt = re.compile(r"What is (\d+) ([-+*]) (\d+)\?|Compute (\d+) ([-+*]) (\d+)\.")
    checked = 0
    for doc in docs:
        for block in doc.doc.text.split("\n\n")[1:]:
            head, _, rest = block.partition("\n")
            found = prompt.search(head)
            if not found:
                continue
            a, op, b = [g for g in found.groups() if g is not None]
            lines = rest.removeprefix("Solution:\n").splitlines()
            assert lines == worked_lines(int(a), op, int(b)), block
            checked += 1
    assert checked >= 30
