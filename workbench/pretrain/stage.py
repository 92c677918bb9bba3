"""The pretraining stage: the base model pretrained from scratch (or continued) into ``runs/<name>/base/``.

Its recipe sits beside the loop, in the core, because two callers compose it: the rounds'
preparation (``rounds/stages/pretrain.py``) and the capability experts' continued pretraining,
which runs it on a small run folder of its own. The training call goes through
:func:`workbench.launch.run_call`, so ``distributed`` decides whether it runs here or under
`accelerate launch` on several processes.
"""

from __future__ import annotations

from workbench.config_base import to_dict
from workbench.launch import run_call
from workbench.pretrain.train import LOG, REPORT, pretrain
from workbench.stage import Result, Stage, StageContext


def inputs(ctx: StageContext) -> dict:
    """The tokenizer and the corpus files (anneal.jsonl when the data stage wrote one)."""
    run = ctx.run
    files = {"tokenizer": run.tokenizer, **{f: run.data / f"{f}.jsonl" for f in ("train", "anneal", "heldout")}}
    return {k: v for k, v in files.items() if v.exists() or k != "anneal"}


def run(ctx: StageContext) -> Result:
    """Pretrain (resuming from checkpoints unless forced); the model, its report and log are the outputs."""
    metrics = run_call(ctx.cfg.distributed, pretrain, ctx.out, cfg=ctx.cfg, run=ctx.run, force=ctx.force)
    base = ctx.run.base
    return Result(metrics, {name: base / name for name in ("config.json", "model.safetensors", REPORT, LOG)},
                  {"model": to_dict(ctx.cfg.model)})


STAGE = Stage("pretrain", "pretrain", inputs, run, folder=lambda run, n: run.base)
