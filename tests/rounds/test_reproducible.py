"""Reproducible rounds: two runs of a reduced smoke config write the same round-1 rejection samples.

Each run (a subprocess: data, tokenizer, pretraining, bootstrap, then round 1's preferences, reward
model and rejection sampling with the vLLM backend) starts from nothing in its own folder; the two use
different shard sizes, so the samples must not depend on the shard layout either. The verifier is off:
the 60-step base passes almost no task, and sft.jsonl must not be empty. Both runs took 90 s here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["tracking.backend=none", "rounds.num_rounds=1", "data.num_documents=150", "pretrain.max_steps=60",
         "pretrain.anneal_steps=4", "pretrain.checkpoint_interval=1000", "bootstrap.num_examples=32",
         "rounds.prompts_per_round=8", "rounds.rs_prompts_per_round=12", "reward.num_train_epochs=1",
         "sampling.k=4", "sampling.max_new_tokens=48",
         "sampling.selection=reward", "eval.n_per_family=4", "experts.enabled=[]"]
SCRIPT = """
import json, sys
from rounds.full_config import load_config
from rounds.orchestrator import Orchestrator
from rounds.stages import ROUND_STAGES
from rounds.stages.common import log
from workbench.stage import run_stage

if __name__ == "__main__":
    cfg = load_config(sys.argv[1], json.loads(sys.argv[2]))
    orchestrator = Orchestrator(cfg)
    orchestrator.prepare()
    for stage in ROUND_STAGES:
        run_stage(stage, cfg, orchestrator.run, 1, log=log)
        if stage.name == "samples":
            break
"""


def run_to_samples(run_dir: Path, *overrides: str) -> Path:
    """Run the reduced smoke config up to round 1's rejection sampling; its samples folder."""
    script = run_dir.parent / f"{run_dir.name}.py"
    script.write_text(SCRIPT)
    settings = [*SMALL, *overrides, f"run_dir={json.dumps(str(run_dir))}"]
    with open(run_dir.parent / f"{run_dir.name}.log", "w") as log:
        code = subprocess.call([sys.executable, str(script), str(ROOT / "configs" / "smoke.yaml"), json.dumps(settings)],
                               cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=log, stderr=subprocess.STDOUT)
    assert code == 0, (run_dir.parent / f"{run_dir.name}.log").read_text()[-3000:]
    return run_dir / "rounds" / "round_01" / "samples"


def test_two_smoke_runs_write_identical_round_1_samples(tmp_path):
    import pyarrow.parquet as pq

    a = run_to_samples(tmp_path / "a", "sampling.shard_size=4")
    b = run_to_samples(tmp_path / "b", "sampling.shard_size=12")
    sft = (a / "sft.jsonl").read_bytes()
    assert sft and sft == (b / "sft.jsonl").read_bytes()

    def candidates(samples: Path) -> list[tuple]:
        rows = [r for p in sorted((samples / "candidates").glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
        return sorted((r["prompt_id"], r["sample_index"], r["text"], r["score"], r["verified"], r["chosen"])
                      for r in rows)

    assert candidates(a) == candidates(b)
    assert len({r[2] for r in candidates(a)}) > len(candidates(a)) // 4, "the samples should differ"
