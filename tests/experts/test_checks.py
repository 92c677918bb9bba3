"""The domain data checks: code execution feedback and self-correction, math steps, language, verifier hook."""

import random

import pytest

from experts.checks import check_samples, domain_verifier, summarise
from experts.code_checks import check_code, self_correct, unit_tests
from experts.language_checks import check_multilingual, languages_of
from experts.math_checks import check_math, wrong_step
from workbench import tasks
from workbench.tasks.code_tasks import SPECS, fenced, program


def code_task(template: str, seed: int = 0) -> tasks.Task:
    return next(t for t in tasks.generate("code", 200, seed) if t.template == template)


def test_self_correction_fixes_a_wrong_first_answer_after_feedback():
    task = code_task("code.max")
    asked = []

    def generate(conversations):
        asked.extend(conversations)
        return [task.solution for _ in conversations]

    wrong = fenced(program(task.reference, "xs[0]"))
    [record] = self_correct([task], [wrong], generate, max_corrections=2)
    assert not record["passed_initially"] and record["passed"] and record["attempts"] == 1
    feedback = asked[0][-1]["content"]
    assert asked[0][1] == {"role": "assistant", "content": wrong} and "expected" in feedback
    assert f"{task.reference}([" in feedback  # names the failing input


def test_self_correction_stops_after_max_corrections_and_drops_the_sample():
    task = code_task("code.sum")
    calls = []

    def generate(conversations):
        calls.append(len(conversations))
        return ["```python\ndef nope(xs):\n    return 0\n```"] * len(conversations)

    results, summary = check_samples("code", [task, task], [fenced(program(task.reference, "len(xs)")), task.solution],
                                     generate=generate, max_corrections=2)
    assert calls == [1, 1]
    assert [r["passed"] for r in results] == [False, True] and results[0]["attempts"] == 2
    assert "does not define" in results[0]["feedback"] and not results[0]["static"]
    assert summary["passed_before_correction"] == 0.5 and summary["passed_after_correction"] == 0.5


@pytest.mark.parametrize("template", sorted(SPECS))
def test_generated_unit_tests_catch_every_planted_bug(template):
    task, spec = code_task(template), SPECS[template]
    assert check_code(task, task.solution)["tests"]
    assert ([] in unit_tests(task)) == spec.empty_ok
    for bug in spec.bugs:
        result = check_code(task, fenced(program(task.reference, bug)))
        assert result["static"] and not result["tests"], bug


def test_static_checks_reject_syntax_arity_and_several_blocks():
    task = code_task("code.sum")
    assert "parse" in check_code(task, fenced(f"def {task.reference}(xs)\n    return 1\n"))["feedback"]
    two_args = fenced(f"def {task.reference}(xs, ys):\n    return 1\n")
    assert "exactly one argument" in check_code(task, two_args)["feedback"]
    assert "one ```python block" in check_code(task, task.solution + "\n" + task.solution)["feedback"]


def test_code_that_raises_gets_the_exception_as_feedback():
    task = code_task("code.max")
    result = check_code(task, fenced(f"def {task.reference}(xs):\n    return 1 // 0\n"))
    assert not result["tests"] and "ZeroDivisionError" in result["feedback"]


def test_math_step_check_drops_a_right_by_accident_trace_and_keeps_a_correct_one():
    task = next(t for t in tasks.generate("math", 50, 1) if t.template == "math.add")
    a, b, total = task.meta["a"], task.meta["b"], int(task.reference)
    accident = f"{a} + {b} = {total + 10}\n{total + 10} - 10 = {total - 1}\nAnswer: {total}"
    results, summary = check_samples("math", [task] * 3, [task.solution, accident, f"Answer: {total + 1}"])
    assert [r["passed"] for r in results] == [True, False, False]
    assert results[1]["answer"] and not results[1]["steps"]
    assert summary == {"samples": 3, "kept": pytest.approx(1 / 3), "removed_by_answer": pytest.approx(1 / 3),
                       "removed_by_steps": pytest.approx(1 / 3)}


def test_math_steps_recompute_chains_and_parentheses():
    assert wrong_step("(3 + 4) * 2 = 14\n14 - 4 * 2 = 6\nAnswer: 6") is None
    assert "is wrong" in wrong_step("Step 1: 12 * 3 = 35\nAnswer: 36")
    assert check_math(next(iter(tasks.generate("math", 1, 0))), "Answer: nothing")["answer"] is False


def math_task(a: int, op: str, b: int) -> tasks.Task:
    result = {"+": a + b, "-": a - b, "*": a * b}[op]
    return tasks.Task("math", {"+": "math.add", "-": "math.sub", "*": "math.mul"}[op], f"What is {a} {op} {b}?",
                      str(result), "", {"a": a, "b": b, "op": op})


# Hand-worked traces (right answer line, one wrong step) and the step the checker must name.
SLIPS = [
    (347, "+", 285, ["7 + 5 = 12, write 1 carry 2", "4 + 8 + 2 = 14, write 4 carry 1"], "step 1 ", "writes 1"),
    (347, "+", 285, ["7 + 5 = 12, write 2", "4 + 8 = 12, write 2 carry 1"], "step 1 ", "passes on carry 0"),
    (347, "+", 285, ["7 + 5 = 12, write 2 carry 1", "4 + 8 = 12, write 2 carry 1"], "step 2 ", "takes in 4 + 8"),
    (347, "+", 285, ["7 + 5 = 12, write 2 carry 1", "4 + 8 + 1 = 14, write 4 carry 1"], "step 2 ", "(it is 13)"),
    (347, "+", 285, ["7 + 5 = 12, write 2 carry 1", "4 + 8 + 1 = 13, write 3 carry 1",
                     "3 + 2 + 1 = 6, write 6", "6 + 0 = 6, write 6"], "step 4 ", "only 3 columns"),
    (632, "-", 285, ["12 - 5 = 7, write 7", "3 - 8"], "step 1 ", "passes on borrow 0"),
    (632, "-", 285, ["12 - 5 = 7, write 7 borrow 1", "13 - 8 = 5, write 5 borrow 1"], "step 2 ", "takes in 13 - 8"),
    (632, "-", 285, ["12 - 5 = 7, write 7 borrow 1", "13 - 1 - 8 = 4, write 4 borrow 1",
                     "6 - 1 - 2 = 3, write 3 borrow 1"], "step 3 ", "passes on borrow 1"),
    (37, "*", 6, ["7 * 6 = 42, write 2 carry 4", "3 * 6 = 18, write 18"], "step 2 ", "takes in 3 * 6"),
    (37, "*", 6, ["7 * 6 = 42, write 2 carry 4", "3 * 6 + 4 = 22, write 2"], "step 2 ", "writes 2"),
]


