"""Tracking: the trackio folder of a run, MLflow's store in the run folder, and wandb's missing package."""

import os

import pytest

from workbench.tracking import using_run_dir


def test_using_run_dir_restores_the_callers_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKIO_DIR", "/elsewhere")
    with using_run_dir(tmp_path / "tracking"):
        assert os.environ["TRACKIO_DIR"] == str((tmp_path / "tracking").resolve())
        assert (tmp_path / "tracking").is_dir()
    assert os.environ["TRACKIO_DIR"] == "/elsewhere"


def test_using_run_dir_unsets_a_folder_the_caller_did_not_have(tmp_path, monkeypatch):
    monkeypatch.delenv("TRACKIO_DIR", raising=False)
    with pytest.raises(RuntimeError), using_run_dir(tmp_path / "tracking"):
        raise RuntimeError("the block fails")
    assert "TRACKIO_DIR" not in os.environ


# -- MLflow: a local SQLite store in the run folder ---------------------------------------------------

MLFLOW_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID")


@pytest.fixture
def mlflow_cfg(tmp_path, monkeypatch):
    """The smoke config with tracking.backend mlflow and the run folder in tmp_path (MLflow's environment restored)."""
    from rounds.full_config import load_config

    for key in MLFLOW_ENV:  # set then deleted: monkeypatch restores (unsets) what MLflow and the tracker set
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # anything MLflow wrote to the working directory would show up here
    return load_config(_smoke(), [
        "tracking.backend=mlflow", "tracking.project=tracked", f"run_dir={tmp_path / 'run'}"])


def _smoke():
    from rounds.full_config import CONFIG_DIR

    return CONFIG_DIR / "smoke.yaml"


def _runs(cfg) -> dict:
    """Every MLflow run of the config's project, by run name, read with MLflow's own client."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{cfg.run_path.resolve() / 'tracking' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tracked")
    return {r.info.run_name: (r, client) for r in client.search_runs([experiment.experiment_id])}


def test_stage_metrics_go_to_the_run_folders_mlflow_store(mlflow_cfg, tmp_path):
    from workbench.tracking import log_stage

    log_stage(mlflow_cfg, "reward", {"heldout_accuracy": 0.75, "rows": 12, "note": "text", "ok": True}, round=2)
    runs = _runs(mlflow_cfg)
    run, _ = runs["round_02/reward"]
    assert run.data.metrics == {"reward/heldout_accuracy": 0.75, "reward/rows": 12.0, "round": 2.0}
    assert run.data.tags["stage"] == "reward" and run.data.tags["round"] == "2"
    assert run.info.status == "FINISHED"
    assert (tmp_path / "run" / "tracking" / "mlflow.db").is_file()
    assert not (tmp_path / "mlruns").exists()


@pytest.mark.slow
def test_a_tiny_sft_run_reports_its_losses_to_mlflow(mlflow_cfg, tiny_model_dir, tmp_path):
    from workbench.posttrain.config import SFTConfig
    from workbench.posttrain.sft import train_sft
    from workbench.tracking import trainer_kwargs

    rows = [{"messages": [{"role": "user", "content": "What is 12 + 30?"}, {"role": "assistant", "content": "Answer: 42"}]},
            {"messages": [{"role": "user", "content": "Translate into French: cat"},
                          {"role": "assistant", "content": "Answer: chat"}]}]
    kwargs = trainer_kwargs(mlflow_cfg, "round_01/sft")
    assert kwargs == {"report_to": "mlflow", "run_name": "round_01/sft"}
    cfg = SFTConfig(per_device_train_batch_size=1, num_train_epochs=1, max_length=128,
                    trl_args={"disable_tqdm": True, "logging_steps": 1})
    metrics = train_sft(cfg, rows, tiny_model_dir, tmp_path / "sft", seed=0, tracking=kwargs)
    run, client = _runs(mlflow_cfg)["round_01/sft"]
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == [1, 2]
    assert history[-1].value == pytest.approx(metrics["loss"], rel=1e-6)  # the trainer's own last logged loss
    assert run.data.params["learning_rate"] == str(cfg.learning_rate)
    assert run.info.status == "FINISHED"
    assert not (tmp_path / "mlruns").exists()


def test_wandb_without_the_package_is_refused_with_what_to_install():
    import importlib.util

    from rounds.full_config import load_config
    from workbench.config_base import ConfigError

    if importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here")
    with pytest.raises(ConfigError, match=r"smoke\.yaml: tracking\.backend: wandb needs the wandb package.*"
                                          r"pip install wandb.*WANDB_MODE=offline"):
        load_config(_smoke(), ["tracking.backend=wandb"])


def test_trackio_and_none_keep_their_trainer_arguments(tmp_path):
    from rounds.full_config import load_config
    from workbench.tracking import trainer_kwargs

    cfg = load_config(_smoke(), [f"run_dir={tmp_path}"])
    assert trainer_kwargs(cfg, "round_01/dpo") == {"report_to": "trackio", "project": "smoke", "run_name": "round_01/dpo"}
    off = load_config(_smoke(), ["tracking.backend=none", f"run_dir={tmp_path}"])
    assert trainer_kwargs(off, "x") == {"report_to": "none"}


def test_a_custom_loops_run_logs_steps_to_mlflow(mlflow_cfg):
    from workbench.tracking import start_run

    run = start_run(mlflow_cfg, "pretrain", "pretrain", {"lr": 0.001})
    for step, loss in [(10, 3.5), (20, 2.25)]:
        run.log({"pretrain/loss": loss, "note": "x"}, step=step)
    run.finish()
    record, client = _runs(mlflow_cfg)["pretrain"]
    assert [(m.step, m.value) for m in client.get_metric_history(record.info.run_id, "pretrain/loss")] == [
        (10, 3.5), (20, 2.25)]
    assert record.data.params == {"lr": "0.001"} and record.data.tags["group"] == "pretrain"


def test_stage_metrics_and_a_custom_run_go_to_the_run_folders_trackio_database(tmp_path):
    """In a fresh process (trackio fixes its folder on import); the database is read back with sqlite3."""
    import json
    import sqlite3
    import subprocess
    import sys

    script = (
        "from rounds.full_config import load_config\n"
        "from workbench.tracking import log_stage, start_run, use_run_dir\n"
        f"cfg = load_config({str(_smoke())!r}, ['tracking.project=tp', 'run_dir={tmp_path / 'run'}'])\n"
        "use_run_dir(cfg.run_path / 'tracking')\n"
        "log_stage(cfg, 'reward', {'acc': 0.75, 'rows': 3, 'note': 'x'}, round=1)\n"
        "run = start_run(cfg, 'pretrain', 'pretrain', {'lr': 0.1})\n"
        "run.log({'loss': 2.5}, step=3)\n"
        "run.finish()\n")
    env = {k: v for k, v in os.environ.items() if k != "TRACKIO_DIR"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=tmp_path, capture_output=True, timeout=300)
    with sqlite3.connect(tmp_path / "run" / "tracking" / "tp.db") as db:
        rows = db.execute("select run_name, step, metrics from metrics order by id").fetchall()
    assert [(name, step, json.loads(metrics)) for name, step, metrics in rows] == [
        ("round_01/reward", 0, {"reward/acc": 0.75, "reward/rows": 3, "round": 1}), ("pretrain", 3, {"loss": 2.5})]
