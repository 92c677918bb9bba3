"""An expert's rejection sampling on helper workers: the domain verifier travels by import path."""

import json

import pytest

from sampling.config import SamplingConfig
from sampling.rejection import WORKER_SPEC, VerifierRef, rejection_sample
from workbench.chat import user_prompt
from workbench.jsonl import write_jsonl


def math_prompts(path, n: int):
    """``n`` task-world math prompts carrying their tasks."""
    from workbench import tasks

    write_jsonl([{"id": f"m{i}", "messages": user_prompt(t.prompt), "task": t.to_dict()}
                 for i, t in enumerate(tasks.generate("math", n, 4))], path)
    return path


def test_a_verifier_ref_builds_the_domains_check():
    from workbench import tasks

    task = tasks.generate("math", 1, 0)[0]
    verify = VerifierRef("experts.checks:domain_verifier", {"domain": "math"}).build()
    record = {"id": "x", "messages": [], "task": task.to_dict()}
    assert verify(record, task.solution) is True and verify(record, "Answer: -1") is False


def shards(out):
    """Every candidate row per shard, timings aside."""
    import pyarrow.parquet as pq

    return {p.name: [{k: v for k, v in r.items() if k != "gen_time_s"} for r in pq.read_table(p).to_pylist()]
            for p in sorted((out / "candidates").glob("*.parquet"))}


@pytest.mark.slow
def test_two_workers_with_a_domain_verifier_write_exactly_the_shards_of_one(tmp_path, tiny_model_dir, tiny_reward_dir):
    prompts = math_prompts(tmp_path / "prompts.jsonl", 8)
    ref = VerifierRef("experts.checks:domain_verifier", {"domain": "math", "n_random": 2})
    outs = {}
    for workers in (1, 2):
        cfg = SamplingConfig(backend="transformers", k=3, max_new_tokens=10, shard_size=2, batch_size=2,
                             workers=workers)
        outs[workers] = tmp_path / f"w{workers}" / "samples"
        rejection_sample(cfg, tiny_model_dir, tiny_reward_dir, prompts, outs[workers], seed=3, device="cpu",
                         verifier=ref)
    spec = json.loads((outs[2] / WORKER_SPEC).read_text())
    assert spec["verifier"] == {"target": "experts.checks:domain_verifier", "kwargs": {"domain": "math", "n_random": 2}}
    one, two = shards(outs[1]), shards(outs[2])
    assert len(one) == 4 and one == two
    assert all(r["verified"] is not None for rows in one.values() for r in rows)  # the domain check ran on every row
    assert (outs[1] / "sft.jsonl").read_text() == (outs[2] / "sft.jsonl").read_text()
