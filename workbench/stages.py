"""The tokenizer stage (the core's run-level stage with no package of its own): ``runs/<name>/tokenizer/``."""

from __future__ import annotations

import itertools
from pathlib import Path

from workbench.rundir import RunDir
from workbench.stage import Result, Stage, StageContext, run_stage


def inputs(ctx: StageContext) -> dict:
    """The user's tokenizer (tokenizer.path), else the corpus it is trained on."""
    path = ctx.cfg.tokenizer.path
    return {"tokenizer": Path(path)} if path else {"corpus": ctx.run.data / "train.jsonl"}


def make_tokenizer(ctx: StageContext) -> Result:
    """Train the BPE tokenizer on the run's corpus into ``runs/<name>/tokenizer/`` (or adopt ``tokenizer.path``).

    A crash leaves the manifest ``running``; the next attempt rewrites every file, so nothing mixes.
    """
    from workbench.tokenizer import load_tokenizer, save_tokenizer, train_tokenizer

    cfg = ctx.cfg
    if cfg.tokenizer.path:
        tokenizer = load_tokenizer(cfg.tokenizer.path)
    else:
        from workbench.data import corpus_texts

        texts = list(itertools.chain(corpus_texts(ctx.run.data), _chat_texts(cfg.seed)))
        tokenizer = train_tokenizer(texts, cfg.tokenizer.vocab_size, cfg.tokenizer.min_frequency)
    save_tokenizer(tokenizer, ctx.out)
    return Result({"vocab_size": len(tokenizer)}, {"tokenizer": ctx.out})


TOKENIZER = Stage("tokenizer", "tokenizer", inputs, make_tokenizer, folder=lambda run, n: run.tokenizer)


def train_run_tokenizer(cfg, run: RunDir, force: bool = False) -> Path:
    """The tokenizer stage (skipped when done unless ``force``); returns ``runs/<name>/tokenizer/``."""
    run_stage(TOKENIZER, cfg, run, force=force)
    return run.tokenizer


def _chat_texts(seed: int, n: int = 2000):
    """Task-world conversations in the chat format, so the merges cover prompts and answers."""
    from workbench import chat
    from workbench.tasks import generate

    for task in generate(None, n, seed=seed + 7, split="all"):
        yield chat.render([{"role": "user", "content": task.prompt},
                           {"role": "assistant", "content": task.solution}])
