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
              config: Any = None, log: Callable[[str], None] | None = None) -> dict:
    """Run ``stage`` unless its manifest says done (or ``force``); write its manifest; return its metrics.

    ``config`` replaces the recorded section (tools that run a stage on a sub-config pass it).
    """
    out = stage.path(run, n)
    previous = read_manifest(out)
    if previous and previous.get("status") == "done" and not force:
        return previous["metrics"]
    if log is not None:
        log(f"round {n}: {stage.name}" if n is not None else stage.name)
    ctx = StageContext(cfg, run, out, n, force)
    section = config if config is not None else (getattr(cfg, stage.section) if stage.section else None)
    with run.stage(out.relative_to(run.root), config=section, inputs=stage.inputs(ctx)) as st:
        result = stage.run(ctx)
        st.metrics.update(result.metrics)
        for name, path in result.outputs.items():
            st.output(name, path)
        st.extra.update(result.extra)
    if getattr(cfg, "tracking", None) is not None and cfg.tracking.backend != "none":
        from workbench import tracking

        with tracking.using_run_dir(run.tracking):  # the run's own database, also from a stage command
            tracking.log_stage(cfg, stage.name, st.metrics, round=n)
    return st.metrics
