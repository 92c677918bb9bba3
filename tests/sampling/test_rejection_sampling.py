"""Rejection sampling: best-of-K selection, the verifier hook, parquet output, resume after a kill."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sampling.config import SamplingConfig
from sampling.rejection import check_plan, run_rejection_sampling, score_shard, select_best
from sampling_helpers import CountingBackend, write_prompts
from workbench.config_base import ConfigError
from workbench.rundir import read_manifest

HERE = Path(__file__).resolve().parent
SYSTEMS = ["Answer in one line.", "Show your steps."]


def cfg(**kwargs) -> SamplingConfig:
    """A small transformers-backend config."""
    return SamplingConfig(**{"backend": "transformers", "k": 4, "max_new_tokens": 12, "shard_size": 3,
                             "batch_size": 3, "system_prompts": SYSTEMS, **kwargs})


def load_candidates(out: Path):
    """The candidates as a notebook opens them."""
    import datasets

    return datasets.load_dataset("parquet", data_files=str(out / "candidates" / "*.parquet"), split="train",
                                 cache_dir=str(out.parent / "hf_cache"))


def even_length(record, response):
    """A verifier that fails about half the samples."""
    return len(response) % 2 == 0


def test_select_best_keeps_the_top_score_among_passing_samples():
    rows = [{"prompt_id": "a", "score": 3.0, "verified": False}, {"prompt_id": "a", "score": 2.0, "verified": True},
            {"prompt_id": "a", "score": 1.0, "verified": None}, {"prompt_id": "b", "score": 0.5, "verified": False}]
    select_best(rows)
    assert [r["chosen"] for r in rows] == [False, True, False, False]


def test_a_sample_cut_off_at_max_new_tokens_is_never_chosen():
    rows = [{"prompt_id": "a", "score": 9.0, "verified": True, "finish_reason": "length"},
            {"prompt_id": "a", "score": 1.0, "verified": True, "finish_reason": "stop"},
            {"prompt_id": "b", "score": 5.0, "verified": None, "finish_reason": "length"}]
    select_best(rows)
    assert [r["chosen"] for r in rows] == [False, True, False]


def test_a_prompts_identical_samples_are_verified_once():
    class LengthScorer:
        def score(self, prompts, responses):
            return [float(len(r)) for r in responses]

    calls = []

    def verifier(record, response):
        calls.append((record["id"], response))
        return response != "bad"

    records = {"a": {"id": "a", "messages": []}, "b": {"id": "b", "messages": []}}
    texts = [("a", "x"), ("a", "x"), ("a", "bad"), ("a", "x"), ("b", "x"), ("b", "bad"), ("b", "bad")]
    rows = [{"prompt_id": p, "text": t} for p, t in texts]
    score_shard(rows, records, LengthScorer(), verifier)
    assert sorted(calls) == [("a", "bad"), ("a", "x"), ("b", "bad"), ("b", "x")]
    assert [r["verified"] for r in rows] == [t != "bad" for _, t in texts]
    assert [r["chosen"] for r in rows] == [True, False, False, False, True, False, False]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, stopping_policy_dir, tiny_reward_dir, stopping_backend):
    """One rejection-sampling run with the transformers backend, a verifier and system prompts."""
    root = tmp_path_factory.mktemp("rs")
    prompts = write_prompts(root / "prompts.jsonl", 7)
    out = root / "rounds" / "round_01" / "samples"
    metrics = run_rejection_sampling(cfg(), stopping_policy_dir, tiny_reward_dir, prompts, out, seed=0,
                                     verifier=even_length, backend=stopping_backend)  # scored by its own RewardScorer
    return out, metrics


def test_every_candidate_is_written_as_a_parquet_dataset(finished):
    out, metrics = finished
    data = load_candidates(out)
    assert len(data) == 7 * 4 == metrics["num_candidates"]
    assert {"prompt_id", "sample_index", "text", "score", "chosen", "num_tokens", "gen_time_s", "verified",
            "system_prompt", "messages", "finish_reason"} <= set(data.column_names)
    assert sorted(zip(data["prompt_id"], data["sample_index"])) == [(f"p{i:03d}", j) for i in range(7) for j in range(4)]
    assert set(data["system_prompt"]) <= set(SYSTEMS)
    assert all(n >= 1 for n in data["num_tokens"]) and all(t > 0 for t in data["gen_time_s"])


def test_the_kept_sample_is_the_best_scored_finished_one_that_passes_the_verifier(finished):
    out, metrics = finished
    rows = load_candidates(out).to_list()
    for pid in {r["prompt_id"] for r in rows}:
        group = [r for r in rows if r["prompt_id"] == pid]
        assert all(r["verified"] == even_length(None, r["text"]) for r in group)
        passing = [r for r in group if r["verified"] and r["finish_reason"] == "stop"]
        chosen = [r for r in group if r["chosen"]]
        if passing:
            assert chosen == [max(passing, key=lambda r: r["score"])]
        else:
            assert chosen == []
    assert any(not r["verified"] for r in rows), "the verifier should have dropped some samples"
    assert any(r["verified"] and r["finish_reason"] == "length" for r in rows), "some passing samples should be cut off"
    assert metrics["num_selected"] > 0
    assert len({round(r["score"], 4) for r in rows}) > len(rows) // 2, "the scores should tell the samples apart"
    assert metrics["verifier_pass_rate"] == pytest.approx(sum(r["verified"] for r in rows) / len(rows))


def plain_scores(reward_dir, rows) -> list[float]:
    """Each row's (prompt as given, text) scored alone by LlamaForSequenceClassification itself, not the scorer."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from reward.data import encode
    from workbench.tokenizer import load_tokenizer

    model, tokenizer = AutoModelForSequenceClassification.from_pretrained(reward_dir).eval(), load_tokenizer(reward_dir)
    with torch.no_grad():
        return [model(input_ids=torch.tensor([encode(tokenizer, r["messages"], r["text"])])).logits[0, 0].item()
                for r in rows]


