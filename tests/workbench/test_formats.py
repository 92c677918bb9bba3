"""The user's data: every supported format loads from JSONL, parquet and a datasets folder; bad records are named."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from workbench import formats
from workbench.formats import DataFormatError
from workbench.preferences import Preference


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


def write(path: Path, rows: list) -> Path:
    """``rows`` as a JSONL file, a parquet file or a save_to_disk folder, by ``path``'s suffix."""
    from datasets import Dataset

    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif path.suffix == ".parquet":
        Dataset.from_list(rows).to_parquet(str(path))
    else:
        Dataset.from_list(rows).save_to_disk(str(path))
    return path


CONTAINERS = [("data.jsonl", "jsonl"), ("data.parquet", "parquet"), ("data_folder", "datasets")]


def load_one(kind: str, path: Path, **kwargs) -> formats.Loaded:
    (item,) = formats.load(kind, [path], **kwargs)
    return item


# -- prompts ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,container", CONTAINERS)
def test_text_prompts_load_with_their_ids_or_a_stable_hash(tmp_path, name, container):
    item = load_one("prompts", write(tmp_path / name, [{"prompt": "What is 2 + 3?", "id": "a"},
                                                       {"prompt": "Name a colour.", "id": "b"}]))
    assert (item.container, item.format) == (container, "prompt_text")
    assert item.records == [{"id": "a", "messages": [user("What is 2 + 3?")], "task": None},
                            {"id": "b", "messages": [user("Name a colour.")], "task": None}]
    hashed = load_one("prompts", write(tmp_path / ("h" + name), [{"prompt": "Name a colour."}]))
    again = load_one("prompts", write(tmp_path / "again.jsonl", [{"prompt": [user("Name a colour.")]}]))
    assert re.fullmatch(r"p-[0-9a-f]{12}", hashed.records[0]["id"])
    assert hashed.records[0]["id"] == again.records[0]["id"]  # the id hashes the messages, not the file
    assert again.format == "prompt_conversational"


@pytest.mark.parametrize("name,container", CONTAINERS)
def test_messages_prompts_keep_their_task(tmp_path, name, container):
    from workbench.tasks import generate

    task = generate("math", 1, seed=0)[0].to_dict()
    rows = [{"id": 7, "messages": [{"role": "system", "content": "Be brief."}, user(task["prompt"])], "task": task}]
    item = load_one("prompts", write(tmp_path / name, rows))
    assert item.format == "messages"
    assert item.records == [{"id": "7", "messages": [{"role": "system", "content": "Be brief."},
                                                      user(task["prompt"])], "task": task}]


def test_a_prompt_given_twice_is_dropped_and_counted_but_an_id_reused_is_refused(tmp_path):
    item = load_one("prompts", write(tmp_path / "p.jsonl", [{"prompt": "hi"}, {"prompt": "hi"}, {"prompt": "yo"}]))
    assert len(item.records) == 2 and item.describe()["duplicates_skipped"] == 1
    with pytest.raises(DataFormatError) as err:
        load_one("prompts", write(tmp_path / "q.jsonl", [{"id": "x", "prompt": "hi"}, {"id": "x", "prompt": "yo"}]))
    assert str(err.value) == (f"{tmp_path / 'q.jsonl'}: id 'x' is given twice (also in {tmp_path / 'q.jsonl'}) "
                              "for different records; ids must be unique")


def test_bad_prompt_records_name_file_line_and_every_field(tmp_path):
    path = write(tmp_path / "p.jsonl", [{"prompt": "fine"}, {"prompt": [assistant("hi")], "id": True},
                                        {"prompt": "", "task": {"family": "cooking"}}])
    with pytest.raises(DataFormatError) as err:
        formats.load("prompts", [path])
    assert str(err.value).splitlines() == [
        f"{path}:2: field 'prompt' must end with a user message, ends with 'assistant'; "
        "field 'id' must be a non-empty string or an integer, got True",
        f"{path}:3: field 'prompt' must not be empty; field 'task' must be null or a task-world task "
        "{family, template, prompt, reference, solution, meta} with family in "
        "['math', 'code', 'multilingual', 'general'], got {'family': 'cooking'}",
    ]


