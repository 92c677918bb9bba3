"""Notebook helpers: open a run folder and get its manifests, metrics, samples and preferences.

    from workbench.notebook import open_run
    run = open_run("runs/smoke")
    run.status()              # pandas DataFrame: one row per stage
    run.metrics()             # long-form metrics of every stage, tagged by round
    run.samples(1)            # datasets.Dataset of round 1's rejection-sampling candidates
    run.preferences(1)        # pandas DataFrame of round 1's preferences
    run.evaluation()          # task-world accuracy per family and round
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from workbench.rundir import MANIFEST, STAGES, RunDir, read_manifest

TOP_STAGES = ("data", "tokenizer", "base", "bootstrap")


@dataclass
class StageInfo:
    """One stage of a run as its manifest tells it."""

    round: int | None
    stage: str
    path: Path
    manifest: dict | None

    @property
    def status(self) -> str:
        """done, running, failed, waiting or pending (no manifest yet)."""
        return (self.manifest or {}).get("status", "pending")


def stages(run: RunDir, num_rounds: int | None = None) -> list[StageInfo]:
    """Every stage of the run in pipeline order (rounds found on disk, or up to ``num_rounds``)."""
    found = sorted(p.name for p in (run.root / "rounds").glob("round_*")) if (run.root / "rounds").exists() else []
    last = max([int(name.split("_")[1]) for name in found] + [num_rounds or 0])
    infos = [StageInfo(None, s, run.root / s, read_manifest(run.root / s)) for s in TOP_STAGES]
    for n in range(1, last + 1):
        for s in STAGES:
            path = run.round_stage(n, s)
            infos.append(StageInfo(n, s, path, read_manifest(path)))
    return infos


class Run:
    """A run folder opened for inspection (read-only)."""

    def __init__(self, root: str | Path):
        self.dir = RunDir(root)
        if not self.dir.root.exists():
            raise FileNotFoundError(f"{self.dir.root}: no such run folder")

    def stages(self) -> list[StageInfo]:
        """Every stage with its manifest."""
        return stages(self.dir)

    def status(self):
        """A DataFrame: round, stage, status, wall time, and the stage's metrics."""
        import pandas as pd

        rows = []
        for info in self.stages():
            m = info.manifest or {}
            rows.append({"round": info.round, "stage": info.stage, "status": info.status,
                         "wall_time_s": m.get("wall_time_s"), **m.get("metrics", {})})
        return pd.DataFrame(rows)

    def metrics(self):
        """Long-form metrics: one row per (round, stage, metric, value)."""
        import pandas as pd

        rows = [{"round": i.round, "stage": i.stage, "metric": k, "value": v}
                for i in self.stages() if i.manifest
                for k, v in i.manifest.get("metrics", {}).items() if isinstance(v, (int, float))]
        return pd.DataFrame(rows, columns=["round", "stage", "metric", "value"])

    def samples(self, round: int):
        """Round ``round``'s rejection-sampling candidates (every sample, its score, chosen flag)."""
        from datasets import Dataset

        files = sorted(str(p) for p in (self.dir.round_stage(round, "samples") / "candidates").glob("*.parquet"))
        if not files:
            raise FileNotFoundError(f"{self.dir.round_stage(round, 'samples')}: no candidates yet")
        return Dataset.from_parquet(files)

    def preferences(self, round: int):
        """Round ``round``'s preferences in the workbench schema, as a DataFrame."""
        import pandas as pd

        from workbench.preferences import read_jsonl

        path = self.dir.round_stage(round, "preferences") / "preferences.jsonl"
        return pd.DataFrame([p.to_dict() for p in read_jsonl(path)])

    def evaluation(self):
        """Task-world accuracy per family: base, bootstrap, and every round's SFT model and policy."""
        import pandas as pd

        sources = [("base", 0, self.dir.bootstrap / "base_eval.json"), ("bootstrap", 0, self.dir.bootstrap / "eval.json")]
        for info in self.stages():
            if info.stage == "policy":
                sources += [(f"round_{info.round:02d}_sft", info.round, info.path / "sft_eval.json"),
                            (f"round_{info.round:02d}", info.round, info.path / "eval.json")]
        rows = []
        for model, n, path in sources:
            if path.exists():
                # an eval.json without the task_world suite (eval.suites) has no per_family
                for family, acc in json.loads(path.read_text()).get("per_family", {}).items():
                    rows.append({"model": model, "round": n, "family": family, "accuracy": acc})
        return pd.DataFrame(rows, columns=["model", "round", "family", "accuracy"])


def open_run(root: str | Path) -> Run:
    """Open ``runs/<name>`` for inspection."""
    return Run(root)


__all__ = ["Run", "StageInfo", "open_run", "stages", "MANIFEST"]