def test_scores_are_the_reward_models_own_on_the_prompt_as_given(finished, tiny_reward_dir):
    out, _ = finished
    rows = load_candidates(out).to_list()
    assert any(r["system_prompt"] for r in rows)  # sampled under a steering system prompt, scored without it
    assert [r["score"] for r in rows] == pytest.approx(plain_scores(tiny_reward_dir, rows), abs=1e-5)


def test_sft_file_holds_the_best_response_per_prompt(finished):
    out, metrics = finished
    chosen = {r["prompt_id"]: r for r in load_candidates(out).to_list() if r["chosen"]}
    sft = [json.loads(line) for line in (out / "sft.jsonl").read_text().splitlines()]
    assert len(sft) == len(chosen) == metrics["num_selected"]
    for record in sft:
        row = chosen[record["prompt_id"]]
        assert record["messages"] == [*row["messages"], {"role": "assistant", "content": row["text"]}]
        assert record["score"] == row["score"]


def test_manifest_is_done_with_metrics_and_a_rerun_skips(finished, stopping_policy_dir, tiny_reward_dir):
    out, metrics = finished
    manifest = read_manifest(out)
    assert manifest["status"] == "done" and manifest["metrics"] == metrics
    rows = load_candidates(out).to_list()
    assert metrics["mean_score_all"] == pytest.approx(sum(r["score"] for r in rows) / len(rows))
    chosen = [r["score"] for r in rows if r["chosen"]]
    assert metrics["mean_score_selected"] == pytest.approx(sum(chosen) / len(chosen))
    assert metrics["samples_per_s"] > 0 and metrics["tokens_per_s"] > 0
    assert not (out / "generations").exists()
    again = run_rejection_sampling(cfg(), stopping_policy_dir, tiny_reward_dir, out.parent.parent.parent / "prompts.jsonl",
                                   out, seed=0, backend=object(), scorer=object())  # would fail if used
    assert again == metrics


