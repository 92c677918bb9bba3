"""Experiment tracking: trackio, MLflow or Weights & Biases (``tracking.backend``), stored in the run folder.

TRL and transformers log through ``report_to`` (:func:`trainer_kwargs`); the workbench's own per-stage
metrics go through :func:`log_stage`, tagged with the round and the stage; a custom training loop
logs through :func:`start_run`.

- trackio keeps its database under ``TRACKIO_DIR``; :func:`use_run_dir` points it at
  ``runs/<name>/tracking/`` before trackio is imported. Dashboard:
  ``TRACKIO_DIR=runs/<name>/tracking trackio show --project <name>``.
- MLflow (``mlflow-skinny``) logs to a SQLite store ``runs/<name>/tracking/mlflow.db`` with artifacts in
  ``runs/<name>/tracking/mlartifacts`` (or to ``tracking.mlflow_tracking_uri``), experiment = the project,
  set through ``MLFLOW_TRACKING_URI`` and ``MLFLOW_EXPERIMENT_NAME`` for transformers' MLflowCallback.
  UI: ``mlflow ui --backend-store-uri sqlite:///runs/<name>/tracking/mlflow.db`` (needs the full ``mlflow``).
- wandb is not installed: ``pip install wandb``; ``WANDB_MODE=offline`` logs without an account into
  ``runs/<name>/tracking/wandb`` (``wandb sync`` uploads it later).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from pathlib import Path
from typing import Any

from workbench.config_base import ConfigError

WANDB_HINT = ("backend: wandb needs the wandb package, which the workbench does not install: "
              "`.venv/bin/pip install wandb`, then `wandb login` (or set WANDB_MODE=offline to log into "
              "runs/<name>/tracking/wandb without an account); or choose trackio, mlflow or none")


def use_run_dir(tracking_dir: str | Path) -> None:
    """Make trackio store this run's database in ``tracking_dir`` (call before trackio is imported)."""
    os.environ["TRACKIO_DIR"] = str(Path(tracking_dir).resolve())
    os.environ.setdefault("TRACKIO_SHOW", "0")
    Path(tracking_dir).mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def using_run_dir(tracking_dir: str | Path):
    """:func:`use_run_dir` for a block; the caller's ``TRACKIO_DIR`` is restored (or unset) afterwards.

    Only a process that imports trackio inside the block logs there: trackio fixes its folder on import.
    """
    previous = os.environ.get("TRACKIO_DIR")
    use_run_dir(tracking_dir)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TRACKIO_DIR", None)
        else:
            os.environ["TRACKIO_DIR"] = previous


def project_name(cfg) -> str:
    """The tracker project of a run: tracking.project, else the run's name."""
    return cfg.tracking.project or cfg.name


def tracking_dir(cfg) -> Path:
    """``runs/<name>/tracking``: where every backend keeps this run's records."""
    return Path(cfg.run_path) / "tracking"


def require_wandb(section: str = "tracking.") -> None:
    """Refuse ``wandb`` when the package is missing, saying what to install."""
    if importlib.util.find_spec("wandb") is None:
        raise ConfigError(section + WANDB_HINT)


def mlflow_uri(cfg) -> str:
    """The MLflow tracking URI: tracking.mlflow_tracking_uri, else the run folder's SQLite store."""
    if cfg.tracking.mlflow_tracking_uri:
        return cfg.tracking.mlflow_tracking_uri
    return f"sqlite:///{(tracking_dir(cfg) / 'mlflow.db').resolve()}"


def mlflow_experiment(cfg) -> str:
    """Point MLflow (this process and its children) at the run's store; the experiment's id.

    The experiment is created with its artifacts in ``runs/<name>/tracking/mlartifacts`` (MLflow's
    default would be ``./mlruns`` of the working directory).
    """
    from mlflow.tracking import MlflowClient

    uri = mlflow_uri(cfg)
    if uri.startswith("sqlite:///"):
        tracking_dir(cfg).mkdir(parents=True, exist_ok=True)
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ["MLFLOW_EXPERIMENT_NAME"] = project_name(cfg)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(project_name(cfg))
    if experiment is not None:
        return experiment.experiment_id
    artifacts = None if cfg.tracking.mlflow_tracking_uri else (tracking_dir(cfg) / "mlartifacts").resolve().as_uri()
    return client.create_experiment(project_name(cfg), artifact_location=artifacts)


