"""Every package's input file loaders refuse malformed input with one error naming file, line and every problem.

The loaders: annotation items, preferences (JSONL and a `datasets` dataset), SFT rows, sampling
prompts and reward-scoring input. The last test is a seeded fuzz loop over random bytes and random
JSON: each file either loads (with the schema's types) or fails with a ValueError naming file:line.
"""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path

import pytest

from preference_ui.items import Item, read_items
from reward.cli import read_score_input
from reward.data import load_preferences
from sampling.rejection import read_prompts
from workbench.jsonl import MAX_DEPTH, write_jsonl
from workbench.posttrain.sft import read_rows
from workbench.preferences import Preference, PreferenceError, to_dataset
from workbench.preferences import read_jsonl as read_preferences

MESSAGES = [{"role": "user", "content": "What is 2 + 2?"}]
TASK = {"family": "math", "template": "math.add", "prompt": "What is 2 + 2?", "reference": "4",
        "solution": "Answer: 4", "meta": {"a": 2, "b": 2}}
# loader name -> (read function, a valid record)
LOADERS = {
    "items": (read_items, {"id": "i1", "prompt": "What is 2 + 2?", "responses": ["Answer: 4", "Answer: 5"],
                           "models": ["a", "b"], "round": 1, "meta": {"k": [1, 2.5]}}),
    "preferences": (read_preferences, {"id": "p1", "prompt": MESSAGES, "chosen": "Answer: 4",
                                       "rejected": "Answer: 5", "level": "better", "annotator": "alice",
                                       "round": 1, "edited": None, "meta": {"k": "v"}}),
    "sft": (lambda path: read_rows([path]), {"messages": [*MESSAGES, {"role": "assistant", "content": "4"}]}),
    "prompts": (read_prompts, {"id": "q1", "messages": MESSAGES, "task": TASK}),
    "score": (read_score_input, {"prompt": "What is 2 + 2?", "response": "Answer: 4"}),
}


def write_lines(path: Path, lines: list[bytes]) -> Path:
    """A JSONL file of the given raw lines."""
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def good_line(name: str, **over) -> bytes:
    """A valid record of loader ``name`` (with a distinct id where it has one) as one JSON line."""
    return json.dumps({**LOADERS[name][1], **over}).encode()


@pytest.mark.parametrize("name", LOADERS)
def test_valid_records_load(tmp_path, name):
    read, record = LOADERS[name]
    second = {"id": record["id"] + "b"} if "id" in record else {}
    assert len(read(write_lines(tmp_path / "in.jsonl", [good_line(name), b"", good_line(name, **second)]))) == 2


@pytest.mark.parametrize("name", LOADERS)
def test_non_utf8_bytes_name_file_and_line(tmp_path, name):
    path = write_lines(tmp_path / "in.jsonl", [good_line(name), b"", good_line(name)[:-2] + b'\xff"}'])
    with pytest.raises(ValueError, match=re.escape(f"{path}:3: not UTF-8 text (byte 0xff at byte")):
        LOADERS[name][0](path)


def test_a_utf8_bom_on_the_first_line_is_accepted(tmp_path):
    path = write_lines(tmp_path / "in.jsonl", [b"\xef\xbb\xbf" + good_line("preferences")])
    assert read_preferences(path)[0].id == "p1"


@pytest.mark.parametrize("name", LOADERS)
@pytest.mark.parametrize("text", ['{"x": NaN}', '{"x": -Infinity}', '{"x": 1e999}'])
def test_non_finite_numbers_are_refused(tmp_path, name, text):
    path = write_lines(tmp_path / "in.jsonl", [good_line(name), text.encode()])
    with pytest.raises(ValueError, match=re.escape(f"{path}:2: not valid JSON (") + ".*finite number"):
        LOADERS[name][0](path)


@pytest.mark.parametrize("name", LOADERS)
def test_half_a_surrogate_pair_is_refused(tmp_path, name):
    path = write_lines(tmp_path / "in.jsonl", [good_line(name), b'{"k": {"\\udc00": 1}}', b'{"x": "\\ud800"}'])
    with pytest.raises(ValueError, match=re.escape(f"{path}:2: the record has a \\u escape of half a surrogate")):
        LOADERS[name][0](path)


@pytest.mark.parametrize("name", LOADERS)
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 100_000])
def test_deep_nesting_is_a_clean_error(tmp_path, name, depth):
    path = write_lines(tmp_path / "in.jsonl", [b"[" * depth + b"]" * depth])
    with pytest.raises(ValueError, match=re.escape(f"{path}:1: the record nests more than {MAX_DEPTH} levels")):
        LOADERS[name][0](path)


