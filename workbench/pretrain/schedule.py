"""The learning rate and the (sequence length, batch size) ramp as functions of the step.

Steps count from 0. Steps ``0 .. max_steps-1`` are the main phase: linear warm-up, then cosine decay
to ``learning_rate * min_lr_ratio``. Steps ``max_steps .. max_steps+anneal_steps-1`` anneal: the
learning rate falls linearly from there to 0, reaching 0 after the last step.
"""

from __future__ import annotations

import math

from workbench.pretrain.config import PretrainConfig


def total_steps(cfg: PretrainConfig) -> int:
    """Optimizer steps of the whole run, annealing included."""
    return cfg.max_steps + cfg.anneal_steps


def is_annealing(cfg: PretrainConfig, step: int) -> bool:
    """True during the final annealing phase."""
    return step >= cfg.max_steps


def learning_rate(cfg: PretrainConfig, step: int) -> float:
    """The learning rate of optimizer step ``step``."""
    lr_min = cfg.learning_rate * cfg.min_lr_ratio
    # 1) linear warm-up (step 0 already gets a small nonzero rate)
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / (cfg.warmup_steps + 1)
    # 2) cosine decay from the peak to lr_min at the end of the main phase
    if step < cfg.max_steps:
        progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
        return lr_min + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.learning_rate - lr_min)
    # 3) annealing: linear from lr_min to 0
    remaining = total_steps(cfg) - step
    return lr_min * remaining / (cfg.anneal_steps + 1)


def ramp(cfg: PretrainConfig, step: int) -> tuple[int, int]:
    """(seq_len, global batch size) of step ``step``: the last ramp stage started at or before it."""
    seq_len, batch_size = cfg.ramp[0][1:]
    for start, stage_seq_len, stage_batch in cfg.ramp:
        if step >= start:
            seq_len, batch_size = stage_seq_len, stage_batch
    return seq_len, batch_size


def anneal_snapshot_steps(cfg: PretrainConfig) -> list[int]:
    """The steps after which the weights are kept for averaging: evenly spaced, the last one last."""
    if cfg.anneal_steps == 0:
        return []
    end = total_steps(cfg)
    every = cfg.anneal_steps / cfg.anneal_average
    return sorted({end - 1 - round(i * every) for i in range(cfg.anneal_average)})
