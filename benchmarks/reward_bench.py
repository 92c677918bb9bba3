"""Packed multi-response rows vs one pair per row: training pairs/s and held-out accuracy, one run.

    .venv/bin/python benchmarks/reward_bench.py [--config configs/smoke.yaml] [--base DIR] [--train 600]

Both modes train on the same simulated task-world preferences (reward.synthetic) from the same
base with the config's reward section; only ``reward.row_format`` differs. Without ``--base`` a
tokenizer is trained on task-world text and a standard-init tiny model is made (no pretraining),
which is what the reward model gets before the pretraining stage exists.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import torch


def make_base(out: Path, size: str, seed: int) -> Path:
    """A tokenizer trained on task-world text and an untrained model of ``size``, saved in HF format."""
    from workbench.modeling import create_model, save_model
    from workbench.tasks import FAMILIES, generate
    from workbench.tokenizer import train_tokenizer

    texts = [f"{t.prompt}\n{t.solution}" for f in FAMILIES for t in generate(f, 500, seed + 7)]
    tokenizer = train_tokenizer(texts, vocab_size=2048)
    return save_model(create_model(size, tokenizer, seed=seed), tokenizer, out)


def main(argv: list[str] | None = None) -> int:
    """Run both row formats and print the comparison table (and JSON with --json)."""
    from reward.synthetic import simulated_preferences
    from reward.train import train_reward_model
    from rounds.full_config import load_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/smoke.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--base", help="HF base model folder (default: an untrained tiny model made here)")
    parser.add_argument("--size", default="tiny", help="model size when no --base is given")
    parser.add_argument("--train", type=int, default=600, help="training preferences")
    parser.add_argument("--heldout", type=int, default=300, help="held-out preferences")
    parser.add_argument("--edit-fraction", type=float, default=0.3, help="share of strong pairs with an edit")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 is fastest on a shared 2-core machine; more threads spin-wait)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    cfg = load_config(args.config, ["tracking.backend=none", "device=cpu", *args.overrides])
    train = simulated_preferences(args.train, seed=args.seed, edit_fraction=args.edit_fraction)
    heldout = simulated_preferences(args.heldout, seed=args.seed + 10_000, edit_fraction=0.0)
    results = {}
    with tempfile.TemporaryDirectory(prefix="reward-bench-") as tmp:
        base = Path(args.base) if args.base else make_base(Path(tmp) / "base", args.size, args.seed)
        for row_format in ("pair", "packed"):
            mode_cfg = replace(cfg, reward=replace(cfg.reward, row_format=row_format))
            results[row_format] = train_reward_model(mode_cfg, train, base, Path(tmp) / row_format, seed=args.seed,
                                                     heldout=heldout)
    print_table(results, cfg)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


def print_table(results: dict, cfg) -> None:
    """Markdown table: one row per mode, then the packed/pair ratio."""
    keys = [("train_pairs", "pairs"), ("train_rows", "rows"), ("train_seconds", "train s"),
            ("train_pairs_per_s", "pairs/s"), ("heldout_accuracy", "held-out acc"),
            ("heldout_accuracy/significantly_better", "acc sig. better")]
    print(f"\nreward.batch_size={cfg.reward.batch_size} epochs={cfg.reward.num_train_epochs} "
          f"lr={cfg.reward.learning_rate}\n")
    print("| mode | " + " | ".join(label for _, label in keys) + " |")
    print("|" + " --- |" * (len(keys) + 1))
    for mode, m in results.items():
        print(f"| {mode} | " + " | ".join(f"{m.get(k, float('nan')):.3f}" if isinstance(m.get(k), float)
                                          else str(m.get(k)) for k, _ in keys) + " |")
    p, q = results["packed"], results["pair"]
    print(f"\npacked/pair pairs/s: {p['train_pairs_per_s'] / q['train_pairs_per_s']:.2f}x; "
          f"held-out accuracy difference: {100 * (p['heldout_accuracy'] - q['heldout_accuracy']):+.1f} points")


if __name__ == "__main__":
    sys.exit(main())
