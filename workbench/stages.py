"""Run-level stages of the shared core that have no package of their own: the tokenizer."""

from __future__ import annotations

import itertools
from pathlib import Path

from workbench.rundir import RunDir


def train_run_tokenizer(cfg, run: RunDir, force: bool = False) -> Path:
    """Train the BPE tokenizer on the run's corpus into ``runs/<name>/tokenizer/`` (or adopt ``tokenizer.path``)."""
    from workbench.tokenizer import load_tokenizer, save_tokenizer, train_tokenizer

    if run.is_done("tokenizer") and not force:
        return run.tokenizer
    inputs = {"tokenizer": cfg.tokenizer.path} if cfg.tokenizer.path else {"corpus": run.data / "train.jsonl"}
    # A crash leaves the manifest `running`; the next attempt rewrites every file, so nothing mixes.
    with run.stage("tokenizer", config=cfg.tokenizer, inputs=inputs) as st:
        if cfg.tokenizer.path:
            tokenizer = load_tokenizer(cfg.tokenizer.path)
        else:
            from workbench.data import corpus_texts

            texts = list(itertools.chain(corpus_texts(run.data), _chat_texts(cfg.seed)))
            tokenizer = train_tokenizer(texts, cfg.tokenizer.vocab_size, cfg.tokenizer.min_frequency)
        save_tokenizer(tokenizer, st.path)
        st.metrics["vocab_size"] = len(tokenizer)
        st.output("tokenizer", st.path)
    return run.tokenizer


def _chat_texts(seed: int, n: int = 2000):
    """Task-world conversations in the chat format, so the merges cover prompts and answers."""
    from workbench import chat
    from workbench.tasks import generate

    for task in generate(None, n, seed=seed + 7):
        yield chat.render([{"role": "user", "content": task.prompt},
                           {"role": "assistant", "content": task.solution}])
