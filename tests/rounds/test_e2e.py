"""End to end: configs/smoke.yaml through `workbench demo`, killed mid-stage and resumed, then inspected.

One session-scoped run serves every test here: the first attempt is SIGKILLed while round 1's
rejection sampling runs (its vLLM engine alone takes ~25 s to start), the second attempt (the same
command) finishes the pipeline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.rundir import read_manifest

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
KILL_AT = ("rounds", "round_01", "samples")


def demo_command(run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "workbench", "demo", "--config", str(ROOT / "configs" / "smoke.yaml"),
            "--run-dir", str(run_dir), "--set", "tracking.backend=none"]


def wait_for_running(path: Path, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        manifest = read_manifest(path) if (path / "manifest.json").exists() else None
        if manifest and manifest["status"] == "running":
            return
        if proc.poll() is not None:
            raise AssertionError(f"demo exited with {proc.returncode} before reaching {path}")
        time.sleep(0.5)
    raise AssertionError(f"{path} never started within {timeout} s")


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """The smoke run: killed once mid-stage, then resumed to the end. Yields (run_dir, before_kill)."""
    run_dir = tmp_path_factory.mktemp("smoke") / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = open(run_dir.parent / "first.log", "w")
    first = subprocess.Popen(demo_command(run_dir), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
    try:
        wait_for_running(run_dir.joinpath(*KILL_AT), first, timeout=900)
        time.sleep(4)  # the sampling stage is still starting its engine or generating
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    before = {p.parent.relative_to(run_dir).as_posix(): json.loads(p.read_text())
              for p in run_dir.rglob("manifest.json")}
    second = subprocess.run(demo_command(run_dir), cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    (run_dir.parent / "second.log").write_text(second.stdout + second.stderr)
    assert second.returncode == 0, second.stderr[-4000:]
    yield run_dir, before


def test_kill_then_rerun_never_repeats_a_done_stage(smoke_run):
    run_dir, before = smoke_run
    killed = "/".join(KILL_AT)
    assert before[killed]["status"] == "running"
    for stage, manifest in before.items():
        after = read_manifest(run_dir / stage)
        assert after["status"] == "done", stage
        if manifest["status"] == "done":
            assert after["started_at"] == manifest["started_at"], f"{stage} ran again"
    assert read_manifest(run_dir / killed)["started_at"] != before[killed]["started_at"]


def test_no_partial_outputs_are_left(smoke_run):
    run_dir, _ = smoke_run
    leftovers = [p for p in run_dir.rglob("*") if p.name.endswith((".tmp", ".partial")) or ".old-" in p.name]
    assert leftovers == []


def test_every_stage_of_every_round_is_done_with_hf_models(smoke_run):
    from transformers import AutoConfig

    from rounds.full_config import load_config

    run_dir, _ = smoke_run
    cfg = load_config(ROOT / "configs" / "smoke.yaml")
    for top in ("data", "tokenizer", "base", "bootstrap"):
        assert read_manifest(run_dir / top)["status"] == "done", top
    for n in range(1, cfg.rounds.num_rounds + 1):
        for stage in ("preferences", "reward", "samples", "sft", "dpo", "policy"):
            manifest = read_manifest(run_dir / "rounds" / f"round_{n:02d}" / stage)
            assert manifest["status"] == "done" and manifest["metrics"], (n, stage)
        policy = run_dir / "rounds" / f"round_{n:02d}" / "policy"
        assert AutoConfig.from_pretrained(policy).model_type == "llama"
    sft = read_manifest(run_dir / "rounds" / "round_01" / "sft")
    assert sft["metrics"]["averaged_variants"] == cfg.rounds.variants["sft"] > 1


def test_report_has_every_round_and_plots(smoke_run):
    run_dir, _ = smoke_run
    page = (run_dir / "report" / "index.html").read_text()
    assert "Run report" in page and page.count("data:image/png;base64,") >= 3
    markdown = (run_dir / "report" / "index.md").read_text()
    assert "| 1 |" in markdown and "| 2 |" in markdown


def test_rounds_status_prints_a_table(smoke_run):
    run_dir, _ = smoke_run
    out = subprocess.run([sys.executable, "-m", "workbench", "rounds", "status", "--config",
                          str(ROOT / "configs" / "smoke.yaml"), "--run-dir", str(run_dir)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:3] == ["round", "stage", "status"]
    assert any(line.split()[:3] == ["2", "policy", "done"] for line in lines)


def test_notebook_runs_against_the_smoke_run(smoke_run):
    import nbformat
    from nbclient import NotebookClient

    run_dir, _ = smoke_run
    notebook = nbformat.read(ROOT / "notebooks" / "inspect_run.ipynb", as_version=4)
    os.environ["WORKBENCH_RUN"] = str(run_dir)
    try:
        NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    finally:
        os.environ.pop("WORKBENCH_RUN")
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("candidates for" in o.get("text", "") for o in outputs)