def test_resuming_with_other_settings_is_refused(tmp_path, tiny_model_dir):
    prompts = write_prompts(tmp_path / "prompts.jsonl", 2)
    out = tmp_path / "samples"
    check_plan(out, {"k": 4})
    with pytest.raises(ConfigError, match="k=4"):
        run_rejection_sampling(cfg(k=5), tiny_model_dir, None, prompts, out, seed=0, backend=object(), scorer=object())
    assert read_manifest(out)["status"] == "failed"


@pytest.mark.slow
def test_vllm_backend_feeds_rejection_sampling(tmp_path, tiny_model_dir, tiny_reward_dir, vllm_backend):
    prompts = write_prompts(tmp_path / "prompts.jsonl", 4)
    metrics = run_rejection_sampling(cfg(backend="vllm", k=3), tiny_model_dir, tiny_reward_dir, prompts,
                                     tmp_path / "samples", seed=0, backend=vllm_backend)
    rows = load_candidates(tmp_path / "samples").to_list()
    assert metrics["num_candidates"] == len(rows) == 12
    assert metrics["num_selected"] == len({r["prompt_id"] for r in rows if r["finish_reason"] == "stop"})
    assert [r["score"] for r in rows] == pytest.approx(plain_scores(tiny_reward_dir, rows), abs=1e-5)


KILLED_RUN = """
from sampling.config import SamplingConfig
from sampling.rejection import run_rejection_sampling
if __name__ == "__main__":
    cfg = SamplingConfig(**{cfg!r})
    run_rejection_sampling(cfg, {policy!r}, {reward!r}, {prompts!r}, {out!r}, seed=0)
"""


@pytest.mark.slow
def test_a_killed_run_resumes_without_losing_or_duplicating_prompts(tmp_path, stopping_policy_dir, tiny_reward_dir,
                                                                    stopping_backend):
    settings = dict(backend="transformers", k=4, max_new_tokens=24, shard_size=2, batch_size=2, system_prompts=SYSTEMS)
    prompts = write_prompts(tmp_path / "prompts.jsonl", 8)
    out = tmp_path / "samples"
    script = tmp_path / "run.py"
    script.write_text(KILLED_RUN.format(cfg=settings, policy=str(stopping_policy_dir),
                                        prompts=str(prompts), out=str(out), reward=str(tiny_reward_dir)))
    proc = subprocess.Popen([sys.executable, str(script)], cwd=HERE.parent.parent,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    generated = out / "generations"
    deadline = time.time() + 120
    while not list(generated.glob("shard_*.jsonl")):  # killed once the first of four shards is written
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.time() < deadline, "the subprocess made no progress"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list(generated.glob("shard_*.jsonl")))
    assert done_before < 4 and read_manifest(out)["status"] == "running"

    backend = CountingBackend(stopping_backend)
    metrics = run_rejection_sampling(SamplingConfig(**settings), stopping_policy_dir, tiny_reward_dir, prompts, out,
                                     seed=0, backend=backend)
    assert backend.prompts == 8 - 2 * done_before  # finished shards were not generated again
    candidates = load_candidates(out)
    assert sorted(candidates["prompt_id"]) == sorted(f"p{i:03d}" for i in range(8) for _ in range(4))
    sft_ids = [json.loads(line)["prompt_id"] for line in (out / "sft.jsonl").read_text().splitlines()]
    chosen_ids = [pid for pid, chosen in zip(candidates["prompt_id"], candidates["chosen"]) if chosen]
    assert sft_ids and sorted(sft_ids) == sorted(chosen_ids) == sorted(set(chosen_ids))
    shard_ids = [pid for f in sorted((out / "shards").glob("*.json")) for pid in json.loads(f.read_text())["prompt_ids"]]
    assert shard_ids == [f"p{i:03d}" for i in range(8)]
    assert metrics["num_prompts"] == 8 and read_manifest(out)["status"] == "done"
    assert not list(out.rglob(".*.tmp"))