@pytest.mark.parametrize("a,op,b,lines,step,why", SLIPS)
def test_math_step_check_names_the_first_wrong_column(a, op, b, lines, step, why):
    task = math_task(a, op, b)
    result = check_math(task, "\n".join([*lines, f"{a} {op} {b} = {task.reference}", f"Answer: {task.reference}"]))
    assert result["answer"] and not result["steps"]
    assert result["feedback"].startswith(step) and why in result["feedback"], result["feedback"]


def test_math_step_check_accepts_the_worked_columns_in_any_order_of_terms_and_old_one_line_traces():
    task = math_task(347, "+", 285)
    commuted = "5 + 7 = 12, write 2, carry 1\n1 + 4 + 8 = 13, write 3 carry 1\n2 + 3 + 1 = 6, write 6\nAnswer: 632"
    assert check_math(task, commuted) == {"answer": True, "steps": True, "feedback": None}
    assert check_math(task, "347 + 285 = 632\nAnswer: 632")["steps"]
    missing = check_math(task, "7 + 5 = 12, write 2 carry 1\n4 + 8 + 1 = 13, write 3 carry 1\nAnswer: 632")
    assert not missing["steps"] and missing["feedback"] == "step 3 is missing: '3 + 2 + 1 = 6, write 6'"
    columns = "7 + 5 = 12, write 2 carry 1\n4 + 8 + 1 = 13, write 3 carry 1\n3 + 2 + 1 = 6, write 6"
    wrong_result_line = check_math(task, columns + "\n347 + 285 = 633\nAnswer: 632")
    assert wrong_result_line["feedback"] == "line 4: 347 + 285 = 633 is wrong (it is 632)"


def test_math_reference_solutions_pass_every_step_and_slipped_traces_fail_them():
    rng = random.Random(3)
    for task in tasks.generate("math", 300, seed=9):
        assert check_math(task, task.solution) == {"answer": True, "steps": True, "feedback": None}
        slipped = tasks.corrupt(task, rng).splitlines()
        lucky = "\n".join([*slipped[:-2], f"{task.meta['a']} {task.meta['op']} {task.meta['b']} = {task.reference}",
                           f"Answer: {task.reference}"])  # the slip, then the right result copied in
        result = check_math(task, lucky)
        assert result["answer"] and not result["steps"] and result["feedback"].startswith("step "), lucky


def test_language_check_rejects_a_correct_translation_in_the_wrong_language():
    task = next(t for t in tasks.generate("multilingual", 200, 2, split="all")
                if t.template == "multilingual.translate" and t.meta["word"] == "cat" and t.meta["lang"] == "French")
    assert check_multilingual(task, "Answer: chat")["reference"]
    wrong = check_multilingual(task, "Answer: gato")
    assert not wrong["language"] and "Spanish" in wrong["feedback"]
    assert not check_multilingual(task, "Answer: dog")["language"]
    near = check_multilingual(task, "Answer: chien")
    assert near["language"] and not near["reference"]


def test_language_of_number_words():
    assert languages_of("quatre-vingt-onze") == {"French"}
    assert languages_of("treinta y uno") == {"Spanish"}
    assert languages_of("einundzwanzig") == {"German"}
    assert languages_of("twenty one") == set()


def test_multilingual_shares_count_each_removed_sample_once():
    chosen = tasks.generate("multilingual", 60, 4)
    rng = random.Random(0)
    responses = [tasks.corrupt(t, rng) if i % 3 else t.solution for i, t in enumerate(chosen)]
    results, summary = check_samples("multilingual", chosen, responses)
    removed = sum(v for k, v in summary.items() if k.startswith("removed_by_"))
    assert summary["kept"] == pytest.approx(20 / 60) and summary["kept"] + removed == pytest.approx(1.0)
    assert summary["removed_by_language"] > 0 and summary["removed_by_reference"] > 0
    assert summarise("multilingual", [])["kept"] == 0.0


def test_domain_verifier_is_the_rejection_sampling_hook():
    math_task = next(iter(tasks.generate("math", 1, 5)))
    record = {"id": "1", "messages": [{"role": "user", "content": math_task.prompt}], "task": math_task.to_dict()}
    verify = domain_verifier("math")
    assert verify(record, math_task.solution) is True
    assert verify(record, f"1 + 1 = 3\nAnswer: {math_task.reference}") is False
    assert verify({"id": "2", "messages": record["messages"]}, "Answer: 1") is None
    general = next(iter(tasks.generate("general", 1, 5)))
    assert verify({"id": "3", "messages": [], "task": general.to_dict()}, general.solution) is True
    code = code_task("code.reverse")
    assert domain_verifier("code")({"id": "4", "messages": [], "task": code.to_dict()}, code.solution) is True
    with pytest.raises(ValueError, match="domain"):
        domain_verifier("general")
