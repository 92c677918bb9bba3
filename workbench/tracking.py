"""Experiment tracking with trackio: offline, no account, one SQLite database per run folder.

trackio keeps its database under ``TRACKIO_DIR``; :func:`use_run_dir` points it at
``runs/<name>/tracking/`` before trackio is imported, so a run folder carries its own metrics.
TRL and transformers log through ``report_to="trackio"`` (:func:`trainer_kwargs`); the workbench's
own per-stage metrics go through :func:`log_stage`, tagged with the round and the stage.
Dashboard: ``TRACKIO_DIR=runs/<name>/tracking trackio show --project <name>``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any


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


def trainer_kwargs(cfg, run_name: str) -> dict[str, Any]:
    """`report_to`/`project`/`run_name` for a transformers or TRL config of one stage."""
    if cfg.tracking.backend == "none":
        return {"report_to": "none"}
    return {"report_to": "trackio", "project": project_name(cfg), "run_name": run_name}


def log_stage(cfg, stage: str, metrics: dict[str, Any], round: int | None = None) -> None:
    """Log a finished stage's metrics as one trackio run named after the stage, tagged by round."""
    if cfg.tracking.backend == "none":
        return
    import trackio

    numeric = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    name = f"round_{round:02d}/{stage}" if round else stage
    trackio.init(project=project_name(cfg), name=name, group=stage, resume="allow",
                 config={"stage": stage, "round": round}, embed=False)
    trackio.log({f"{stage}/{k}": v for k, v in numeric.items()} | ({"round": round} if round else {}))
    trackio.finish()
