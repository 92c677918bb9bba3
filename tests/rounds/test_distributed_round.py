"""A smoke round whose training stages run on 2 processes (FSDP2 over gloo), killed inside a launch and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.rundir import read_manifest

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = float(os.environ.get("WORKBENCH_E2E_TIMEOUT", "1500"))


def command(run_dir: Path) -> list[str]:
    """One smoke round, a short pretraining, every training call under `accelerate launch` (FSDP2) on 2 processes."""
    return [sys.executable, "-m", "rounds.main", "rounds", "run", "--rounds", "1",
            "--config", str(ROOT / "configs" / "smoke.yaml"), "--run-dir", str(run_dir),
            "--set", "tracking.backend=none", "--set", "distributed.strategy=fsdp", "--set", "distributed.num_processes=2",
            "--set", "pretrain.max_steps=40", "--set", "pretrain.warmup_steps=4", "--set", "eval.n_per_family=4"]


def test_a_round_under_fsdp_on_two_processes_is_killed_in_a_launch_and_resumed(tmp_path):
    run_dir = tmp_path / "run"
    sft = run_dir / "rounds" / "round_01" / "sft"
    calls = lambda: list(sft.rglob(".*.launch/call.pkl")) if sft.is_dir() else []  # noqa: E731 - model or variants
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(command(run_dir), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        try:  # kill the whole process group (orchestrator, accelerate, torchrun, both trainers) inside the SFT launch
            deadline = time.time() + TIMEOUT
            while not calls() and first.poll() is None and time.time() < deadline:
                time.sleep(0.05)
            assert calls(), f"the SFT launch never started (exit {first.poll()}); see {tmp_path / 'first.log'}"
            time.sleep(3)  # the children are importing and training
        finally:
            try:
                os.killpg(first.pid, signal.SIGKILL)
            except ProcessLookupError:  # it had already exited (the assertion above says how)
                pass
            first.wait()
    assert read_manifest(sft)["status"] == "running"
    done = subprocess.run(command(run_dir), cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    manifests = {stage: read_manifest(run_dir / "rounds" / "round_01" / stage)
                 for stage in ("reward", "samples", "sft", "dpo", "policy")}
    assert all(m["status"] == "done" for m in manifests.values())
    assert read_manifest(run_dir / "base")["metrics"]["processes"] == 2
    assert read_manifest(run_dir / "bootstrap")["metrics"]["sft_num_processes"] == 2
    results = list(sft.rglob(".*.launch/result.json"))
    assert not calls() and results and all(json.loads(r.read_text())["result"]["num_processes"] == 2 for r in results)
    from transformers import AutoModelForCausalLM

    policy = AutoModelForCausalLM.from_pretrained(run_dir / "rounds" / "round_01" / "policy")  # a plain HF checkpoint
    assert all(not p.is_meta and p.isfinite().all() for p in policy.parameters())
