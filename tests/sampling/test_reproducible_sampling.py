"""Reproducible rejection sampling: the same seed writes the same candidates and sft.jsonl, whatever the shards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sampling.config import SamplingConfig
from sampling.rejection import run_rejection_sampling
from sampling_helpers import write_prompts

SYSTEMS = ["Answer in one line.", "Show your steps."]


def candidates(out: Path) -> list[tuple]:
    """Every candidate without its timing and shard number, in (prompt, sample) order."""
    import pyarrow.parquet as pq

    rows = [r for p in sorted((out / "candidates").glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
    return sorted((r["prompt_id"], r["sample_index"], r["system_prompt"], r["text"], r["num_tokens"],
                   r["finish_reason"], r["score"], r["verified"], r["chosen"]) for r in rows)


def run(root: Path, name: str, policy, reward, prompts, *, seed: int = 0, engine=None, **settings) -> Path:
    out = root / name / "samples"
    cfg = SamplingConfig(**{"k": 4, "max_new_tokens": 12, "system_prompts": SYSTEMS, **settings})
    run_rejection_sampling(cfg, policy, reward, prompts, out, seed=seed, backend=engine)
    return out


def test_two_transformers_runs_write_identical_samples_whatever_the_shards(tmp_path, stopping_policy_dir,
                                                                         tiny_reward_dir):
    prompts = write_prompts(tmp_path / "prompts.jsonl", 9)
    common = dict(backend="transformers", reward_batch_size=8)
    a = run(tmp_path, "a", stopping_policy_dir, tiny_reward_dir, prompts, shard_size=3, batch_size=3, **common)
    b = run(tmp_path, "b", stopping_policy_dir, tiny_reward_dir, prompts, shard_size=5, batch_size=2, **common)
    c = run(tmp_path, "c", stopping_policy_dir, tiny_reward_dir, prompts, seed=1, shard_size=3, batch_size=3, **common)
    assert (a / "sft.jsonl").read_bytes() == (b / "sft.jsonl").read_bytes()
    assert candidates(a) == candidates(b)
    assert [json.loads(line)["prompt_id"] for line in (a / "sft.jsonl").read_text().splitlines()], "nothing selected"
    assert [r[3] for r in candidates(c)] != [r[3] for r in candidates(a)]  # another seed samples otherwise


@pytest.fixture(scope="module")
def seeded_engine(stopping_policy_dir):
    """A vLLM engine started as the sampling stage starts one (on the CPU: no chunked prefill)."""
    from sampling.backends import import_vllm, start_engine

    llm = start_engine(import_vllm(), stopping_policy_dir, device="cpu", dtype="float32", tensor_parallel_size=1,
                       gpu_memory_utilization=0.3, max_model_len=512, kv_cache_space_gib=1.0,
                       enforce_eager=True, seed=0)
    yield llm
    llm.llm_engine.engine_core.shutdown()


@pytest.mark.slow
def test_vllm_honours_request_seeds_in_any_batch(stopping_policy_dir, seeded_engine):
    from sampling.backends import VLLMBackend

    backend = VLLMBackend(stopping_policy_dir, llm=seeded_engine)
    prompts = [[{"role": "user", "content": f"Count to {i}, then say done."}] for i in range(300)]
    kwargs = dict(n=4, temperature=1.0, top_p=1.0, max_new_tokens=24, seed=5)
    tokens = lambda out: [[g.token_ids for g in gens] for gens in out]  # noqa: E731
    alone = tokens(backend.generate(prompts[7:8], **kwargs))
    crowd = tokens(backend.generate(prompts[::-1], **kwargs))  # 300 prompts: more than one step's token budget
    assert crowd[300 - 1 - 7] == alone[0]
    assert len({tuple(t) for t in alone[0]}) == 4
    assert tokens(backend.generate(prompts[7:8], **{**kwargs, "seed": 6})) != alone


@pytest.mark.slow
def test_two_vllm_runs_write_identical_samples_whatever_the_shards(tmp_path, stopping_policy_dir, tiny_reward_dir,
                                                                   seeded_engine):
    from sampling.backends import VLLMBackend

    backend = VLLMBackend(stopping_policy_dir, llm=seeded_engine)
    prompts = write_prompts(tmp_path / "prompts.jsonl", 9)
    a = run(tmp_path, "a", stopping_policy_dir, tiny_reward_dir, prompts, engine=backend, shard_size=3,
            **{"backend": "vllm"})
    b = run(tmp_path, "b", stopping_policy_dir, tiny_reward_dir, prompts, engine=backend, shard_size=9,
            **{"backend": "vllm"})
    assert (a / "sft.jsonl").read_bytes() == (b / "sft.jsonl").read_bytes()
    assert candidates(a) == candidates(b)
    assert (a / "sft.jsonl").read_text()
