"""Resumable checkpoints and annealing snapshots in ``base/checkpoints/``, all written atomically.

A checkpoint ``step-NNNNNN/state.pt`` holds everything the loop needs to continue after N finished
steps as if it had never stopped: model, optimizer, RNG states, data cursors, metrics so far and
the settings that must not change. (The learning rate, the ramp and the data mix are pure functions
of the step, so the step is the scheduler's whole state.) Only the newest checkpoint is kept.
Snapshots ``anneal/step-NNNNNN.pt`` are the annealing-phase weights averaged into the base.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from workbench.rundir import atomic_dir


def checkpoint_dirs(folder: Path) -> list[Path]:
    """Complete checkpoints in ``folder``, oldest first."""
    return sorted(p for p in Path(folder).glob("step-*") if (p / "state.pt").is_file())


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint, if any."""
    dirs = checkpoint_dirs(folder)
    return dirs[-1] if dirs else None


def rng_states() -> dict:
    """The Python, NumPy and torch random states."""
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_states(states: dict) -> None:
    """Restore what :func:`rng_states` returned."""
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])


def save_checkpoint(folder: Path, step: int, state: dict) -> Path:
    """Write ``state`` as checkpoint ``step`` in one atomic rename, then delete the older ones."""
    path = Path(folder) / f"step-{step:06d}"
    with atomic_dir(path) as tmp:
        torch.save(state, tmp / "state.pt")
    for old in checkpoint_dirs(folder)[:-1]:
        shutil.rmtree(old, ignore_errors=True)
    return path


def load_checkpoint(path: Path) -> dict:
    """The state saved by :func:`save_checkpoint`."""
    return torch.load(Path(path) / "state.pt", map_location="cpu", weights_only=False)


def save_snapshot(folder: Path, step: int, model: torch.nn.Module) -> Path:
    """Keep the model's weights after ``step`` for averaging (atomic)."""
    path = Path(folder) / "anneal" / f"step-{step:06d}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
    os.replace(tmp, path)
    return path


def average_snapshots(paths: list[Path]) -> dict[str, torch.Tensor]:
    """The element-wise mean of the snapshots' weights."""
    if not paths:
        raise ValueError("no annealing snapshots to average")
    total = None
    for path in paths:
        weights = torch.load(path, map_location="cpu", weights_only=True)
        total = weights if total is None else {k: total[k] + weights[k] for k in total}
    return {k: v / len(paths) for k, v in total.items()}
