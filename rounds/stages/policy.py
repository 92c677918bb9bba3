"""Round stage 6, policy: SFT and DPO models evaluated on held-out instances; the DPO model is the policy."""

from __future__ import annotations

import shutil

from rounds.stages.common import evaluate, model_dir
from workbench.stage import Result, Stage, StageContext


def inputs(ctx: StageContext) -> dict:
    """The round's DPO and SFT models."""
    return {"dpo": model_dir(ctx.run, ctx.round, "dpo"), "sft": model_dir(ctx.run, ctx.round, "sft")}


def run(ctx: StageContext) -> Result:
    """Copy the DPO model in as the round's policy and evaluate both."""
    sft_eval = evaluate(ctx.cfg, model_dir(ctx.run, ctx.round, "sft"), ctx.out / "sft_eval.json")
    for item in model_dir(ctx.run, ctx.round, "dpo").iterdir():
        if item.is_file():
            shutil.copy2(item, ctx.out / item.name)
    policy_eval = evaluate(ctx.cfg, ctx.out, ctx.out / "eval.json")
    heldout = policy_eval["heldout"]
    return Result({"accuracy_mean": policy_eval["mean"], "sft_accuracy_mean": sft_eval["mean"],
                   "dpo_minus_sft": policy_eval["mean"] - sft_eval["mean"],
                   **{f"accuracy_{f}": a for f, a in policy_eval["per_family"].items()},
                   "eval_distinct_items_min": min(heldout["distinct_items"].values()),
                   "eval_contamination_max": max(heldout["contamination"]["share"].values())},
                  {"model": ctx.out})


STAGE = Stage("policy", "eval", inputs, run)
