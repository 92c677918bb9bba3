"""benchmarks/ablation.py: the summary's gains and targets, and the copies every variant starts from."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import ablation  # noqa: E402


def runs(*means):
    """One eval per seed, two families, each at the given mean."""
    return [{"per_family": {"math": m, "general": m}, "mean": m} for m in means]


def test_gains_are_over_random_and_spread_is_over_seeds():
    summary = ablation.summarize({"random": runs(0.2, 0.4), "reward": runs(0.35, 0.45), "verifier": runs(0.5, 0.6)})
    table = summary["variants"]
    assert table["reward"]["mean"] == pytest.approx({"mean": 0.4, "min": 0.35, "max": 0.45})
    assert table["reward"]["gain_over_random"] == pytest.approx(0.1)
    assert table["verifier"]["gain_over_random"] == pytest.approx(0.25)
    # reward gains 0.10 over random, less than half the verifier's 0.25
    assert summary["targets"] == {"reward_beats_random": True, "reward_gain_at_least_half_the_verifiers": False}


def test_half_target_is_undefined_when_the_verifier_gains_nothing():
    summary = ablation.summarize({"random": runs(0.3), "reward": runs(0.2), "verifier": runs(0.3)})
    assert summary["targets"] == {"reward_beats_random": False, "reward_gain_at_least_half_the_verifiers": None}


def done_stage(root: Path, rel: str, status: str = "done") -> None:
    (root / rel).mkdir(parents=True)
    (root / rel / "manifest.json").write_text(json.dumps({"status": status}))
    (root / rel / "weights.bin").write_bytes(rel.encode())


def test_copy_stages_copies_done_stages_and_refuses_unfinished_ones(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    done_stage(src, "base")
    done_stage(src, "rounds/round_01/reward")
    done_stage(src, "bootstrap", status="running")
    ablation.copy_stages(src, dst, ["base", "rounds/round_01/reward"])
    assert (dst / "rounds/round_01/reward/weights.bin").read_bytes() == b"rounds/round_01/reward"
    (dst / "base" / "weights.bin").write_bytes(b"kept")
    ablation.copy_stages(src, dst, ["base"])  # done in the target: left as it is
    assert (dst / "base" / "weights.bin").read_bytes() == b"kept"
    with pytest.raises(FileNotFoundError, match="bootstrap: not done"):
        ablation.copy_stages(src, dst, ["bootstrap"])
