"""The one shape of a stage, and the one wrapper that runs it and writes its manifest.

A stage is a recipe (:class:`Stage`): the config section it owns, the inputs it reads from the run
folder, and a ``run`` function that writes into its one output folder and returns a :class:`Result`
(metrics and named outputs). Stages never write manifests: :func:`run_stage` does, for every stage
(``running`` before, ``done`` with inputs, outputs, metrics and wall time after, ``failed`` or
``waiting`` on the way out), skips a stage whose manifest says ``done``, and logs its metrics to the
tracker. The orchestrator (``rounds``) only sequences stages; the stages of a run live one file per
stage in ``rounds/stages/``, and tools that work on plain folders (``workbench sample --out DIR``)
use the same wrapper.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from workbench.rundir import RunDir, read_manifest
from workbench.rundir import Stage as ManifestStage


@dataclass
class Result:
    """What a stage's ``run`` returns: measurements, and the files or folders it wrote."""

    metrics: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Path] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # more manifest fields (e.g. data_files)


@dataclass
class StageContext:
    """What the wrapper hands a stage: the run's config and folder, its output folder, its round."""

    cfg: Any
    run: RunDir
    out: Path
    round: int | None = None
    force: bool = False  # asked to redo the stage: drop its resume state (checkpoints, partial outputs)


@dataclass(frozen=True)
class Stage:
    """A recipe: ``inputs(ctx)`` names what it reads, ``run(ctx)`` writes ``ctx.out`` and returns a Result."""

    name: str
    section: str | None  # the config section it owns (recorded in the manifest)
    inputs: Callable[[StageContext], dict[str, Path]]
    run: Callable[[StageContext], Result]
    folder: Callable[[RunDir, int | None], Path] | None = None  # default: runs/<name>/<name>/ or the round's

    def path(self, run: RunDir, n: int | None) -> Path:
        """The stage's one output folder."""
        if self.folder is not None:
            return self.folder(run, n)
        return run.round_stage(n, self.name) if n is not None else run.root / self.name


def run_stage(stage: Stage, cfg, run: RunDir, n: int | None = None, *, force: bool = False,
              config: Any = None, log: Callable[[str], None] | None = None,
              tracking_run: RunDir | None = None) -> dict:
    """Run ``stage`` unless its manifest says done (or ``force``); write its manifest; return its metrics.

    ``config`` replaces the recorded section (tools that run a stage on a sub-config pass it);
    ``tracking_run`` is the run whose tracker gets the metrics (default ``run``). In a multi-process
    launch (``RANK`` > 0) the stage runs but only the main process writes the manifest and logs.
    """
    out = stage.path(run, n)
    previous = read_manifest(out)
    if previous and previous.get("status") == "done" and not force:
        return previous["metrics"]
    if log is not None:
        log(f"round {n}: {stage.name}" if n is not None else stage.name)
    ctx = StageContext(cfg, run, out, n, force)
    if not is_main_process():
        return stage.run(ctx).metrics
    section = config if config is not None else (getattr(cfg, stage.section) if stage.section else None)
    relpath = out.relative_to(run.root) if out.is_relative_to(run.root) else None
    with (run.stage(relpath, config=section, inputs=stage.inputs(ctx)) if relpath is not None
          else ManifestStage(out, stage.name, config=section, inputs=stage.inputs(ctx))) as st:
        result = stage.run(ctx)
        st.metrics.update(result.metrics)
        for name, path in result.outputs.items():
            st.output(name, path)
        st.extra.update(result.extra)
    if getattr(cfg, "tracking", None) is not None and cfg.tracking.backend != "none":
        from workbench import tracking

        # the run's own database, also from a stage command
        with tracking.using_run_dir((tracking_run or run).tracking):
            tracking.log_stage(cfg, stage.name, st.metrics, round=n)
    return st.metrics


def run_in_folder(name: str, out: str | Path, work: Callable[[], Result | dict], *, inputs: dict,
                  config: Any = None, cfg: Any = None, force: bool = False) -> dict:
    """A tool's stage on a plain folder (``workbench sft --out DIR``), through :func:`run_stage`.

    ``work()`` returns a :class:`Result` or a metrics dict; the manifest, the skip when done and
    the tracking (into ``cfg``'s run folder, when ``cfg`` has one) are the same as for a run's stage.
    """
    out = Path(out).absolute()
    stage = Stage(name, None, lambda ctx: {k: Path(v) for k, v in inputs.items() if v},
                  lambda ctx: _as_result(work()), folder=lambda run, n: out)
    tracking_run = RunDir(cfg.run_path) if getattr(cfg, "run_path", None) is not None else None
    return run_stage(stage, cfg, RunDir(out.parent), force=force, config=config, tracking_run=tracking_run)


def _as_result(value: Result | dict) -> Result:
    return value if isinstance(value, Result) else Result(dict(value))


def is_main_process() -> bool:
    """False in the non-main processes of a torchrun / `accelerate launch` (they write no manifest)."""
    import os

    return int(os.environ.get("RANK", "0")) == 0