def test_a_parquet_row_is_named_by_its_index(tmp_path):
    path = write(tmp_path / "p.parquet", [{"prompt": "fine"}, {"prompt": "  "}])
    with pytest.raises(DataFormatError, match=re.escape(f"{path}: row 1: field 'prompt' must not be empty")):
        formats.load("prompts", [path])


def test_an_unknown_layout_or_file_type_is_refused(tmp_path):
    path = write(tmp_path / "p.jsonl", [{"question": "hi"}])
    with pytest.raises(DataFormatError) as err:
        formats.load("prompts", [path])
    assert str(err.value) == (f"{path}: cannot tell the prompts format from the fields ['question']; expected "
                              "'prompt' (a string or messages) or 'messages'")
    (tmp_path / "p.csv").write_text("prompt\nhi\n")
    with pytest.raises(DataFormatError, match="unsupported file type"):
        formats.load("prompts", [tmp_path / "p.csv"])
    with pytest.raises(FileNotFoundError, match="missing.jsonl: data file not found"):
        formats.load("prompts", [tmp_path / "missing.jsonl"])


# -- preferences -----------------------------------------------------------------------------------

def expected(rid, prompt, chosen, rejected, path, fmt, level="better", **meta) -> Preference:
    return Preference(id=rid, prompt=prompt, chosen=chosen, rejected=rejected, level=level, annotator="user_data",
                      meta={"source": str(path), "format": fmt, **meta})


@pytest.mark.parametrize("name,container", CONTAINERS)
def test_trl_explicit_prompt_conversational_and_plain(tmp_path, name, container):
    rows = [{"id": "c", "prompt": [user("Sky?")], "chosen": [assistant("Blue.")], "rejected": [assistant("Green.")],
             "score_chosen": 9.0}]
    item = load_one("preferences", write(tmp_path / name, rows))
    assert (item.container, item.format, item.ignored_fields) == (container, "trl_explicit", ["score_chosen"])
    assert item.records == [expected("c", [user("Sky?")], "Blue.", "Green.", tmp_path / name, "trl_explicit")]
    plain = load_one("preferences", write(tmp_path / "plain.jsonl",
                                          [{"id": "s", "prompt": "Sky?", "chosen": "Blue.", "rejected": "Green."}]),
                     default_level="significantly_better")
    assert plain.records == [expected("s", [user("Sky?")], "Blue.", "Green.", tmp_path / "plain.jsonl",
                                      "trl_explicit", level="significantly_better")]


def test_trl_chosen_that_repeats_the_prompt_has_it_removed(tmp_path):
    # UltraFeedback-binarized style: a string prompt, chosen/rejected the whole conversation
    rows = [{"prompt": "Sky?", "chosen": [user("Sky?"), assistant("Blue.")],
             "rejected": [user("Sky?"), assistant("Green.")]}]
    (pref,) = load_one("preferences", write(tmp_path / "p.jsonl", rows)).records
    assert (pref.prompt, pref.chosen, pref.rejected) == ([user("Sky?")], "Blue.", "Green.")


@pytest.mark.parametrize("name,container", CONTAINERS)
def test_trl_implicit_prompt_takes_the_shared_turns(tmp_path, name, container):
    turns = [{"role": "system", "content": "Be brief."}, user("2+2?"), assistant("4"), user("and 3+3?")]
    rows = [{"id": "i", "chosen": turns + [assistant("6")], "rejected": turns + [assistant("7")]}]
    item = load_one("preferences", write(tmp_path / name, rows))
    assert item.format == "trl_implicit"
    assert item.records == [expected("i", turns, "6", "7", tmp_path / name, "trl_implicit")]


