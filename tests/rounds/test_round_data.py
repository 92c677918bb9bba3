"""A round's data: seeded prompts, curated demonstrations, and the SFT mix at its curated share."""

from rounds.full_config import load_config
from workbench.jsonl import write_jsonl
from workbench.rundir import RunDir
from rounds import data as round_data


def test_round_prompts_are_seeded_per_round_and_purpose():
    cfg = load_config()
    first = round_data.round_prompts(cfg, 1, "preferences", 8)
    assert first == round_data.round_prompts(cfg, 1, "preferences", 8)
    assert first != round_data.round_prompts(cfg, 2, "preferences", 8)
    assert first != round_data.round_prompts(cfg, 1, "samples", 8)
    assert first[0]["messages"][0]["role"] == "user" and first[0]["task"]["prompt"] == first[0]["messages"][0]["content"]
    assert len({p["id"] for p in first}) == 8


def test_family_weights_shape_the_rounds_task_world_prompts():
    from collections import Counter

    cfg = load_config(overrides=["rounds.family_weights={math: 3, general: 1}"])
    prompts = round_data.round_prompts(cfg, 1, "samples", 400)
    counts = Counter(p["task"]["family"] for p in prompts)
    assert set(counts) == {"math", "general"} and 250 < counts["math"] < 350, counts
    assert prompts == round_data.round_prompts(cfg, 1, "samples", 400)


def test_family_weights_errors_name_the_field():
    from workbench.config_base import ConfigError

    with pytest.raises(ConfigError, match=r"rounds.family_weights: 'maths' is not a task family"):
        load_config(overrides=["rounds.family_weights={maths: 1}"])


def test_curated_examples_are_verified_reference_solutions():
    from workbench.tasks import verify

    cfg = load_config(overrides=["bootstrap.num_examples=20"])
    rows, tasks = round_data.curated_examples(cfg), round_data.curated_tasks(cfg)
    assert len(rows) == 20 and all(r["source"] == "curated" for r in rows)
    for row, task in zip(rows, tasks):
        assert row["messages"][0]["content"] == task.prompt
        assert verify(task, row["messages"][1]["content"]).correct


def test_sft_mix_accumulates_rounds_and_keeps_the_curated_share(tmp_path):
    cfg = load_config(overrides=["rounds.curated_share=0.25", "bootstrap.num_examples=50"])
    run = RunDir(tmp_path)
    for n in (1, 2):
        rows = [{"messages": [{"role": "user", "content": f"q{n}-{i}"}, {"role": "assistant", "content": "a"}]}
                for i in range(30)]
        write_jsonl(rows, run.round_stage(n, "samples") / "sft.jsonl")
    mix = round_data.sft_mix(cfg, run, 2)
    sources = [r["source"] for r in mix]
    assert sources.count("round_01") == 30 and sources.count("round_02") == 30
    assert sources.count("curated") == 20  # 20 / 80 = 25 %
    assert mix == round_data.sft_mix(cfg, run, 2)


# -- the user's data ---------------------------------------------------------------------------------

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


def user_prompt_file(path: Path, n: int) -> Path:
    """``n`` plain-text prompts in TRL's prompt-only format, with ids q00..."""
    path.write_text("".join(json.dumps({"id": f"q{i:02d}", "prompt": f"Say {i}."}) + "\n" for i in range(n)))
    return path


def user_cfg(tmp_path, source="user", n=10, extra=()):
    return load_config(overrides=[f"rounds.prompt_source={source}", "annotation.mode=human", "rounds.prompts_per_round=4",
                                  "rounds.rs_prompts_per_round=2",
                                  f"rounds.prompts=[{user_prompt_file(tmp_path / 'prompts.jsonl', n)}]", *extra])


def drawn(cfg, rounds) -> list[tuple[int, str, list[str]]]:
    """(round, purpose, the user prompts' original ids) of each slot, in the stream's order."""
    return [(n, purpose, [p["id"].split("-user-")[1] for p in round_data.round_prompts(cfg, n, purpose, count)])
            for n in rounds for purpose, count in (("preferences", 4), ("samples", 2))]


