"""The preference schema: validation errors name file and line; ranking and pairs."""

import json

import pytest

from workbench.preferences import Preference, PreferenceError, read_jsonl, to_dataset, write_jsonl


def record(**over):
    base = {"id": "p1", "prompt": [{"role": "user", "content": "What is 2 + 2?"}],
            "chosen": "Answer: 4", "rejected": "Answer: 5", "level": "better"}
    return {**base, **over}


def test_round_trip_through_jsonl(tmp_path):
    path = tmp_path / "prefs.jsonl"
    records = [Preference(**record()), Preference(**record(id="p2", edited="2 + 2 = 4\nAnswer: 4"))]
    write_jsonl(records, path)
    assert read_jsonl(path) == records


def test_edit_ranks_edited_over_chosen_over_rejected():
    pref = Preference(**record(edited="E"))
    assert pref.ranked() == ["E", "Answer: 4", "Answer: 5"]
    assert pref.pairs() == [("E", "Answer: 4"), ("E", "Answer: 5"), ("Answer: 4", "Answer: 5")]


def test_an_empty_response_is_kept_as_generated(tmp_path):
    path = tmp_path / "prefs.jsonl"
    path.write_text(json.dumps(record(rejected="")) + "\n" + json.dumps(record(id="p2", chosen=" \n")) + "\n")
    assert [(p.chosen, p.rejected) for p in read_jsonl(path)] == [("Answer: 4", ""), (" \n", "Answer: 5")]


@pytest.mark.parametrize("bad, message", [
    (record(level="much_better"), "field 'level' is 'much_better'"),
    ({k: v for k, v in record().items() if k != "chosen"}, "missing field 'chosen'"),
    (record(prompt="hi"), "field 'prompt' must be"),
    (record(rejected=3), "field 'rejected' must be a string, got 3"),
    (record(colour="red"), "unknown field 'colour'"),
])
def test_bad_records_name_file_and_line(tmp_path, bad, message):
    path = tmp_path / "prefs.jsonl"
    path.write_text(json.dumps(record()) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(PreferenceError, match=f"prefs.jsonl:2: {message}"):
        read_jsonl(path)


def test_invalid_json_names_line(tmp_path):
    path = tmp_path / "prefs.jsonl"
    path.write_text(json.dumps(record()) + "\n{oops\n")
    with pytest.raises(PreferenceError, match="prefs.jsonl:2: not valid JSON"):
        read_jsonl(path)


def test_dataset_has_schema_columns():
    ds = to_dataset([Preference(**record())])
    assert set(ds.column_names) >= {"prompt", "chosen", "rejected", "edited", "level", "annotator", "round"}