@pytest.mark.parametrize("name,container", CONTAINERS)
def test_the_workbench_schema_loads_as_is(tmp_path, name, container):
    row = {"id": "w", "prompt": [user("Sky?")], "chosen": "Blue.", "rejected": "Green.", "edited": "Blue, by day.",
           "level": "slightly_better", "annotator": "ann", "round": 2, "meta": {"k": 1}}
    item = load_one("preferences", write(tmp_path / name, [row]))
    assert item.format == "workbench"
    assert item.records == [Preference(id="w", prompt=[user("Sky?")], chosen="Blue.", rejected="Green.",
                                       edited="Blue, by day.", level="slightly_better", annotator="ann", round=2,
                                       meta={"k": 1})]


@pytest.mark.parametrize("name,container", CONTAINERS)
def test_rated_completions_rank_the_best_over_each_lower_one_and_count_ties(tmp_path, name, container):
    rows = [
        {"id": "u1", "instruction": "Sky?", "completions": [
            {"response": "Green.", "overall_score": 2}, {"response": "Blue.", "overall_score": 9},
            {"response": "Azure.", "overall_score": 9}, {"response": "Red.", "overall_score": 1}]},
        {"id": "u2", "prompt": "Grass?", "completions": [{"text": "Green.", "score": 3.0}]},
        {"id": "u3", "prompt": "Sun?", "completions": [{"text": "Hot.", "score": 3.0}, {"text": "Warm.", "score": 3.0}]},
        {"id": "u4", "prompt": "Sea?", "completions": [{"text": "Wet.", "ratings": {"honesty": 4, "helpfulness": 5}},
                                                       {"text": "Dry.", "ratings": {"honesty": 1, "helpfulness": 2}}]},
    ]
    if container != "jsonl":  # one schema per table (Dataset.from_list takes the first row's fields)
        rows = [{"id": r["id"], "prompt": r.get("prompt", r.get("instruction")),
                 "completions": [{"response": c.get("response", c.get("text")),
                                       "score": c.get("score", c.get("overall_score")), **(
                                           {} if "ratings" not in c else {"ratings": c["ratings"]})}
                                      for c in r["completions"]]} for r in rows]
    path = tmp_path / name
    item = load_one("preferences", write(path, rows))
    assert item.format == "rated_completions"
    assert item.records == [
        expected("u1-0", [user("Sky?")], "Blue.", "Green.", path, "rated_completions", scores=[9, 2]),
        expected("u1-1", [user("Sky?")], "Blue.", "Red.", path, "rated_completions", scores=[9, 1]),
        expected("u4-0", [user("Sea?")], "Wet.", "Dry.", path, "rated_completions", scores=[4.5, 1.5]),
    ]
    assert item.describe() == {"path": str(path), "container": container, "format": "rated_completions",
                               "records": 3, "rated_rows": 4, "tied_with_best_skipped": 2,
                               "single_completion_rows": 1, "all_tied_rows": 1, "ignored_fields": []}


def test_identical_chosen_and_rejected_are_skipped_and_counted(tmp_path):
    item = load_one("preferences", write(tmp_path / "p.jsonl", [{"prompt": "a", "chosen": "x", "rejected": "x"},
                                                                {"prompt": "a", "chosen": "x", "rejected": "y"}]))
    assert len(item.records) == 1 and item.counts == {"identical_pairs_skipped": 1}


