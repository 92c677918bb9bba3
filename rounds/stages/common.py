"""Paths and steps the round stages share: which model a round starts from, variants, evaluation."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

from workbench import tracking
from workbench.rundir import RunDir, atomic_write_json
from workbench.seeds import derive_seed
from workbench.stage import StageContext


def log(message: str) -> None:
    """One progress line on stderr, with the time."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def policy_before(run: RunDir, n: int) -> Path:
    """The newest policy when round ``n`` starts: round n-1's policy, else the bootstrap."""
    return run.round_stage(n - 1, "policy") if n > 1 else run.bootstrap


def second_model(run: RunDir, n: int) -> Path:
    """The other model whose responses are compared with the newest policy's in round ``n``."""
    if n > 2:
        return run.round_stage(n - 2, "policy")
    return run.bootstrap if n == 2 else run.base


def model_dir(run: RunDir, n: int, stage: str) -> Path:
    """The model a round's reward, sft or dpo stage wrote."""
    return run.round_stage(n, stage) / "model"


def preference_files(run: RunDir, rounds) -> dict[str, Path]:
    """The exported preferences of the given rounds, named for a manifest's inputs."""
    return {f"preferences_{r:02d}": run.round_stage(r, "preferences") / "preferences.jsonl" for r in rounds}


def preference_inputs(ctx: StageContext, rounds) -> dict[str, Path]:
    """A reward or DPO stage's inputs: the rounds' exported preferences and, where they apply, the user's."""
    from rounds.data import user_data_inputs, user_preferences_apply

    user = user_data_inputs(ctx.cfg, "preference_data") if user_preferences_apply(ctx.cfg, ctx.round) else {}
    return preference_files(ctx.run, rounds) | user


def read_preferences(ctx: StageContext, rounds) -> tuple[list, dict]:
    """(preferences of the rounds' exports plus the user's, manifest fields naming the user files' formats)."""
    from rounds.data import user_preferences
    from workbench.preferences import read_jsonl

    prefs = [p for path in preference_files(ctx.run, rounds).values() for p in read_jsonl(path)]
    user, formats = user_preferences(ctx.cfg, ctx.round)
    return prefs + user, ({"data_formats": formats, "user_preferences": len(user)} if formats else {})


def tracking_kwargs(ctx: StageContext, stage: str) -> dict:
    """TRL's report_to/run_name for a round's training stage."""
    return tracking.trainer_kwargs(ctx.cfg, f"round_{ctx.round:02d}/{stage}")


def trained_variants(ctx: StageContext, stage: str, train, **kwargs) -> dict:
    """Train ``rounds.variants[stage]`` seeds with ``train(out_dir=, seed=, **kwargs) -> metrics``; several are averaged.

    Each training call runs through :func:`workbench.launch.run_call` (in this process, or under
    `accelerate launch` per ``distributed``). One variant trains straight into ``<stage>/model``;
    several train into ``<stage>/variants/seed_K`` and mergekit's linear average of them becomes
    ``<stage>/model``. Each training call writes its model atomically and resumes from its own
    checkpoints, so an interrupted stage redoes only the variant that was cut short. The metrics are
    the variants' mean (and the non-numeric ones all variants agree on).
    """
    from workbench.launch import run_call

    def one(seed: int, out: Path) -> dict:
        return run_call(ctx.cfg.distributed, train, out, out_dir=out, seed=seed, **kwargs)

    count = ctx.cfg.rounds.variants.get(stage, 1)
    seeds = [derive_seed(ctx.cfg.seed, stage, ctx.round, v) for v in range(count)]
    if count == 1:
        return one(seeds[0], ctx.out / "model")
    from workbench.posttrain.averaging import average_models

    runs = []
    for v, seed in enumerate(seeds):
        out = ctx.out / "variants" / f"seed_{v}"
        record = out.with_name(f"seed_{v}.metrics.json")
        if not record.exists():
            atomic_write_json(record, one(seed, out))
        runs.append(json.loads(record.read_text()))
    average_models([ctx.out / "variants" / f"seed_{v}" for v in range(count)], ctx.out / "model")
    numeric = [k for k, v in runs[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    means = {k: sum(r[k] for r in runs) / count for k in numeric if all(k in r for r in runs)}
    # what every variant reports alike (masked_tokens, assistant_spans, pad_choice) is kept as it is
    return means | {k: v for k, v in runs[0].items() if k not in numeric and all(r.get(k) == v for r in runs)}


def backend(cfg, model: Path, name: str | None = None):
    """A sampling backend on ``model`` (the rounds' generation backend unless named); a context manager."""
    from sampling.backends import make_backend

    return make_backend(dataclasses.replace(cfg.sampling, backend=name or cfg.rounds.generation_backend), model)


def evaluate(cfg, model: Path, out_json: Path) -> dict:
    """Task-world accuracy of ``model`` on held-out instances (contamination measured on this run), to ``out_json``."""
    from sampling.evaluation import evaluate_model

    # measured against this run even when the model lies outside it (model.path)
    result = evaluate_model(model, cfg.eval, cfg.sampling, cfg.rounds.generation_backend, run_dir=cfg.run_path)
    atomic_write_json(out_json, result)
    return result
