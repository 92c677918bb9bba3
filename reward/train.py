"""The reward-model stage: preferences in, an HF sequence-classification model and its metrics out.

A recipe in four steps: 1) load, filter near-identical pairs, hold out prompts; 2) put a one-output
score head on the base; 3) train with TRL's RewardTrainer, on packed multi-response rows
(:class:`reward.trainer.RankedRowsRewardTrainer`) or one pair per row; 4) save, and measure the
held-out pairwise accuracy overall and per preference level.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from reward.data import filter_near_duplicates, load_preferences, packed_rows, pair_rows, split_heldout
from reward.scoring import RewardScorer, pairwise_accuracy
from workbench.preferences import Preference


def load_reward_base(base_dir: str | Path, device: str = "cpu"):
    """Any causal LM with a fresh one-output score head (its ``*ForSequenceClassification``) and its tokenizer.

    The config's pad_token_id is the tokenizer's (or the pad token it was given): sequence
    classification needs one to batch. An architecture transformers has no sequence-classification
    class for is refused, naming the folder.
    """
    from transformers import AutoModelForSequenceClassification
    from workbench.tokenizer import load_tokenizer
    from workbench.trl_private import suppress_seqcls_warning

    tokenizer = load_tokenizer(base_dir)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        with suppress_seqcls_warning():
            model = AutoModelForSequenceClassification.from_pretrained(str(base_dir), num_labels=1, dtype=dtype)
    except ValueError as exc:
        if "Unrecognized configuration class" not in str(exc):
            raise
        raise ValueError(f"{base_dir}: transformers has no sequence-classification class for this model "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0]}); the reward model needs a base "
                         "AutoModelForSequenceClassification can load (Llama, Qwen2/3, Mistral, Gemma, Phi-3 ...)"
                         ) from None
    model.config.pad_token_id = tokenizer.pad_token_id
    return model.to(device), tokenizer


def prepare_preferences(rcfg, preferences: Any, heldout: Any, seed: int) -> tuple[list, list, dict]:
    """(train, heldout, counts): loaded, near-duplicates filtered, heldout split off when not given."""
    train = load_preferences(preferences)
    train, counts = filter_near_duplicates(train, rcfg.near_duplicate_threshold)
    if heldout is None:
        train, held = split_heldout(train, rcfg.heldout_fraction, seed)
    else:
        held, held_counts = filter_near_duplicates(load_preferences(heldout), rcfg.near_duplicate_threshold)
        counts["heldout_near_duplicates_removed"] = held_counts["near_duplicates_removed"]
    if not train:
        raise ValueError("reward: no training preferences left after filtering and the held-out split")
    return train, held, counts


def trl_args(cfg, output_dir: str | Path, seed: int, run_name: str):
    """TRL's RewardConfig from the workbench's reward section (float32 and no checkpoints on the CPU)."""
    from trl import RewardConfig as TRLRewardConfig

    from workbench.tracking import trainer_kwargs

    rcfg, cuda = cfg.reward, cfg.resolved_device() == "cuda"
    return TRLRewardConfig(
        output_dir=str(output_dir), seed=seed, learning_rate=rcfg.learning_rate,
        num_train_epochs=rcfg.num_train_epochs, per_device_train_batch_size=rcfg.batch_size,
        lr_scheduler_type=rcfg.lr_scheduler_type, warmup_steps=rcfg.warmup_ratio,
        weight_decay=rcfg.weight_decay, max_length=rcfg.max_length,
        center_rewards_coefficient=rcfg.center_rewards_coefficient, logging_steps=rcfg.logging_steps,
        save_strategy="no", bf16=cuda, use_cpu=not cuda, gradient_checkpointing=False,
        remove_unused_columns=False, dataloader_num_workers=0, disable_tqdm=True,
        **trainer_kwargs(cfg, run_name),
    )


def build_trainer(cfg, model, tokenizer, records: list[Preference], output_dir: str | Path, seed: int,
                  run_name: str = "reward"):
    """(trainer, row counts) for ``cfg.reward.row_format``: packed rows or TRL's one pair per row."""
    from trl import RewardTrainer

    from reward.trainer import RankedRowsCollator, RankedRowsRewardTrainer

    rcfg = cfg.reward
    args = trl_args(cfg, output_dir, seed, run_name)
    if rcfg.row_format == "packed":
        rows = packed_rows(records, tokenizer, rcfg.max_length, rcfg.margins, seed)
        trainer = RankedRowsRewardTrainer(
            model=model, args=args, train_dataset=rows.dataset, processing_class=tokenizer,
            data_collator=RankedRowsCollator(tokenizer.pad_token_id), use_margin=bool(rcfg.margins))
    else:
        rows = pair_rows(records, tokenizer, rcfg.max_length, rcfg.margins)
        check_pair_rows_end_before_padding(rows.dataset, tokenizer)
        trainer = RewardTrainer(model=model, args=args, train_dataset=rows.dataset, processing_class=tokenizer)
    if len(rows.dataset) == 0:
        raise ValueError(f"reward: every preference is longer than max_length={rcfg.max_length} tokens")
    return trainer, {"train_rows": len(rows.dataset), "train_pairs": rows.num_pairs,
                     "too_long_removed": rows.too_long_removed}


