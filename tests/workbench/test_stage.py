"""The stage contract: one wrapper writes every manifest; stages only write their folder and return metrics."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from workbench.rundir import RunDir, StageWaiting, read_manifest
from workbench.stage import Result, Stage, run_stage


@dataclass
class Section:
    rate: float = 0.5


@dataclass
class Cfg:
    demo: Section
    tracking: None = None


def recipe(calls: list, fail: BaseException | None = None) -> Stage:
    """A stage that writes one file, counts its calls and can fail."""
    def run(ctx):
        calls.append(ctx.round)
        (ctx.out / "out.txt").write_text("x")
        if fail is not None:
            raise fail
        return Result({"rows": 3}, {"text": ctx.out / "out.txt"}, {"data_files": "out.txt"})

    return Stage("sft", "demo", lambda ctx: {"input": ctx.run.root / "in.txt"}, run)


def test_the_wrapper_writes_the_manifest_and_skips_a_done_stage(tmp_path):
    run, calls = RunDir(tmp_path), []
    (tmp_path / "in.txt").write_text("data")
    metrics = run_stage(recipe(calls), Cfg(Section()), run, 2)
    manifest = read_manifest(run.round_stage(2, "sft"))
    assert metrics == {"rows": 3} and calls == [2]
    assert manifest["status"] == "done" and manifest["metrics"] == {"rows": 3}
    assert manifest["config"] == {"rate": 0.5} and manifest["outputs"] == {"text": "out.txt"}
    assert manifest["inputs"]["input"]["path"] == str(tmp_path / "in.txt") and manifest["inputs"]["input"]["hash"]
    assert manifest["data_files"] == "out.txt"
    assert run_stage(recipe(calls), Cfg(Section()), run, 2) == {"rows": 3} and calls == [2]  # done: not run again
    run_stage(recipe(calls), Cfg(Section()), run, 2, force=True)
    assert calls == [2, 2]


def test_a_failing_stage_leaves_a_failed_manifest_and_runs_again(tmp_path):
    run, calls = RunDir(tmp_path), []
    with pytest.raises(RuntimeError, match="boom"):
        run_stage(recipe(calls, RuntimeError("boom")), Cfg(Section()), run)
    manifest = json.loads((tmp_path / "sft" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "boom" in manifest["error"]
    run_stage(recipe(calls), Cfg(Section()), run)
    assert calls == [None, None] and read_manifest(tmp_path / "sft")["status"] == "done"


def test_a_waiting_stage_says_what_it_waits_for(tmp_path):
    run = RunDir(tmp_path)
    with pytest.raises(StageWaiting):
        run_stage(recipe([], StageWaiting("3/10 annotated")), Cfg(Section()), run, 1)
    manifest = read_manifest(run.round_stage(1, "sft"))
    assert manifest["status"] == "waiting" and manifest["waiting_for"] == "3/10 annotated"


def test_no_round_stage_writes_a_manifest_itself():
    """Every round stage is a recipe run by the wrapper: none of their files opens a stage itself."""
    from pathlib import Path

    import rounds.stages as stages

    for path in Path(stages.__file__).parent.glob("*.py"):
        text = path.read_text()
        assert ".stage(" not in text and "manifest.json" not in text, path.name


def test_only_the_wrapper_opens_a_manifest():
    """No module of any package opens a manifest itself (``run.stage(...)``, ``rundir.Stage``): tools and
    experts go through ``run_stage`` / ``run_in_folder`` too."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    allowed = {root / "workbench" / "stage.py", root / "workbench" / "rundir.py"}
    for package in ("workbench", "rounds", "reward", "sampling", "experts", "preference_ui"):
        for path in (root / package).rglob("*.py"):
            if path in allowed:
                continue
            text = path.read_text()
            assert ".stage(" not in text and not re.search(r"rundir(\.| import .*)\bStage\b", text), path
