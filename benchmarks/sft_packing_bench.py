"""Packed against unpacked SFT on a demo-like SFT mix: tokens/s at equal loss, both measured in one run.

    .venv/bin/python benchmarks/sft_packing_bench.py [--config configs/demo.yaml] [--rows 1200] [--base DIR]

The mix is built from the task world as the rounds build their curated rows (``rounds.data``):
one user prompt and its reference solution per row, the shape of the rejection-sampled rows that
make up the rest of a round's mix. Both modes fine-tune the same base with the config's ``sft``
section for the same epochs and train on the same conversations at every step: unpacked pads
each one to the batch's longest, packed puts several into one row with document masks
(:mod:`workbench.posttrain.sft_packing`). So the losses must agree (training loss, and the
held-out assistant-only loss on fresh task-world rows) and only the time differs. tokens/s
counts the conversations' tokens, not padding; fill is their share of the positions computed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch


def task_rows(cfg, n: int, seed_offset: int) -> list[dict]:
    """``n`` task-world chat rows as the rounds make curated rows (another seed for the held-out rows)."""
    from rounds.data import curated_examples

    return curated_examples(replace(cfg, seed=cfg.seed + seed_offset,
                                    bootstrap=replace(cfg.bootstrap, num_examples=n)))


def conversation_lengths(tokenizer, rows: list[dict]) -> list[int]:
    """Tokens of each row under the tokenizer's chat template."""
    return [len(tokenizer.apply_chat_template(r["messages"])["input_ids"]) for r in rows]


@torch.no_grad()
def assistant_loss(model, tokenizer, rows: list[dict]) -> float:
    """Mean cross-entropy over the assistant tokens of ``rows``, each conversation run alone."""
    model.eval()
    total, count = 0.0, 0
    for row in rows:
        enc = tokenizer.apply_chat_template(row["messages"], return_dict=True, return_assistant_tokens_mask=True)
        ids, mask = torch.tensor([enc["input_ids"]]), torch.tensor(enc["assistant_masks"], dtype=torch.bool)
        logprobs = torch.log_softmax(model(ids).logits[0, :-1], dim=-1)
        picked = logprobs.gather(1, ids[0, 1:, None])[:, 0]
        total -= picked[mask[1:]].sum().item()
        count += int(mask[1:].sum())
    return total / count


def run_mode(sft_cfg, rows, base: Path, out: Path, seed: int, tokens: int) -> dict:
    """Train one mode once (as ``train_sft`` does, without the save); its time, throughput and loss."""
    from workbench.posttrain.sft import build_trainer
    from workbench.posttrain.sft_packing import document_masking

    trainer = build_trainer(sft_cfg, rows, base, out, seed=seed)
    slots = sum(batch["input_ids"].numel() for batch in trainer.get_train_dataloader())  # one epoch, padding included
    wall, cpu = time.perf_counter(), time.process_time()
    with document_masking(trainer.model):
        output = trainer.train()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    shutil.rmtree(out.with_name(f".{out.name}.partial"), ignore_errors=True)
    epochs_tokens = tokens * sft_cfg.num_train_epochs
    return {"steps": output.global_step, "fill": tokens / slots, "train_s": wall, "cpu_s": cpu,
            "tokens_per_s": epochs_tokens / wall,
            "tokens_per_cpu_s": epochs_tokens / cpu, "train_loss": output.training_loss, "trainer": trainer}


def cell(value) -> str:
    """A table cell: floats to 3 decimals, lists comma-separated."""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None) -> int:
    """Run unpacked then packed SFT and print the comparison table (and JSON with --json)."""
    from reward_bench import make_base  # the same untrained base (this script's folder is on sys.path)
    from rounds.full_config import load_config
    from rounds.report import markdown_table
    from workbench.tokenizer import load_tokenizer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--base", help="HF base model folder (default: an untrained model of the config's size)")
    parser.add_argument("--rows", type=int, default=1200, help="conversations in the SFT mix")
    parser.add_argument("--heldout", type=int, default=300, help="held-out conversations for the loss")
    parser.add_argument("--epochs", type=float, default=1.0, help="epochs over the mix (both modes)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each mode, alternating (the fastest kept)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 is fastest on a shared 2-core machine; more threads spin-wait)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    cfg = load_config(args.config, ["tracking.backend=none", "device=cpu", *args.overrides])
    rows, heldout = task_rows(cfg, args.rows, 0), task_rows(cfg, args.heldout, 1)
    with tempfile.TemporaryDirectory(prefix="sft-packing-bench-") as tmp:
        base = Path(args.base) if args.base else make_base(Path(tmp) / "base", cfg.model.size, cfg.seed)
        lengths = conversation_lengths(load_tokenizer(base), rows)
        trl_args = {**cfg.sft.trl_args, "disable_tqdm": True, "save_strategy": "no"}
        modes = {name: replace(cfg.sft, packing=name == "packed", num_train_epochs=args.epochs, trl_args=trl_args)
                 for name in ("unpacked", "packed")}
        # The modes alternate, so a load change on the shared machine hits both; each keeps its fastest run
        # (and its least CPU time: with one torch thread that measures the work, whatever else runs).
        runs = {name: [] for name in modes}
        for _ in range(args.repeats):
            for name, sft in modes.items():
                runs[name].append(run_mode(sft, rows, base, Path(tmp) / name, cfg.seed, sum(lengths)))
        results = {}
        for name, r in runs.items():
            fastest, thriftiest = min(r, key=lambda m: m["train_s"]), min(r, key=lambda m: m["cpu_s"])
            results[name] = {**{k: v for k, v in fastest.items() if k not in ("trainer", "cpu_s", "tokens_per_cpu_s")},
                             "cpu_s": thriftiest["cpu_s"], "tokens_per_cpu_s": thriftiest["tokens_per_cpu_s"],
                             "train_s_runs": [round(m["train_s"], 1) for m in r],
                             "cpu_s_runs": [round(m["cpu_s"], 1) for m in r],
                             "heldout_loss": assistant_loss(fastest["trainer"].model,
                                                            fastest["trainer"].processing_class, heldout)}
    print(f"\n{len(rows)} conversations, {sum(lengths)} tokens (mean {sum(lengths) / len(lengths):.1f}, max "
          f"{max(lengths)}); {cfg.sft.per_device_train_batch_size} conversations/step, {args.epochs} epoch(s), "
          f"lr {cfg.sft.learning_rate}, model {cfg.model.size}, {args.threads} thread(s)\n")
    columns = ["steps", "fill", "train_s_runs", "tokens_per_s", "cpu_s_runs", "tokens_per_cpu_s", "train_loss",
               "heldout_loss"]
    table = [[name] + [cell(m[c]) for c in columns] for name, m in results.items()]
    print(markdown_table(["mode", *columns], table))
    p, u = results["packed"], results["unpacked"]
    print(f"\npacked/unpacked tokens/s: {p['tokens_per_s'] / u['tokens_per_s']:.2f}x (wall), "
          f"{p['tokens_per_cpu_s'] / u['tokens_per_cpu_s']:.2f}x (CPU time); held-out loss "
          f"{p['heldout_loss']:.4f} vs {u['heldout_loss']:.4f} ({p['heldout_loss'] - u['heldout_loss']:+.4f})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
