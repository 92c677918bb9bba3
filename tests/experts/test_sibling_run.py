"""The sibling run that redoes a round with experts: the stages before its rejection sampling, copied as done."""

import json
from pathlib import Path

import pytest

from experts.rounds import prepare_sibling_run, sibling_stages
from workbench.rundir import STAGES, RunDir, hash_path, read_manifest


def done_stage(run: RunDir, rel, files=("model.safetensors",)) -> None:
    """A finished stage folder with a few files and a hidden leftover."""
    with run.stage(rel, inputs={}) as st:
        for name in files:
            (st.path / name).write_text(f"{rel}/{name}")
        (st.path / ".partial-checkpoint").write_text("left over")


def source_run(root: Path, rounds: int = 1, domains=("code", "math")) -> RunDir:
    """A run folder whose stages are done through round ``rounds`` (fake contents, real manifests)."""
    run = RunDir(root)
    for rel in ("data", "tokenizer", "base", "bootstrap", *(f"experts/{d}" for d in domains)):
        done_stage(run, rel)
    for n in range(1, rounds + 1):
        for stage in STAGES:
            done_stage(run, run.round_stage(n, stage).relative_to(root))
        (run.round_stage(n, "samples") / "prompts.jsonl").write_text(json.dumps({"id": f"r{n}-0"}) + "\n")
    return run


def test_sibling_starts_round_1_at_rejection_sampling_with_the_same_prompts(tmp_path):
    src = source_run(tmp_path / "run")
    before = hash_path(src.root)
    copied = prepare_sibling_run(src.root, tmp_path / "run-experts", 1, ["code"])

    dst = RunDir(tmp_path / "run-experts")
    assert [str(p) for p in copied] == ["data", "tokenizer", "base", "bootstrap", "experts/code",
                                        "rounds/round_01/preferences", "rounds/round_01/reward"]
    assert [s for s in STAGES if not dst.is_done(dst.round_stage(1, s).relative_to(dst.root))] == \
        ["samples", "sft", "dpo", "policy"]
    assert not (dst.root / "experts" / "math").exists() and not (dst.root / "annotations.sqlite").exists()
    assert (dst.base / "model.safetensors").read_text() == "base/model.safetensors"
    assert not (dst.base / ".partial-checkpoint").exists()
    assert (dst.round_stage(1, "samples") / "prompts.jsonl").read_text() == \
        (src.round_stage(1, "samples") / "prompts.jsonl").read_text()
    assert not (dst.round_stage(1, "samples") / "manifest.json").exists()
    assert hash_path(src.root) == before
    assert prepare_sibling_run(src.root, dst.root, 1, ["code"]) == []


def test_a_later_round_copies_every_earlier_round_whole(tmp_path):
    src = source_run(tmp_path / "run", rounds=2)
    rels = [str(p) for p in sibling_stages(src, 2, ["math"])]
    assert rels[4] == "experts/math" and rels[-2:] == ["rounds/round_02/preferences", "rounds/round_02/reward"]
    assert all(f"rounds/round_01/{s}" in rels for s in STAGES) and "rounds/round_02/samples" not in rels
    prepare_sibling_run(src.root, tmp_path / "sib", 2, ["math"])
    assert RunDir(tmp_path / "sib").is_done("rounds/round_01/policy")


def test_an_unfinished_stage_in_the_sibling_is_copied_again(tmp_path):
    src = source_run(tmp_path / "run")
    dst = RunDir(tmp_path / "sib")
    with pytest.raises(RuntimeError), dst.stage("base") as st:
        (st.path / "half.bin").write_text("interrupted")
        raise RuntimeError("killed")
    assert read_manifest(dst.base)["status"] == "failed"
    assert Path("base") in prepare_sibling_run(src.root, dst.root, 1, ["code"])
    assert dst.is_done("base") and not (dst.base / "half.bin").exists()


def test_a_stage_missing_from_the_run_is_named(tmp_path):
    src = source_run(tmp_path / "run", domains=("code",))
    with pytest.raises(FileNotFoundError, match="experts/multilingual"):
        prepare_sibling_run(src.root, tmp_path / "sib", 1, ["code", "multilingual"])
