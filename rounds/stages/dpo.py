"""Round stage 5, dpo: the modified DPO on the SFT model with the newest (or all) preferences.

A round with no pair rated strongly enough, or with ``rounds.dpo`` off, keeps the SFT model unchanged
and says so in its metrics.
"""

from __future__ import annotations

import shutil

from rounds.stages.common import log, model_dir, preference_inputs, read_preferences, tracking_kwargs, trained_variants
from workbench.rundir import atomic_dir
from workbench.stage import Result, Stage, StageContext


def preference_rounds(ctx: StageContext) -> range:
    """The rounds whose preferences DPO trains on (rounds.dpo_preferences: newest or all)."""
    n = ctx.round
    return range(n, n + 1) if ctx.cfg.rounds.dpo_preferences == "newest" else range(1, n + 1)


def inputs(ctx: StageContext) -> dict:
    """The round's SFT model and the preferences DPO reads (none with ``rounds.dpo`` off)."""
    prefs = preference_inputs(ctx, preference_rounds(ctx)) if ctx.cfg.rounds.dpo else {}
    return {"sft": model_dir(ctx.run, ctx.round, "sft"), **prefs}


def keep_sft(ctx: StageContext, reason: str, metrics: dict, extra: dict) -> Result:
    """Copy the SFT model in as ``dpo/model`` unchanged; the metrics say why (``reason``) and that nothing trained."""
    log(f"round {ctx.round}: dpo: {reason}; the SFT model is kept as is")
    with atomic_dir(ctx.out / "model") as tmp:
        shutil.copytree(model_dir(ctx.run, ctx.round, "sft"), tmp, dirs_exist_ok=True)
    return Result(metrics | {"global_step": 0}, {"model": ctx.out / "model"}, extra)


def run(ctx: StageContext) -> Result:
    """Train (and average) the DPO model into ``dpo/model``, or keep the SFT model (DPO off, or no pair qualifies)."""
    from workbench.posttrain.dpo import preference_pairs, train_dpo

    cfg, sft = ctx.cfg, model_dir(ctx.run, ctx.round, "sft")
    if not cfg.rounds.dpo:
        return keep_sft(ctx, "rounds.dpo is off", {"skipped_disabled": 1}, {})
    prefs, user_data = read_preferences(ctx, preference_rounds(ctx))
    pairs, counts = preference_pairs(prefs, cfg.dpo.levels)
    if not pairs:
        # Nothing rated strongly enough (early rounds of a tiny model): DPO would have no data.
        return keep_sft(ctx, f"no preference rated {cfg.dpo.levels}", counts | {"skipped_no_pairs": 1}, user_data)
    metrics = trained_variants(ctx, "dpo", train_dpo, dpo_cfg=cfg.dpo, preferences=prefs, sft_dir=sft,
                               tracking=tracking_kwargs(ctx, "dpo"))
    return Result({k.replace("/", "_"): v for k, v in metrics.items()}, {"model": ctx.out / "model"}, user_data)


STAGE = Stage("dpo", "dpo", inputs, run)
