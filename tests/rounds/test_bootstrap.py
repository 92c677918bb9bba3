"""The bootstrap stage: a user's chat model with no demonstrations to add is the first policy as it is."""

from __future__ import annotations

import shutil

from rounds.full_config import CONFIG_DIR, load_config
from rounds.stages import bootstrap
from workbench.rundir import RunDir
from workbench.stage import run_stage


def test_no_demonstrations_and_no_user_rows_adopt_the_base_unchanged(tmp_path, tiny_model_dir):
    cfg = load_config(CONFIG_DIR / "smoke.yaml", ["bootstrap.num_examples=0", "tracking.backend=none",
                                                  f"run_dir={tmp_path / 'run'}", "eval.suites=[reward]",
                                                  f"eval.prompts={tmp_path / 'p.jsonl'}"])
    run = RunDir(cfg.run_path)
    shutil.copytree(tiny_model_dir, run.base)
    metrics = run_stage(bootstrap.STAGE, cfg, run)
    assert metrics["trained"] is False and metrics["user_examples"] == 0
    assert "accuracy_mean" not in metrics  # task_world is not among eval.suites
    assert (run.bootstrap / "model.safetensors").read_bytes() == (tiny_model_dir / "model.safetensors").read_bytes()
    assert (run.bootstrap / "curated.jsonl").read_text() == ""
