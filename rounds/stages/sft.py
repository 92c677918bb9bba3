"""Round stage 4, sft: the base fine-tuned on every round's rejection-sampled data plus the curated share."""

from __future__ import annotations

from pathlib import Path

from rounds import data as round_data
from rounds.stages.common import policy_before, tracking_kwargs, trained_variants
from workbench.jsonl import write_jsonl
from workbench.stage import Result, Stage, StageContext


def sft_init(ctx: StageContext) -> Path:
    """Where the round's SFT starts: sft.init_from is base (Llama 3), policy (the newest) or a folder."""
    init = ctx.cfg.sft.init_from
    return {"base": ctx.run.base, "policy": policy_before(ctx.run, ctx.round)}.get(init) or Path(init)


def inputs(ctx: StageContext) -> dict:
    """The starting model, every rejection-sampled SFT file so far (the policy's and the experts'), the user's."""
    files = {f"samples_{r:02d}" + (f"_expert_{expert}" if expert else ""): path
             for r, expert, path in round_data.sampled_sft_files(ctx.run, ctx.round)}
    return {"init": sft_init(ctx), **files, **round_data.user_data_inputs(ctx.cfg, "sft_data")}


def run(ctx: StageContext) -> Result:
    """Write the mix, train (and average) the SFT model into ``sft/model``."""
    from workbench.posttrain.sft import train_sft

    mix = round_data.sft_mix(ctx.cfg, ctx.run, ctx.round)
    write_jsonl(mix, ctx.out / "mix.jsonl")
    metrics = trained_variants(ctx, "sft", train_sft, sft_cfg=ctx.cfg.sft, data=mix, init_dir=sft_init(ctx),
                               tracking=tracking_kwargs(ctx, "sft"))
    metrics |= {"examples": len(mix), "curated_examples": sum(r["source"] == "curated" for r in mix),
                "user_examples": sum(r["source"] == "user" for r in mix)}
    if "train_loss" not in metrics and "loss" in metrics:
        metrics["train_loss"] = metrics["loss"]
    return Result(metrics, {"model": ctx.out / "model"}, round_data.user_sft_formats(ctx.cfg))


STAGE = Stage("sft", "sft", inputs, run)