def test_bad_preference_records_name_file_line_and_every_field(tmp_path):
    path = write(tmp_path / "p.jsonl", [
        {"prompt": [user("q")], "chosen": [user("not an answer")], "rejected": ""},
        {"prompt": 3, "chosen": "x", "rejected": [assistant("a"), assistant("b")]},
        {"prompt": "q", "chosen": "x"},
    ])
    with pytest.raises(DataFormatError) as err:
        formats.load("preferences", [path])
    assert str(err.value).splitlines() == [
        f"{path}:1: field 'chosen' must be one non-empty assistant message after the prompt, got "
        "[{'role': 'user', 'content': 'not an answer'}]; field 'rejected' must not be empty",
        f"{path}:2: field 'prompt' must be a string or a non-empty list of {{role, content}} messages, got 3; "
        "field 'rejected' must be one non-empty assistant message after the prompt, got "
        "[{'role': 'assistant', 'content': 'a'}, {'role': 'assista...",  # long values are cut
        f"{path}:3: missing field 'rejected'",
    ]


def test_bad_implicit_rated_and_workbench_records(tmp_path):
    implicit = write(tmp_path / "i.jsonl", [{"chosen": [assistant("a")], "rejected": [assistant("b")]}])
    rated = write(tmp_path / "r.jsonl", [{"prompt": "q", "completions": [{"response": "a"}, {"text": 5, "score": 1}]}])
    schema = write(tmp_path / "w.jsonl", [{"id": "w", "prompt": [user("q")], "chosen": "a", "rejected": "b",
                                           "level": "much_better"}])
    with pytest.raises(DataFormatError) as err:
        formats.load("preferences", [implicit, rated, schema])
    assert str(err.value).splitlines() == [
        f"{implicit}:1: fields 'chosen' and 'rejected' must be conversations that share the prompt turns "
        "(ending with a user message) and then differ; they share 0 turn(s)",
        f"{rated}:1: completions[0] needs a number in one of ['score', 'overall_score', 'ratings'] (ratings: a list "
        "or mapping of numbers), got {'response': 'a'}; completions[1].response (or .text) must be a non-empty "
        "string, got 5",
        f"{schema}:1: field 'level' is 'much_better', expected one of ['significantly_better', 'better', "
        "'slightly_better', 'marginally_better']",
    ]


def test_a_parquet_non_finite_score_is_refused(tmp_path):
    path = write(tmp_path / "r.parquet", [{"prompt": "q", "completions": [{"text": "a", "score": float("nan")},
                                                                         {"text": "b", "score": 1.0}]}])
    with pytest.raises(DataFormatError, match=re.escape(f"{path}: row 0: the record has the non-finite number nan")):
        formats.load("preferences", [path])


# -- sft -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,container", CONTAINERS)
def test_sft_messages_and_trl_prompt_completion_rows(tmp_path, name, container):
    item = load_one("sft", write(tmp_path / name, [{"messages": [user("2+2?"), assistant("4")]}]))
    assert (item.format, item.records) == ("messages", [{"messages": [user("2+2?"), assistant("4")]}])
    conv = load_one("sft", write(tmp_path / ("c" + name), [{"prompt": [user("2+2?")], "completion": [assistant("4")]}]))
    plain = load_one("sft", write(tmp_path / "plain.jsonl", [{"prompt": "2+2?", "completion": "4"}]))
    assert conv.format == plain.format == "trl_prompt_completion"
    assert conv.records == plain.records == [{"messages": [user("2+2?"), assistant("4")]}]


def test_bad_sft_rows_are_named(tmp_path):
    path = write(tmp_path / "s.jsonl", [{"messages": [user("no answer")]}, {"messages": [user("a"), assistant("b")]},
                                        {"messages": [{"role": "robot", "content": "x"}, assistant("b")]}])
    with pytest.raises(DataFormatError) as err:
        formats.load("sft", [path])
    assert str(err.value).splitlines() == [
        f"{path}:1: the conversation has no assistant turn to train on",
        f"{path}:3: messages[0] must be {{role, content}} with role in ('system', 'user', 'assistant') and string "
        "content, got {'role': 'robot', 'content': 'x'}",
    ]


# -- the CLI and the TRL export ----------------------------------------------------------------------

