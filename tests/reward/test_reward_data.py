"""Reward data: loading errors by file and line, the near-duplicate filter, the split, and row building."""

import json

import pytest

from reward.data import (encode, encode_prompt, filter_near_duplicates, load_preferences, packed_rows, pair_rows,
                         similarity, split_heldout)
from workbench.preferences import Preference, PreferenceError, to_dataset


def pref(i, chosen="Answer: 5", rejected="Answer: 7", edited=None, level="better", prompt="What is 2 + 3?"):
    return Preference(id=f"p{i}", prompt=[{"role": "user", "content": prompt}], chosen=chosen,
                      rejected=rejected, edited=edited, level=level)


def test_bad_jsonl_record_is_reported_with_file_and_line(tmp_path):
    path = tmp_path / "prefs.jsonl"
    good = json.dumps(pref(0).to_dict())
    bad = json.dumps({**pref(1).to_dict(), "level": "much_better"})
    path.write_text(f"{good}\n\n{bad}\n")
    with pytest.raises(PreferenceError, match=rf"{path}:3: field 'level'"):
        load_preferences([path])


def test_dataset_rows_load_and_bad_rows_name_the_row():
    records = load_preferences(to_dataset([pref(0), pref(1, edited="Answer: 5.")]))
    assert [r.id for r in records] == ["p0", "p1"] and records[1].edited == "Answer: 5."
    broken = to_dataset([pref(0)]).map(lambda row: {"chosen": None})
    with pytest.raises(PreferenceError, match="dataset row 0: field 'chosen'"):
        load_preferences(broken)


def test_near_duplicate_filter_removes_and_counts():
    records = [
        pref(0, chosen="Answer: 5", rejected="Answer: 7"),  # differ in the answer: kept
        pref(1, chosen="the  answer is 5", rejected="the answer is 5"),  # identical up to spaces
        pref(2, chosen=" ".join(["word"] * 40 + ["five"]), rejected=" ".join(["word"] * 40 + ["six"])),
        pref(3, chosen="Answer: 5", rejected="Answer: 9", edited="Answer:  5"),  # the edit changes nothing
    ]
    kept, counts = filter_near_duplicates(records, threshold=0.95)
    assert [r.id for r in kept] == ["p0", "p3"]
    assert counts == {"near_duplicates_removed": 2, "near_duplicate_edits_dropped": 1}
    assert kept[1].edited is None
    assert similarity("a b c", "a b c") == 1.0 and similarity("a b", "c d") == 0.0


def test_heldout_split_keeps_each_prompt_on_one_side():
    records = [pref(i, prompt=f"What is {i % 10} + 1?") for i in range(40)]
    train, held = split_heldout(records, 0.2, seed=0)
    assert len(held) == 8 and len(train) == 32
    assert not {r.prompt[0]["content"] for r in train} & {r.prompt[0]["content"] for r in held}


def test_packed_row_layout(tiny_tokenizer):
    record = pref(0, chosen="Answer: 5", rejected="Answer: 7", edited="2 + 3 = 5\nAnswer: 5")
    rows = packed_rows([record], tiny_tokenizer, max_length=512, margins={"better": 1.5}, seed=0)
    row = rows.dataset[0]
    prompt = encode_prompt(tiny_tokenizer, record.prompt)
    assert rows.num_pairs == 3 and sorted(row["ranks"]) == [0, 1, 2] and row["margin"] == 1.5
    assert row["input_ids"][:len(prompt)] == prompt
    for segment, (end, rank) in enumerate(zip(row["ends"], row["ranks"]), 1):
        span = [i for i, s in enumerate(row["segment_ids"]) if s == segment]
        assert span[-1] == end and row["position_ids"][span[0]] == len(prompt)
        alone = encode(tiny_tokenizer, record.prompt, record.ranked()[rank])
        assert prompt + [row["input_ids"][i] for i in span] == alone


def test_rows_longer_than_max_length_are_dropped_and_counted(tiny_tokenizer):
    records = [pref(0), pref(1, chosen="Answer: " + "5" * 400)]
    assert packed_rows(records, tiny_tokenizer, 64, {}, seed=0).too_long_removed == 1
    pairs = pair_rows(records, tiny_tokenizer, 64, {})
    assert pairs.too_long_removed == 1 and len(pairs.dataset) == 1
    assert "margin" not in pairs.dataset.column_names
