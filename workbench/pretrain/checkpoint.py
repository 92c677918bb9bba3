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


def reshard(model: torch.nn.Module) -> bool:
    """Put every FSDP2 unit of ``model`` back into its sharded state (a forward leaves some gathered); any?"""
    from torch.distributed.fsdp import FSDPModule

    units = [module for module in model.modules() if isinstance(module, FSDPModule)]
    for module in units:
        module.reshard()
    return bool(units)


def full_states(model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None) -> tuple[dict, dict]:
    """The full (unsharded) model and optimizer state dicts, on the CPU, keyed by parameter name.

    Under FSDP a collective: call it on every process; the main process gets the complete dicts.
    Works unsharded too (plain or DDP-wrapped model), so every strategy writes the same checkpoint.
    """
    from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                         get_optimizer_state_dict)

    reshard(model)
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    model_state = get_model_state_dict(model, options=options)
    return model_state, ({} if optimizer is None else get_optimizer_state_dict(model, optimizer, options=options))


def load_full_states(model: torch.nn.Module, model_state: dict | None = None, optimizer=None,
                     optimizer_state: dict | None = None) -> None:
    """Load what :func:`full_states` returned into an unwrapped model (sharded or not) and its optimizer.

    Call it on every process; under FSDP the main process's dicts are the ones loaded.
    """
    from torch.distributed.checkpoint.state_dict import (StateDictOptions, set_model_state_dict,
                                                         set_optimizer_state_dict)

    # Sharded parameters take their shard of the full tensors only when these are broadcast from rank 0.
    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=reshard(model))
    if model_state is not None:
        set_model_state_dict(model, model_state, options=options)
    if optimizer is not None:
        set_optimizer_state_dict(model, optimizer, optimizer_state, options=options)


def save_snapshot(folder: Path, step: int, weights: torch.nn.Module | dict) -> Path:
    """Keep a model's weights (or its full state dict) after ``step`` for averaging (atomic)."""
    path = Path(folder) / "anneal" / f"step-{step:06d}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    state = weights if isinstance(weights, dict) else weights.state_dict()
    torch.save({k: v.detach().cpu() for k, v in state.items()}, tmp)
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