def test_user_prompts_do_not_repeat_across_rounds_until_the_pool_is_used_up(tmp_path):
    cfg = user_cfg(tmp_path)
    slots = drawn(cfg, (1, 2, 3))
    first_pass = [i for _, _, ids in slots for i in ids][:10]
    assert sorted(first_pass) == [f"q{i:02d}" for i in range(10)]  # the whole pool before any repeat
    second_pass = [i for _, _, ids in slots for i in ids][10:]
    assert len(second_pass) == 8 and len(set(second_pass)) == 8
    assert [len(ids) for _, _, ids in slots] == [4, 2, 4, 2, 4, 2]
    record = round_data.round_prompts(cfg, 1, "preferences", 4)[0]
    assert record["id"].startswith("r01-pref-user-q") and record["task"] is None
    assert record["messages"] == [{"role": "user", "content": f"Say {int(record['id'][-2:])}."}]


def test_the_draw_is_the_same_when_a_round_is_run_again_alone(tmp_path):
    cfg = user_cfg(tmp_path)
    everything = drawn(cfg, (1, 2, 3))
    again = user_cfg(tmp_path)  # a fresh process: only the config is known
    assert drawn(again, (3,)) == everything[4:]
    assert drawn(user_cfg(tmp_path, extra=["seed=1"]), (1,)) != everything[:2]


def test_a_round_never_holds_a_user_prompt_twice_even_from_a_small_pool(tmp_path):
    cfg = user_cfg(tmp_path, n=3)
    for n in (1, 2, 3):
        for purpose, count in (("preferences", 4), ("samples", 2)):
            ids = [p["id"] for p in round_data.round_prompts(cfg, n, purpose, count)]
            assert len(ids) == len(set(ids)) <= min(count, 3)


def test_mix_takes_its_share_from_the_user_and_the_rest_from_the_task_world(tmp_path):
    cfg = user_cfg(tmp_path, "mix", extra=["rounds.user_prompt_share=0.25"])
    prompts = round_data.round_prompts(cfg, 2, "preferences", 8)
    user = [p for p in prompts if "-user-" in p["id"]]
    world = [p for p in prompts if "-user-" not in p["id"]]
    assert len(user) == 2 and all(p["task"] is None for p in user)
    expected = round_data.prompt_records(round_data.generate(None, 6, seed=round_data.derive_seed(
        cfg.seed, "round", 2, "preferences"), weights=cfg.rounds.family_weights), "r02-pref")
    assert sorted(world, key=lambda p: p["id"]) == expected
    assert prompts == round_data.round_prompts(cfg, 2, "preferences", 8)
    assert round_data.prompt_formats(cfg) == {"prompt_source": "mix", "data_formats": [
        {"path": str(tmp_path / "prompts.jsonl"), "container": "jsonl", "format": "prompt_text", "records": 10,
         "ignored_fields": []}]}


def test_a_user_prompt_source_without_files_or_with_a_missing_file_is_refused(tmp_path):
    from workbench.config_base import ConfigError

    with pytest.raises(ConfigError, match="rounds.prompts: prompt_source user needs at least one prompt file"):
        load_config(overrides=["rounds.prompt_source=user"])
    with pytest.raises(ConfigError, match=r"rounds.sft_data\[0\]: .*nope.jsonl not found"):
        load_config(overrides=[f"rounds.sft_data=[{tmp_path / 'nope.jsonl'}]"])


def test_user_sft_rows_join_the_mix_and_the_curated_share_holds(tmp_path):
    sft = tmp_path / "sft.jsonl"
    sft.write_text("".join(json.dumps({"prompt": f"u{i}", "completion": "ok"}) + "\n" for i in range(15)))
    cfg = load_config(overrides=["rounds.curated_share=0.25", "bootstrap.num_examples=50", f"rounds.sft_data=[{sft}]"])
    run = RunDir(tmp_path / "run")
    rows = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]}
            for i in range(15)]
    write_jsonl(rows, run.round_stage(1, "samples") / "sft.jsonl")
    sources = [r["source"] for r in round_data.sft_mix(cfg, run, 1)]
    assert sources.count("user") == 15 and sources.count("round_01") == 15 and sources.count("curated") == 10
    assert round_data.user_sft_formats(cfg)["data_formats"][0]["format"] == "trl_prompt_completion"


