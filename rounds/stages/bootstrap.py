"""Before round 1, bootstrap: SFT of the base on curated demonstrations gives the first chat policy.

The base and the bootstrap policy are both evaluated, so round 1 has a starting point to beat.
"""

from __future__ import annotations

import shutil

from rounds import data as round_data
from rounds.stages.common import evaluate
from workbench import tracking
from workbench.jsonl import write_jsonl
from workbench.rundir import MANIFEST
from workbench.seeds import derive_seed
from workbench.stage import Result, Stage, StageContext


def inputs(ctx: StageContext) -> dict:
    """The base model and the user's SFT files."""
    return {"base": ctx.run.base, **round_data.user_data_inputs(ctx.cfg, "sft_data")}


def run(ctx: StageContext) -> Result:
    """Train the bootstrap policy on curated.jsonl plus the user's SFT rows; evaluate it and the base.

    With neither (``bootstrap.num_examples: 0`` and no ``rounds.sft_data``) the base is the first
    policy as it is: a user's chat model needs no bootstrap.
    """
    from workbench.launch import run_call
    from workbench.posttrain.sft import train_sft

    cfg, run_dir = ctx.cfg, ctx.run
    rows = round_data.curated_examples(cfg) if cfg.bootstrap.num_examples else []
    write_jsonl(rows, ctx.out / "curated.jsonl")
    user_rows = round_data.user_sft_rows(cfg)[0]
    rows += user_rows
    metrics: dict = {}
    work = run_dir.root / ".bootstrap-model"  # train_sft writes a fresh folder in one rename
    if rows:
        metrics.update(run_call(cfg.distributed, train_sft, work, sft_cfg=cfg.bootstrap.sft_config(cfg.sft), data=rows,
                                init_dir=run_dir.base, out_dir=work, seed=derive_seed(cfg.seed, "bootstrap"),
                                tracking=tracking.trainer_kwargs(cfg, "bootstrap")))
    else:
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(run_dir.base, work, ignore=shutil.ignore_patterns(MANIFEST, "checkpoints"))
    for item in work.iterdir():
        target = ctx.out / item.name
        if target.is_dir():
            shutil.rmtree(target)
        item.replace(target)
    shutil.rmtree(work, ignore_errors=True)
    result = {**{f"sft_{k}": v for k, v in metrics.items() if isinstance(v, (int, float))},
              "trained": bool(rows), "user_examples": len(user_rows)}
    if "task_world" in cfg.eval.suites:
        base_eval = evaluate(cfg, run_dir.base, ctx.out / "base_eval.json")
        boot_eval = evaluate(cfg, ctx.out, ctx.out / "eval.json")
        result.update(base_accuracy_mean=base_eval["mean"], accuracy_mean=boot_eval["mean"])
    return Result(result, {"model": ctx.out}, round_data.user_sft_formats(cfg))


STAGE = Stage("bootstrap", "bootstrap", inputs, run)