def test_a_preference_reports_every_problem_at_once(tmp_path):
    bad = good_line("preferences", id=1, annotator=[1], round=True, meta=5, level="much", colour="red")
    path = write_lines(tmp_path / "prefs.jsonl", [good_line("preferences"), bad])
    with pytest.raises(PreferenceError) as info:
        read_preferences(path)
    message = str(info.value)
    assert message.startswith(f"{path}:2: ")
    for part in ("unknown field 'colour'", "field 'id' must be a non-empty string, got 1",
                 "field 'annotator' must be a non-empty string, got [1]", "field 'level' is 'much'",
                 "field 'round' must be a non-negative integer, got True", "field 'meta' must be an object, got 5"):
        assert part in message


@pytest.mark.parametrize("over, problem", [
    ({"round": -1}, "field 'round' must be a non-negative integer, got -1"),
    ({"round": 1.5}, "field 'round' must be a non-negative integer, got 1.5"),
    ({"id": ""}, "field 'id' must be a non-empty string, got ''"),
    ({"edited": 3}, "field 'edited' must be null or a non-empty string, got 3"),
    ({"prompt": [{"role": "user"}]}, "prompt[0] must be {role, content} with role in"),
    ({"prompt": [{"role": "robot", "content": "hi"}]}, "prompt[0] must be {role, content} with role in"),
    ({"meta": json.loads("[" * 10 + "]" * 10)}, "field 'meta' must be an object"),
])
def test_preference_types_are_checked(tmp_path, over, problem):
    path = write_lines(tmp_path / "prefs.jsonl", [good_line("preferences", **over)])
    with pytest.raises(PreferenceError, match=re.escape(f"{path}:1: ") + ".*" + re.escape(problem)):
        read_preferences(path)


def test_meta_depth_is_bounded_in_every_preference_format(tmp_path):
    deep: dict = {}
    node = deep
    for _ in range(MAX_DEPTH):
        node["k"] = node = {}
    record = {**LOADERS["preferences"][1], "meta": deep}
    with pytest.raises(PreferenceError, match=re.escape(f"{tmp_path / 'p.jsonl'}:1: the record nests more")):
        read_preferences(write_lines(tmp_path / "p.jsonl", [json.dumps(record).encode()]))
    dataset = to_dataset([Preference(**LOADERS["preferences"][1])])
    dataset = dataset.map(lambda row: {"meta": json.dumps(deep)})
    with pytest.raises(PreferenceError, match=r"dataset row 0: field 'meta': the record nests more"):
        load_preferences(dataset)
    nan = to_dataset([Preference(**LOADERS["preferences"][1])]).map(lambda row: {"meta": '{"x": NaN}'})
    with pytest.raises(PreferenceError, match=r"dataset row 0: field 'meta': not valid JSON \(NaN"):
        load_preferences(nan)


def test_an_item_reports_every_problem_at_once(tmp_path):
    bad = good_line("items", id=1, round=True, meta=5, models=["a"], responses=["one"])
    path = write_lines(tmp_path / "items.jsonl", [bad])
    with pytest.raises(ValueError) as info:
        read_items(path)
    message = str(info.value)
    assert message.startswith(f"{path}:1: ")
    for part in ("field 'id' must be", "field 'responses' must be", "field 'models' must be",
                 "field 'round' must be a non-negative integer, got True", "field 'meta' must be an object, got 5"):
        assert part in message


def test_an_sft_row_reports_every_bad_message(tmp_path):
    bad = json.dumps({"messages": [{"role": "robot", "content": "x"}, {"role": "user", "content": 5}]}).encode()
    path = write_lines(tmp_path / "sft.jsonl", [good_line("sft"), bad])
    with pytest.raises(ValueError) as info:
        read_rows([path])
    message = str(info.value)
    assert message.startswith(f"{path}:2: ")
    assert "messages[0] must be" in message and "messages[1] must be" in message
    assert "no assistant turn" in message


def test_a_prompt_reports_every_problem_at_once(tmp_path):
    bad = good_line("prompts", id=7, messages="hi", task={"family": "poetry"})
    path = write_lines(tmp_path / "prompts.jsonl", [bad])
    with pytest.raises(ValueError) as info:
        read_prompts(path)
    message = str(info.value)
    assert message.startswith(f"{path}:1: ")
    for part in ("field 'id' must be a non-empty string, got 7", "field 'messages' must be a non-empty list",
                 "field 'task' must be null or a task-world task"):
        assert part in message


# -- the fuzz loop ---------------------------------------------------------------------------------

def random_json(rng: random.Random, depth: int = 0):
    """A random JSON value (scalars of every type, strings with odd characters, small containers)."""
    kinds = ["int", "float", "bool", "null", "str"] + (["list", "dict"] if depth < 4 else [])
    kind = rng.choice(kinds)
    if kind == "int":
        return rng.choice([0, 1, -1, 2**70, rng.randint(-10, 10)])
    if kind == "float":
        return rng.choice([0.5, -1e300, 1e-300, rng.uniform(-5, 5)])
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind == "str":
        return rng.choice(["", " ", "user", "assistant", "better", "x" * rng.randint(1, 30), "\u2028é\x00"])
    if kind == "list":
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(["id", "role", "content", "k", "meta"]): random_json(rng, depth + 1)
            for _ in range(rng.randint(0, 3))}


