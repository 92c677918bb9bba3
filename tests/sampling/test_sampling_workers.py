"""Several sampling workers on one stage folder: shards claimed atomically, none twice, none lost."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sampling.claims import Claims
from sampling.config import SamplingConfig
from sampling.rejection import generate_responses, rejection_sample, run_worker, write_worker_spec
from sampling_helpers import write_prompts

ROOT = Path(__file__).resolve().parents[2]


def cfg(**kwargs) -> SamplingConfig:
    """Transformers backend (seeded per prompt, so any worker samples a shard alike)."""
    return SamplingConfig(**{"backend": "transformers", "k": 4, "max_new_tokens": 12, "shard_size": 2,
                             "batch_size": 2, **kwargs})


def shard_contents(out: Path) -> dict[str, list[tuple]]:
    """Each shard's candidates without the timings: (prompt, sample, text, score, chosen)."""
    import pyarrow.parquet as pq

    return {p.name: [(r["prompt_id"], r["sample_index"], r["text"], round(r["score"], 5), r["chosen"])
                     for r in pq.read_table(p).to_pylist()]
            for p in sorted((out / "candidates").glob("*.parquet"))}


def test_of_two_workers_one_gets_a_claim_and_a_dead_workers_claim_is_taken_over(tmp_path):
    a, b = Claims(tmp_path, "a", lease_seconds=3), Claims(tmp_path, "b", lease_seconds=3)
    assert a.try_claim("generate-shard_00000") and not b.try_claim("generate-shard_00000")
    assert a.try_claim("generate-shard_00000")  # a holds it already
    assert b.holder("generate-shard_00000")["worker"] == "a"
    time.sleep(3.1)  # a stopped renewing: its lease ran out
    assert b.try_claim("generate-shard_00000") and not a.renew("generate-shard_00000")
    assert len(list(tmp_path.glob("generate-shard_00000.stale-*"))) == 1
    b.release("generate-shard_00000")
    assert b.holder("generate-shard_00000") is None


def test_a_claim_of_a_process_of_this_host_that_died_is_taken_over_at_once(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "k.json").write_text(json.dumps({"worker": "crashed", "host": socket.gethostname(), "pid": dead.pid,
                                                 "expires": time.time() + 3600}))
    alive = {"worker": "elsewhere", "host": socket.gethostname(), "pid": os.getpid(), "expires": time.time() + 3600}
    (tmp_path / "j.json").write_text(json.dumps(alive))
    claims = Claims(tmp_path, "b", lease_seconds=60)
    assert claims.try_claim("k") and claims.holder("k")["worker"] == "b"  # no wait for the lease
    assert not claims.try_claim("j")  # a live process's claim is left alone


def test_an_unreadable_claim_expires_a_lease_after_it_was_written(tmp_path):
    claims = Claims(tmp_path, "b", lease_seconds=3)
    (tmp_path / "k.json").write_bytes(b"")  # e.g. a disk that filled up mid-write
    assert not claims.try_claim("k")
    os.utime(tmp_path / "k.json", (time.time() - 10, time.time() - 10))
    assert claims.try_claim("k") and claims.holder("k")["worker"] == "b"
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_held_claim_is_renewed_while_its_work_runs(tmp_path):
    a, b = Claims(tmp_path, "a", lease_seconds=3), Claims(tmp_path, "b", lease_seconds=3)
    assert a.try_claim("k")
    with a.holding("k"):
        time.sleep(4.5)  # longer than the lease: only the heartbeat keeps it
        assert not b.try_claim("k")
    assert a.holder("k") is None  # released after the work


