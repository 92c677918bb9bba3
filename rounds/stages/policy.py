"""Round stage 6, policy: the DPO model becomes the round's policy and is evaluated by every suite in ``eval.suites``.

task_world: accuracy on held-out instances, also of the SFT model (``sft_eval.json``), with the
contamination measured against the run's post-training prompts; harness: lm-evaluation-harness tasks;
reward: the user's held-out prompts scored by the round's reward model, win rate against the
previous policy. ``eval.json`` holds each suite's results and a flat ``metrics`` dict.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rounds.stages.common import evaluate, model_dir, policy_before
from sampling.evaluation import round_suites
from workbench.stage import Result, Stage, StageContext


def inputs(ctx: StageContext) -> dict:
    """The round's DPO and SFT models (and, for the reward suite, the round's reward model and the baseline)."""
    found = {"dpo": model_dir(ctx.run, ctx.round, "dpo"), "sft": model_dir(ctx.run, ctx.round, "sft")}
    ecfg = ctx.cfg.eval
    if "reward" in ecfg.suites:
        found["eval_prompts"] = Path(ecfg.prompts)
        if ecfg.reward_model == "round":
            found["reward"] = model_dir(ctx.run, ctx.round, "reward")
        if ecfg.baseline == "previous":
            found["baseline"] = policy_before(ctx.run, ctx.round)
    return found


def run(ctx: StageContext) -> Result:
    """Copy the DPO model in as the round's policy and evaluate it (and the SFT model on the task world)."""
    task_world = "task_world" in ctx.cfg.eval.suites
    sft_eval = evaluate(ctx.cfg, model_dir(ctx.run, ctx.round, "sft"), ctx.out / "sft_eval.json") if task_world else None
    for item in model_dir(ctx.run, ctx.round, "dpo").iterdir():
        if item.is_file():
            shutil.copy2(item, ctx.out / item.name)
    # every suite: the round's reward model, the previous policy as baseline, contamination on this run
    policy_eval = round_suites(ctx.cfg, ctx.run, ctx.round, ctx.out, out=ctx.out / "eval.json")
    metrics = dict(policy_eval["metrics"])
    if sft_eval is not None:
        heldout = policy_eval["heldout"]
        metrics.update(sft_accuracy_mean=sft_eval["mean"], dpo_minus_sft=policy_eval["mean"] - sft_eval["mean"],
                       eval_distinct_items_min=min(heldout["distinct_items"].values()),
                       eval_contamination_max=max(heldout["contamination"]["share"].values()))
    return Result(metrics, {"model": ctx.out})


STAGE = Stage("policy", "eval", inputs, run)
