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
