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


def test_the_bootstrap_trains_with_its_own_learning_rate_and_epochs(tmp_path, tiny_model_dir):
    """bootstrap.learning_rate / num_train_epochs override sft's for the bootstrap only (the trainer's log says so)."""
    cfg = load_config(CONFIG_DIR / "smoke.yaml", [
        "bootstrap.num_examples=8", "bootstrap.learning_rate=2e-4", "bootstrap.num_train_epochs=3",
        "sft.learning_rate=5e-3", "sft.num_train_epochs=1", "sft.per_device_train_batch_size=8",
        "sft.trl_args={lr_scheduler_type: constant, warmup_steps: 0, logging_steps: 1}",
        "tracking.backend=none", f"run_dir={tmp_path / 'run'}", "eval.suites=[reward]",
        f"eval.prompts={tmp_path / 'p.jsonl'}"])
    assert (cfg.sft.learning_rate, cfg.sft.num_train_epochs) == (5e-3, 1)  # the rounds keep theirs
    run = RunDir(cfg.run_path)
    shutil.copytree(tiny_model_dir, run.base)
    metrics = run_stage(bootstrap.STAGE, cfg, run)
    assert metrics["trained"] is True
    assert metrics["sft_epoch"] == 3 and metrics["sft_learning_rate"] == 2e-4


def test_unset_bootstrap_settings_are_the_rounds_sft_settings():
    cfg = load_config(CONFIG_DIR / "smoke.yaml", ["sft.learning_rate=7e-4"])
    assert cfg.bootstrap.sft_config(cfg.sft) == cfg.sft
    demo = load_config(CONFIG_DIR / "demo.yaml", [])
    boot = demo.bootstrap.sft_config(demo.sft)
    assert (boot.learning_rate, boot.num_train_epochs) == (1e-3, 4.0)
    assert (demo.sft.learning_rate, demo.sft.num_train_epochs) == (3e-4, 2.0)