def test_many_threads_claim_each_key_exactly_once(tmp_path):
    won: dict[str, list[str]] = {}
    lock = threading.Lock()

    def worker(name: str) -> None:
        claims = Claims(tmp_path, name, lease_seconds=60)
        for k in range(40):
            if claims.try_claim(f"key-{k}"):
                with lock:
                    won.setdefault(f"key-{k}", []).append(name)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won) == sorted(f"key-{k}" for k in range(40)) and all(len(v) == 1 for v in won.values())


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_model_dir, tiny_reward_dir):
    """One worker's run of 8 prompts (4 shards)."""
    root = tmp_path_factory.mktemp("one_worker")
    prompts = write_prompts(root / "prompts.jsonl", 8)
    out = root / "samples"
    rejection_sample(cfg(), tiny_model_dir, tiny_reward_dir, prompts, out, seed=3, device="cpu")
    return prompts, shard_contents(out), (out / "sft.jsonl").read_text()


@pytest.mark.slow
def test_two_workers_produce_exactly_the_shards_of_one(tmp_path, tiny_model_dir, tiny_reward_dir, reference):
    prompts, expected, sft = reference
    out = tmp_path / "samples"
    result = rejection_sample(cfg(workers=2), tiny_model_dir, tiny_reward_dir, prompts, out, seed=3, device="cpu")
    assert shard_contents(out) == expected and (out / "sft.jsonl").read_text() == sft
    assert result.metrics["num_prompts"] == 8 and result.metrics["claims_taken_over"] == 0
    assert not (out / "claims").exists() and not (out / "generations").exists()


@pytest.mark.slow
def test_a_killed_workers_shard_is_finished_by_another(tmp_path, tiny_model_dir, tiny_reward_dir, reference):
    prompts, expected, sft = reference
    out = tmp_path / "samples"
    out.mkdir()
    settings = cfg(lease_seconds=3)
    write_worker_spec(settings, tiny_model_dir, tiny_reward_dir, prompts, out, 3, "cpu")
    helper = subprocess.Popen([sys.executable, "-m", "sampling.worker", str(out)], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:  # kill the helper as soon as it holds a claim
        deadline = time.time() + 300
        while not list((out / "claims").glob("*.json")) and time.time() < deadline and helper.poll() is None:
            time.sleep(0.01)
        held = [p.stem for p in (out / "claims").glob("*.json")]
    finally:
        os.killpg(helper.pid, signal.SIGKILL)
        helper.wait()
    assert held, "the helper worker never claimed a shard"
    result = rejection_sample(settings, tiny_model_dir, tiny_reward_dir, prompts, out, seed=3, device="cpu")
    assert shard_contents(out) == expected and (out / "sft.jsonl").read_text() == sft
    assert result.metrics["claims_taken_over"] >= 1  # the dead helper's claim, after its lease
    records = [json.loads(p.read_text()) for p in sorted((out / "shards").glob("*.json"))]
    assert len(records) == 4 and all(r["worker"] for r in records)


@pytest.mark.slow
def test_preference_responses_are_generated_by_two_workers_as_by_one(tmp_path, tiny_model_dir):
    """generate_responses (a round's preference answers): a helper process shares the shards, same rows."""
    prompts = write_prompts(tmp_path / "prompts.jsonl", 6)
    settings = cfg(k=1, temperature=0.8)
    one = generate_responses(settings, tiny_model_dir, prompts, tmp_path / "one", seed=5, device="cpu")
    two = generate_responses(settings.__class__(**{**settings.__dict__, "workers": 2}), tiny_model_dir, prompts,
                             tmp_path / "two", seed=5, device="cpu")
    strip = lambda rows: [(r["prompt_id"], r["sample_index"], r["text"], r["finish_reason"]) for r in rows]  # noqa: E731
    assert strip(two) == strip(one) and [r[0] for r in strip(one)] == [f"p{i:03d}" for i in range(6)]
    assert json.loads((tmp_path / "two" / "worker.json").read_text())["reward"] is None  # a generation-only spec
    assert not (tmp_path / "two" / "claims").exists() and len(list((tmp_path / "two" / "generations").glob("*"))) == 3


def test_a_worker_without_a_stage_to_join_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="no worker spec; start the stage first"):
        run_worker(tmp_path)
