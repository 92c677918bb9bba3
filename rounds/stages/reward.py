"""Round stage 2, reward: a reward model on the base, trained on every preference collected so far."""

from __future__ import annotations

from rounds.stages.common import preference_inputs, read_preferences, trained_variants
from workbench.stage import Result, Stage, StageContext


def inputs(ctx: StageContext) -> dict:
    """The base, every round's preferences up to this one, and the user's preference files."""
    return {"base": ctx.run.base, **preference_inputs(ctx, range(1, ctx.round + 1))}


def run(ctx: StageContext) -> Result:
    """Train (and, with variants, average) the reward model into ``reward/model``."""
    from reward.train import train_reward_model

    prefs, user_data = read_preferences(ctx, range(1, ctx.round + 1))
    metrics = trained_variants(ctx, "reward", train_reward_model, cfg=ctx.cfg, preferences=prefs,
                               base_dir=ctx.run.base, round_number=ctx.round)
    return Result({k.replace("/", "_"): v for k, v in metrics.items()}, {"model": ctx.out / "model"}, user_data)


STAGE = Stage("reward", "reward", inputs, run)