def test_convert_writes_nothing_when_a_record_is_bad(tmp_path, capsys):
    from rounds.main import main

    good = write(tmp_path / "good.jsonl", [{"prompt": "q", "chosen": "a", "rejected": "b", "id": "g"}])
    bad = write(tmp_path / "bad.jsonl", [{"prompt": "q", "chosen": "a"}])
    out = tmp_path / "out.jsonl"
    assert main(["convert", "--kind", "preferences", str(good), str(bad), "--out", str(out)]) == 2
    assert f"{bad}:1: missing field 'rejected'" in capsys.readouterr().err
    assert not out.exists()
    assert main(["convert", "--kind", "preferences", str(good), "--out", str(out), "--to", "trl"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["format"] == "trl_explicit"
    assert [json.loads(line) for line in out.read_text().splitlines()] == [
        {"prompt": [user("q")], "chosen": [assistant("a")], "rejected": [assistant("b")], "id": "g",
         "level": "better"}]


def test_trl_rows_pair_the_best_with_each_other_response_like_the_workbench_dpo():
    prefs = [Preference("a", [user("q")], "chosen", "rejected", "better", edited="edited"),
             Preference("b", [user("q")], "chosen", "rejected", "marginally_better", edited=" chosen "),
             Preference("c", [user("q")], "chosen", "rejected", "significantly_better")]
    rows = formats.trl_preference_rows(prefs)
    assert [(r["id"], r["chosen"][0]["content"], r["rejected"][0]["content"], r["level"]) for r in rows] == [
        ("a", "edited", "chosen", "better"), ("a", "edited", "rejected", "better"),
        ("b", "chosen", "rejected", "marginally_better"), ("c", "chosen", "rejected", "significantly_better")]


def test_the_trl_export_loads_with_datasets_and_trains_trls_dpo_trainer(tmp_path, tiny_model_dir):
    """The exported file is what TRL's DPOTrainer reads: its own data checks pass and a step trains."""
    import math

    from datasets import load_dataset
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer
    from trl.data_utils import is_conversational

    from workbench.jsonl import write_jsonl
    from workbench.tokenizer import load_tokenizer

    prefs = [Preference(f"p{i}", [user(f"What is {i} + 1?")], f"Answer: {i + 1}", f"Answer: {i}", "better")
             for i in range(4)]
    path = write_jsonl(formats.trl_preference_rows(prefs), tmp_path / "preferences_trl.jsonl")
    data = load_dataset("json", data_files=str(path), split="train")
    assert {"prompt", "chosen", "rejected"} <= set(data.column_names) and is_conversational(data[0])
    args = DPOConfig(output_dir=str(tmp_path / "dpo"), max_steps=1, per_device_train_batch_size=2,
                     report_to="none", use_cpu=True, logging_steps=1, save_strategy="no")
    trainer = DPOTrainer(model=AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)), args=args,
                         train_dataset=data, processing_class=load_tokenizer(tiny_model_dir))
    output = trainer.train()
    assert math.isfinite(output.training_loss)


def test_a_dataset_dict_folder_reads_its_train_split_or_refuses_several(tmp_path):
    from datasets import Dataset, DatasetDict

    one = Dataset.from_list([{"prompt": "a"}])
    DatasetDict({"train": one, "test": Dataset.from_list([{"prompt": "b"}])}).save_to_disk(str(tmp_path / "d1"))
    assert [r["messages"][0]["content"] for r in load_one("prompts", tmp_path / "d1").records] == ["a"]
    DatasetDict({"dev": one, "test": one}).save_to_disk(str(tmp_path / "d2"))
    with pytest.raises(DataFormatError, match=re.escape("d2: a DatasetDict with splits ['dev', 'test']; save one "
                                                        "split, or name the one to read 'train'")):
        formats.load("prompts", [tmp_path / "d2"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="empty: not a folder written by datasets' save_to_disk"):
        formats.load("prompts", [tmp_path / "empty"])
