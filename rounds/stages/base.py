"""Before the rounds, when ``model.path`` names a user's HF causal LM: it is adopted as ``base/`` (no pretraining)."""

from __future__ import annotations

import shutil
from pathlib import Path

from workbench.stage import Result, Stage, StageContext


def inputs(ctx: StageContext) -> dict:
    """The user's model folder."""
    return {"model": Path(ctx.cfg.model.path)}


def run(ctx: StageContext) -> Result:
    """Check the model can serve the recipe (naming every problem), then copy it into ``base/``."""
    from workbench.modeling import check_causal_lm

    architecture = check_causal_lm(ctx.cfg.model.path, tokenizer_dir=ctx.cfg.tokenizer.path)
    shutil.copytree(ctx.cfg.model.path, ctx.out, dirs_exist_ok=True)
    return Result({}, {"model": ctx.out}, {"architecture": architecture})


STAGE = Stage("base", "model", inputs, run, folder=lambda run, n: run.base)
