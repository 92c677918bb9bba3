"""Tokens/s of the modified DPO (formatting-token masking + NLL term) against plain TRL DPO.

Same model, data and TRL settings for both, in one process; the two are run alternately
``--repeats`` times and the best run of each is kept (the machine may be shared). Target: >= 0.95x.

    .venv/bin/python benchmarks/dpo_bench.py [--size small] [--pairs 64] [--repeats 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch


def _data(n: int):
    from workbench.posttrain.dpo import preference_pairs
    from workbench.preferences import Preference

    prefs = [Preference(id=f"b{i}", prompt=[{"role": "user", "content": f"What is {i} + {2 * i + 7}? Show the steps."}],
                        chosen=f"{i} + {2 * i + 7} = {3 * i + 7}\nAnswer: {3 * i + 7}" * (1 + i % 3),
                        rejected=f"I think it is {3 * i + 8}.\nAnswer: {3 * i + 8}", level="better")
             for i in range(n)]
    return preference_pairs(prefs)[0]


def _tokenizer(texts):
    from workbench.tokenizer import train_tokenizer

    return train_tokenizer(texts * 4, vocab_size=512)


def _run(trainer) -> float:
    ds = trainer.train_dataset
    tokens = sum(2 * len(r["prompt_ids"]) + len(r["chosen_ids"]) + len(r["rejected_ids"]) for r in ds)
    start = time.perf_counter()
    trainer.train()
    return tokens / (time.perf_counter() - start)


def main() -> None:
    """Print a markdown table of tokens/s for plain and modified DPO."""
    from trl import DPOConfig as TRLDPOConfig
    from trl import DPOTrainer
    from datasets import Dataset

    from workbench.modeling import create_model, save_model
    from workbench.posttrain.common import trl_kwargs
    from workbench.posttrain.config import DPOConfig
    from workbench.posttrain.dpo import build_trainer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small", help="model size (workbench.modeling.SIZES)")
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    rows = _data(args.pairs)
    tokenizer = _tokenizer([r["chosen"][0]["content"] + r["prompt"][0]["content"] for r in rows])
    cfg = DPOConfig(per_device_train_batch_size=args.batch, num_train_epochs=1, max_length=512,
                    trl_args={"disable_tqdm": True, "save_strategy": "no"})
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = save_model(create_model(args.size, tokenizer, seed=0), tokenizer, Path(tmp) / "sft")

        def modified():
            from workbench.posttrain.common import load_policy

            return build_trainer(cfg, rows, load_policy(model_dir), tokenizer, Path(tmp) / "m", seed=0)

        def plain():
            from workbench.posttrain.common import load_policy

            targs = TRLDPOConfig(**trl_kwargs(cfg, Path(tmp) / "p", 0, None))  # loss_type ["sigmoid"], no masking
            return DPOTrainer(model=load_policy(model_dir), args=targs, processing_class=tokenizer,
                              train_dataset=Dataset.from_list(rows))

        best = {"plain TRL DPO": 0.0, "modified DPO": 0.0}
        for _ in range(args.repeats):
            for name, make in (("plain TRL DPO", plain), ("modified DPO", modified)):
                best[name] = max(best[name], _run(make()))
    ratio = best["modified DPO"] / best["plain TRL DPO"]
    print(f"\nmodel {args.size}, {args.pairs} pairs, batch {args.batch}, torch threads {torch.get_num_threads()}\n")
    print("| trainer | tokens/s | ratio |\n| --- | ---: | ---: |")
    for name, tps in best.items():
        print(f"| {name} | {tps:,.0f} | {tps / best['plain TRL DPO']:.3f}x |")
    print(f"\ntarget >= 0.95x: {'met' if ratio >= 0.95 else 'NOT met'} ({ratio:.3f}x)")


if __name__ == "__main__":
    main()