def check_pair_rows_end_before_padding(dataset, tokenizer) -> None:
    """Refuse pair rows that end with the pad token: the score would be read one token early.

    TRL's RewardTrainer reads a row's score where transformers' ``*ForSequenceClassification`` does,
    at the last token that is not the pad token; a reply the template ends with that token (Phi-3
    ends a conversation with its EOS, which it also pads with) would be scored before its end, unlike
    in packed rows and :class:`reward.scoring.RewardScorer`, which read the last token itself.
    """
    pad = tokenizer.pad_token_id
    for column in ("chosen_ids", "rejected_ids"):
        if any(ids and ids[-1] == pad for ids in dataset[column]):
            raise ValueError(f"reward.row_format: pair: responses end with the pad token {tokenizer.pad_token!r} "
                             "(the chat template ends a reply with it), so the score would be read one token "
                             "before the end; use reward.row_format: packed, or a tokenizer with a pad token of "
                             "its own")


def train_reward_model(cfg, preferences: Any, base_dir: str | Path, out_dir: str | Path, *, seed: int,
                       heldout: Any = None, round_number: int | None = None) -> dict[str, Any]:
    """Train a reward model on ``preferences`` (Preference list, JSONL paths or a dataset) into ``out_dir``.

    ``out_dir`` receives an HF model that loads as AutoModelForSequenceClassification, with the
    tokenizer and chat template. Returns the metrics (held-out accuracy overall and per level,
    filter counts, throughput); the caller logs them to the tracker and puts them in the manifest.
    """
    from transformers import set_seed

    from workbench.launch import savable

    rcfg, device = cfg.reward, cfg.resolved_device()
    train, held, metrics = prepare_preferences(rcfg, preferences, heldout, seed)
    set_seed(seed)  # the score head is initialised at random when the base is loaded
    model, tokenizer = load_reward_base(base_dir, device)
    run_name = f"round_{round_number:02d}/reward" if round_number else "reward"
    with tempfile.TemporaryDirectory(prefix="reward-trainer-") as scratch:
        trainer, counts = build_trainer(cfg, model, tokenizer, train, scratch, seed, run_name)
        t0 = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - t0
    epochs = trainer.state.epoch or rcfg.num_train_epochs
    metrics.update(counts, train_preferences=len(train), train_loss=result.training_loss,
                   train_seconds=round(seconds, 3), train_pairs_per_s=round(counts["train_pairs"] * epochs / seconds, 3),
                   global_step=trainer.state.global_step, num_processes=trainer.accelerator.num_processes)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    if losses:
        metrics.update(first_logged_loss=losses[0], last_logged_loss=losses[-1])
    model.eval()
    metrics.update(pairwise_accuracy(RewardScorer.from_model(model, tokenizer, rcfg.score_batch_size), held))
    savable_model = savable(trainer.accelerator, model)  # under FSDP: the gathered weights (a collective)
    if trainer.accelerator.is_main_process:  # under several processes, one writes the model
        save_reward_model(savable_model, tokenizer, out_dir)
    trainer.accelerator.wait_for_everyone()
    return metrics


def save_reward_model(model, tokenizer, out_dir: str | Path) -> Path:
    """Write model and tokenizer into ``out_dir``: saved in a hidden temp folder, then moved in file by file."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".save-") as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        for name in sorted(os.listdir(tmp)):
            os.replace(Path(tmp) / name, out_dir / name)
    return out_dir