def random_line(rng: random.Random, name: str) -> bytes:
    """One line: a valid record, a mutated one, random JSON, random bytes or a nasty literal."""
    record = dict(LOADERS[name][1])
    roll = rng.random()
    if roll < 0.2:
        return json.dumps(record).encode()
    if roll < 0.6:
        for _ in range(rng.randint(1, 3)):
            key = rng.choice([*record, "extra", "meta"])
            if rng.random() < 0.3:
                record.pop(key, None)
            else:
                record[key] = random_json(rng)
        return json.dumps(record).encode()
    if roll < 0.75:
        return json.dumps(random_json(rng)).encode()
    if roll < 0.9:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 40))).replace(b"\n", b"")
    return rng.choice([b'{"id": NaN}', b"[" * 5000, b"{" * 3, b'"\xc3"', b"1e999", b"\xef\xbb\xbf{}",
                       b'{"id": "\\ud800"}'])


def loaded_types_hold(name: str, loaded: list) -> bool:
    """The schema's types on what a loader returned."""
    if name == "preferences":
        return all(isinstance(p, Preference) and isinstance(p.id, str) and isinstance(p.annotator, str)
                   and type(p.round) is int and isinstance(p.meta, dict) for p in loaded)
    if name == "items":
        return all(isinstance(i, Item) and isinstance(i.id, str) and type(i.round) is int
                   and isinstance(i.meta, dict) for i in loaded)
    if name == "prompts":
        return all(isinstance(r["id"], str) and r["messages"] for r in loaded)
    if name == "sft":
        return all(any(m["role"] == "assistant" for m in r["messages"]) for r in loaded)
    return all(isinstance(r["response"], str) and isinstance(r["prompt"], list) for r in loaded)


@pytest.mark.parametrize("name", LOADERS)
def test_random_input_loads_or_fails_naming_file_and_line(tmp_path, name):
    rng = random.Random(f"fuzz-{name}")
    outcomes = {"loaded": 0, "refused": 0}
    for case in range(300):
        lines = [random_line(rng, name) for _ in range(rng.randint(1, 4))]
        path = write_lines(tmp_path / f"{case}.jsonl", lines)
        try:
            loaded = LOADERS[name][0](path)
        except ValueError as exc:
            message = str(exc)
            match = re.match(re.escape(str(path)) + r":(\d+): ", message)
            blank = all(not line.strip() for line in lines)
            assert match or (name == "prompts" and blank and message == f"{path}: no prompts"), message
            if match:
                assert lines[int(match.group(1)) - 1].strip(), message  # names a line that has content
            outcomes["refused"] += 1
        else:
            assert loaded_types_hold(name, loaded), (lines, loaded)
            assert not any(isinstance(v, float) and not math.isfinite(v) for v in _leaves(loaded))
            rows = [vars(r) if hasattr(r, "__dataclass_fields__") else r for r in loaded]
            write_jsonl(rows, tmp_path / "written.jsonl")  # what loads can be written back as UTF-8
            outcomes["loaded"] += 1
    assert outcomes["loaded"] >= 10 and outcomes["refused"] >= 100, outcomes


def _leaves(value):
    """Every scalar inside loaded records (dataclasses through their dict)."""
    stack = [value]
    while stack:
        node = stack.pop()
        if hasattr(node, "__dataclass_fields__"):
            node = vars(node)
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        else:
            yield node


# -- a bad input changes nothing already written ---------------------------------------------------

def test_a_bad_item_file_imports_nothing_and_says_where(tmp_path, capsys):
    from preference_ui.store import Store
    from rounds.main import main

    db = tmp_path / "a.sqlite"
    good = write_lines(tmp_path / "good.jsonl", [good_line("items")])
    assert main(["annotate", "import", str(good), "--db", str(db), "--run-dir", str(tmp_path)]) == 0
    broken = good_line("items", id="i3")[:-1] + b"\xff}"
    bad = write_lines(tmp_path / "bad.jsonl", [good_line("items", id="i2"), broken])
    assert main(["annotate", "import", str(bad), "--db", str(db), "--run-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2: not UTF-8 text" in err and "Traceback" not in err
    assert Store(db).count_items() == 1  # i2, on a good line before the bad one, was not imported either


def test_a_bad_score_input_leaves_the_existing_output_alone(tmp_path, capsys):
    from rounds.main import main

    out = tmp_path / "scored.jsonl"
    out.write_text('{"kept": true}\n')
    bad = write_lines(tmp_path / "in.jsonl", [good_line("score"), b'{"prompt": "hi", "response": NaN}'])
    assert main(["reward", "score", "--model", str(tmp_path), "--input", str(bad), "--out", str(out)]) == 2
    assert f"{bad}:2: not valid JSON (NaN is not a finite number)" in capsys.readouterr().err
    assert out.read_text() == '{"kept": true}\n'