def test_reward_and_dpo_read_the_user_preferences_in_the_rounds_configured(tmp_path):
    from rounds.stages import dpo, reward
    from rounds.stages.common import read_preferences
    from workbench.preferences import Preference, write_jsonl as write_preferences
    from workbench.stage import StageContext

    data = tmp_path / "prefs.jsonl"
    data.write_text(json.dumps({"prompt": "Sky?", "chosen": "Blue.", "rejected": "Green."}) + "\n")
    run = RunDir(tmp_path / "run")
    for n in (1, 2):
        write_preferences([Preference(f"r{n}", [{"role": "user", "content": "q"}], "a", "b", "better", round=n)],
                          run.round_stage(n, "preferences") / "preferences.jsonl")
    for when, rounds_with_user in (("all", {1, 2}), ("first", {1})):
        cfg = load_config(overrides=[f"rounds.preference_data=[{data}]", f"rounds.preference_data_rounds={when}"])
        for n in (1, 2):
            ctx = StageContext(cfg, run, run.round_stage(n, "reward"), n)
            has_user = n in rounds_with_user
            assert ("user_preference_data_00" in reward.inputs(ctx)) == has_user
            assert ("user_preference_data_00" in dpo.inputs(ctx)) == has_user
            prefs, extra = read_preferences(ctx, range(1, n + 1))
            assert [p.id for p in prefs][:n] == [f"r{r}" for r in range(1, n + 1)]
            assert [(p.chosen, p.level, p.annotator) for p in prefs[n:]] == ([("Blue.", "better", "user_data")]
                                                                              if has_user else [])
            assert extra == ({"data_formats": [{"path": str(data), "container": "jsonl", "format": "trl_explicit",
                                                "records": 1, "ignored_fields": []}], "user_preferences": 1}
                             if has_user else {})


@pytest.fixture(scope="module")
def stopping_policy(tmp_path_factory, tiny_model_dir):
    """The tiny model with its stop tokens' logits doubled, so that some of its short samples end their turn."""
    import torch
    from transformers import AutoModelForCausalLM

    from sampling.backends import stop_token_ids
    from workbench.modeling import save_model
    from workbench.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    with torch.no_grad():
        model.get_input_embeddings().weight[stop_token_ids(tokenizer)] *= 2.0
    return save_model(model, tokenizer, tmp_path_factory.mktemp("stopping_policy"))


def test_user_prompts_without_a_verifier_are_selected_by_the_reward_model_alone(tmp_path, stopping_policy):
    import datasets
    from transformers import set_seed

    from reward.train import load_reward_base, save_reward_model
    from sampling.config import SamplingConfig
    from sampling.rejection import run_rejection_sampling

    set_seed(1)
    reward_dir = save_reward_model(*load_reward_base(stopping_policy), tmp_path / "reward")
    cfg = user_cfg(tmp_path, n=12)
    prompts = tmp_path / "samples_prompts.jsonl"
    write_jsonl(round_data.round_prompts(cfg, 1, "samples", 6), prompts)
    sampling = SamplingConfig(backend="transformers", k=4, max_new_tokens=10, shard_size=3, batch_size=3)
    assert sampling.selection_mode == "verifier_reward"  # the default verifier: the task world's, which has nothing to check here
    out = tmp_path / "samples"
    metrics = run_rejection_sampling(sampling, stopping_policy, reward_dir, prompts, out, seed=0, device="cpu")
    rows = datasets.load_dataset("parquet", data_files=str(out / "candidates" / "*.parquet"), split="train",
                                 cache_dir=str(tmp_path / "hf_cache")).to_list()
    assert len(rows) == 24 and all(r["verified"] is None for r in rows)
    assert metrics["verifier_pass_rate"] is None and metrics["num_selected"] > 0
    for pid in {r["prompt_id"] for r in rows}:
        finished = [r for r in rows if r["prompt_id"] == pid and r["finish_reason"] == "stop"]
        chosen = [r for r in rows if r["prompt_id"] == pid and r["chosen"]]
        assert chosen == ([max(finished, key=lambda r: r["score"])] if finished else [])
    sft_rows = [json.loads(line) for line in (out / "sft.jsonl").read_text().splitlines()]
    assert len(sft_rows) == metrics["num_selected"]
    assert trl_sft_step(out / "sft.jsonl", stopping_policy, tmp_path / "trl_sft") > 0


def trl_sft_step(path: Path, model_dir: Path, out: Path) -> float:
    """One step of TRL's own SFTTrainer on a JSONL file loaded by `datasets` as is; returns its loss."""
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer
    from trl.data_utils import is_conversational

    from workbench.tokenizer import load_tokenizer

    data = load_dataset("json", data_files=str(path), split="train", cache_dir=str(out / "hf_cache"))
    assert "messages" in data.column_names and is_conversational(data[0])  # TRL's conversational LM format
    args = SFTConfig(output_dir=str(out), max_steps=1, per_device_train_batch_size=2, report_to="none",
                     use_cpu=True, save_strategy="no", assistant_only_loss=True)
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(str(model_dir)), args=args, train_dataset=data,
                         processing_class=load_tokenizer(model_dir))
    return trainer.train().training_loss