def test_cli_runs_with_the_reward_scorer(tmp_path, stopping_policy_dir, tiny_reward_dir, capsys):
    pytest.importorskip("reward.scoring")
    from rounds.main import main

    prompts = write_prompts(tmp_path / "prompts.jsonl", 3)
    out = tmp_path / "samples"
    code = main(["sample", "--policy", str(stopping_policy_dir), "--reward", str(tiny_reward_dir), "--prompts", str(prompts),
                 "--out", str(out), "--set", "sampling.backend=transformers", "--set", "sampling.k=2",
                 "--set", "sampling.max_new_tokens=8", "--set", "device=cpu"])
    assert code == 0
    rows = load_candidates(out).to_list()
    assert len(rows) == 6
    assert json.loads(capsys.readouterr().out)["num_selected"] == len({r["prompt_id"] for r in rows
                                                                       if r["finish_reason"] == "stop"}) > 0


def test_task_verifier_checks_prompts_that_carry_a_task():
    from sampling.rejection import task_verifier
    from workbench.tasks import generate

    task = generate("math", 1, seed=0)[0]
    record = {"id": "t", "messages": [{"role": "user", "content": task.prompt}], "task": task.to_dict()}
    assert task_verifier(record, task.solution) is True
    assert task_verifier(record, "Answer: -1") is False
    assert task_verifier({**record, "task": None}, "anything") is None


def test_unfinished_samples_are_dropped_before_selection_and_counted(finished):
    out, metrics = finished
    rows = load_candidates(out).to_list()
    assert metrics["unfinished_samples"] == sum(r["finish_reason"] == "length" for r in rows) > 0
    assert not [r for r in rows if r["chosen"] and r["finish_reason"] != "stop"]
    groups = {pid: [r for r in rows if r["prompt_id"] == pid] for pid in {r["prompt_id"] for r in rows}}
    only_cut_off = [pid for pid, group in groups.items()
                    if any(r["verified"] for r in group if r["finish_reason"] == "length")
                    and not any(r["verified"] for r in group if r["finish_reason"] == "stop")]
    assert metrics["prompts_only_unfinished"] == len(only_cut_off)


def test_pick_pass_rates_by_hand():
    from sampling.rejection import pick_pass_rates

    def row(pid, text, verified, score, finish="stop"):
        return {"prompt_id": pid, "text": text, "verified": verified, "score": score, "finish_reason": finish}

    rows = [  # p1: the right answer three times, two wrong ones once; the reward model prefers a wrong one
        row("p1", "4", True, 0.1), row("p1", "4", True, 0.1), row("p1", "4", True, 0.1),
        row("p1", "5", False, 0.9), row("p1", "6", False, 0.2),
        # p2: a cut-off sample is left out even though it would score best and pass
        row("p2", "x", False, 0.0), row("p2", "y", True, 0.5), row("p2", "y long", True, 9.0, finish="length"),
        row("p3", "z", True, 1.0, finish="length"),  # p3 has no stopped sample: not counted
    ]
    rates = pick_pass_rates(rows)
    assert rates["random_pick_pass_rate"] == pytest.approx((3 / 5 + 1 / 2) / 2)
    assert rates["distinct_pick_pass_rate"] == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert rates["reward_pick_pass_rate"] == pytest.approx((0 + 1) / 2)
    unscored = pick_pass_rates([{**r, "score": None} for r in rows])
    assert unscored["reward_pick_pass_rate"] is None and unscored["random_pick_pass_rate"] == rates["random_pick_pass_rate"]
    assert set(pick_pass_rates([{**r, "verified": None} for r in rows]).values()) == {None}


def test_the_run_reports_how_often_each_pick_passes(finished):
    out, metrics = finished
    rows = [r for r in load_candidates(out).to_list() if r["finish_reason"] == "stop"]
    groups = {}
    for r in rows:
        groups.setdefault(r["prompt_id"], []).append(r)
    best = [max(g, key=lambda r: r["score"]) for g in groups.values()]
    assert metrics["reward_pick_pass_rate"] == pytest.approx(sum(bool(r["verified"]) for r in best) / len(groups))
    assert 0 <= metrics["random_pick_pass_rate"] <= 1 and 0 <= metrics["distinct_pick_pass_rate"] <= 1