def _prepare_wandb(cfg) -> None:
    require_wandb()
    folder = tracking_dir(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["WANDB_DIR"] = str(folder.resolve())
    os.environ["WANDB_PROJECT"] = project_name(cfg)


def trainer_kwargs(cfg, run_name: str) -> dict[str, Any]:
    """`report_to`/`run_name` (and trackio's `project`) for a transformers or TRL config of one stage.

    For mlflow and wandb it also sets the environment their transformers callbacks read (inherited
    by training processes started afterwards).
    """
    backend = cfg.tracking.backend
    if backend == "none":
        return {"report_to": "none"}
    if backend == "trackio":
        return {"report_to": "trackio", "project": project_name(cfg), "run_name": run_name}
    if backend == "mlflow":
        mlflow_experiment(cfg)
    elif backend == "wandb":
        _prepare_wandb(cfg)
    else:
        raise ConfigError(f"tracking.backend: {backend!r} is not one of trackio, mlflow, wandb, none")
    return {"report_to": backend, "run_name": run_name}


class Run:
    """One tracker run: ``log(metrics, step)`` then ``finish()``; the same calls for every backend."""

    def __init__(self, cfg, name: str, group: str, config: dict | None = None, tags: dict | None = None):
        self.backend = cfg.tracking.backend
        if self.backend == "trackio":
            import trackio

            trackio.init(project=project_name(cfg), name=name, group=group, resume="allow",
                         config=config or {}, embed=False)
            self._trackio = trackio
        elif self.backend == "mlflow":
            from mlflow.tracking import MlflowClient

            experiment = mlflow_experiment(cfg)
            self._client = MlflowClient(mlflow_uri(cfg))
            tags = {"group": group, **{k: str(v) for k, v in (tags or {}).items()}}
            self._run = self._client.create_run(experiment, run_name=name, tags=tags)
            flat = {k: str(v)[:500] for k, v in (config or {}).items()}
            if flat:
                from mlflow.entities import Param

                self._client.log_batch(self._run.info.run_id, params=[Param(k, v) for k, v in flat.items()])
        elif self.backend == "wandb":
            _prepare_wandb(cfg)
            import wandb

            self._wandb = wandb.init(project=project_name(cfg), name=name, group=group, config=config or {},
                                     dir=str(tracking_dir(cfg).resolve()), reinit="create_new")
        elif self.backend != "none":
            raise ConfigError(f"tracking.backend: {self.backend!r} is not one of trackio, mlflow, wandb, none")

    def log(self, metrics: dict[str, Any], step: int | None = None) -> None:
        """Log the numeric entries of ``metrics`` (at ``step`` when given)."""
        numeric = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if not numeric:
            return
        if self.backend == "trackio":
            self._trackio.log(numeric, step=step) if step is not None else self._trackio.log(numeric)
        elif self.backend == "mlflow":
            import time

            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            self._client.log_batch(self._run.info.run_id,
                                   metrics=[Metric(k, float(v), now, step or 0) for k, v in numeric.items()])
        elif self.backend == "wandb":
            self._wandb.log(numeric, step=step)

    def finish(self) -> None:
        """Close the run."""
        if self.backend == "trackio":
            self._trackio.finish()
        elif self.backend == "mlflow":
            self._client.set_terminated(self._run.info.run_id)
        elif self.backend == "wandb":
            self._wandb.finish()


def start_run(cfg, name: str, group: str, config: dict | None = None) -> Run | None:
    """A tracker run for a custom training loop (None when tracking is off)."""
    return None if cfg.tracking.backend == "none" else Run(cfg, name, group, config)


def log_stage(cfg, stage: str, metrics: dict[str, Any], round: int | None = None) -> None:
    """Log a finished stage's metrics as one run named after the stage, tagged by round."""
    if cfg.tracking.backend == "none":
        return
    name = f"round_{round:02d}/{stage}" if round else stage
    run = Run(cfg, name, stage, config={"stage": stage, "round": round}, tags={"stage": stage, "round": round})
    run.log({f"{stage}/{k}": v for k, v in metrics.items()} | ({"round": round} if round else {}))
    run.finish()
