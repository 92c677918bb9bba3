"""Pretraining throughput: the workbench loop vs a plain `transformers.Trainer` vs the matmul ceiling.

    .venv/bin/python benchmarks/pretrain_bench.py [--size tiny] [--seq-len 256] [--batch 16] [--steps 30]

All are measured in the same run on the same machine: the float32 ceiling (torch.mm on large
square matrices), `workbench pretrain` (its median step tokens/s, from its step log), the same with
`pretrain.compile: true` (the step's forward pass and loss through torch.compile; the compiling
steps are excluded), the same with `pretrain.deterministic: false` (inductor's atomic adds instead
of ATen's serial accumulation: faster, not reproducible bit for bit; both loops otherwise keep the
default, deterministic) and a `transformers.Trainer` loop on the same model (same init), the same
packed rows, the same 4D document mask, AdamW and clipping. Achieved GFLOP/s counts, per token,
6 x parameters (the tied output embedding once) plus 12 x layers x seq_len x attention width for
the attention scores and their weighted sum (the PaLM model-FLOPs formula; with an explicit block
mask the full T x T is computed). The ceiling is measured before and after the loops and the higher
value is used.
The model size defaults to the embedded default's (configs/demo.yaml).
Uses runs/<name>/data and runs/<name>/tokenizer when --run-dir has them, else a task-world corpus.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from workbench import tasks
from rounds.full_config import WorkbenchConfig
from workbench.config_base import build
from workbench.masking import document_mask
from workbench.modeling import count_parameters, create_model
from workbench.pretrain.stage import STAGE as PRETRAIN
from workbench.pretrain.packing import TokenStream, next_batch
from workbench.pretrain.train import load_corpora, read_log
from workbench.rundir import RunDir
from workbench.stage import run_stage
from workbench.tokenizer import load_tokenizer, save_tokenizer, train_tokenizer


def matmul_ceiling(n: int = 2048, reps: int = 10) -> float:
    """GFLOP/s of float32 torch.mm on n x n matrices (best of a few timings)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b)
        best = min(best, (time.perf_counter() - t) / reps)
    return 2 * n**3 / best / 1e9


def model_flops_per_token(params: int, layers: int, attention_width: int, seq_len: int) -> float:
    """Training FLOPs per token: 6N for the weights plus 12 L T d for attention (PaLM, appendix B)."""
    return 6 * params + 12 * layers * seq_len * attention_width


def prepare_run(root: Path, source: Path | None) -> None:
    """Tokenizer and corpus: copied from ``source`` (a run folder) or generated from the task world."""
    if source and (source / "data" / "train.jsonl").exists() and (source / "tokenizer").exists():
        shutil.copytree(source / "tokenizer", root / "tokenizer")
        shutil.copytree(source / "data", root / "data")
        return
    (root / "data").mkdir(parents=True)
    texts = {}
    for name, n, seed in (("train", 500, 1), ("heldout", 10, 2), ("anneal", 50, 3)):
        with open(root / "data" / f"{name}.jsonl", "w") as f:
            for family in tasks.FAMILIES:
                for i, task in enumerate(tasks.generate(family, n, seed)):
                    text = f"{task.prompt}\n{task.solution}"
                    texts[text] = None
                    f.write(json.dumps({"id": f"{name}-{family}-{i}", "text": text, "domain": family}) + "\n")
    save_tokenizer(train_tokenizer(list(texts), vocab_size=2048), root / "tokenizer")


def workbench_loop(root: Path, size: str, seq_len: int, batch: int, steps: int, compile: bool = False,
                   deterministic: bool = True) -> float:
    """Median step tokens/s of `workbench pretrain` (warm-up and compile steps excluded)."""
    cfg = build(WorkbenchConfig, {
        "run_dir": str(root), "tracking": {"backend": "none"}, "model": {"size": size},
        "pretrain": {"max_steps": steps, "warmup_steps": 2, "anneal_steps": 0, "anneal_average": 1,
                     "ramp": [[0, seq_len, batch]], "eval_interval": 0, "eval_tokens": 512,
                     "checkpoint_interval": 10**6, "compile": compile,
                     "deterministic": deterministic}}, "bench:")
    run_stage(PRETRAIN, cfg, RunDir(root), force=True)
    return float(np.median([r["tokens_per_s"] for r in read_log(root / "base")[3:]]))


def trainer_loop(root: Path, size: str, seq_len: int, batch: int, steps: int) -> float:
    """Tokens/s of a plain transformers.Trainer on the same model, rows and masks."""
    from transformers import Trainer, TrainerCallback, TrainingArguments

    tokenizer = load_tokenizer(root / "tokenizer")
    corpus = load_corpora(root / "data", tokenizer, need_anneal=False)["train"]
    stream = TokenStream(corpus, seed=0)
    rows = []
    for step in range(steps):
        b = next_batch([stream], [1.0], batch, seq_len, np.random.default_rng([0, step]))
        mask = document_mask(b.segment_ids)
        # The model shifts labels itself: label t+1 is the target of position t.
        labels = torch.cat([torch.full_like(b.targets[:, :1], -100), b.targets[:, :-1]], dim=1)
        rows += [{"input_ids": b.input_ids[i], "labels": labels[i], "position_ids": b.position_ids[i],
                  "attention_mask": mask[i]} for i in range(batch)]

    times = []

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.t = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.perf_counter() - self.t)

    model = create_model(size, tokenizer, seed=0)
    args = TrainingArguments(
        output_dir=str(root / "trainer"), per_device_train_batch_size=batch, max_steps=steps,
        learning_rate=3e-3, warmup_steps=2, lr_scheduler_type="cosine", weight_decay=0.1,
        adam_beta2=0.95, max_grad_norm=1.0, logging_steps=10**6, save_strategy="no", report_to="none",
        use_cpu=True, dataloader_num_workers=0, disable_tqdm=True, seed=0)
    Trainer(model=model, args=args, train_dataset=rows, callbacks=[Timer()]).train()
    return batch * seq_len / float(np.median(times[3:]))


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", help="model size (default: configs/demo.yaml's model.size)")
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--run-dir", type=Path, help="take the corpus and tokenizer from this run")
    args = parser.parse_args()
    if args.size is None:
        from rounds.full_config import load_config
        args.size = load_config("configs/demo.yaml").model.size

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bench"
        prepare_run(root, args.run_dir)
        model = create_model(args.size, load_tokenizer(root / "tokenizer"))
        params, cfg = count_parameters(model), model.config
        ceiling = matmul_ceiling()
        ours = workbench_loop(root, args.size, args.seq_len, args.batch, args.steps)
        compiled = workbench_loop(root, args.size, args.seq_len, args.batch, args.steps, compile=True)
        racing = workbench_loop(root, args.size, args.seq_len, args.batch, args.steps, compile=True,
                                deterministic=False)
        hf = trainer_loop(root, args.size, args.seq_len, args.batch, args.steps)
        ceiling = max(ceiling, matmul_ceiling())
    flops_per_token = model_flops_per_token(params, cfg.num_hidden_layers,
                                            cfg.num_attention_heads * cfg.head_dim, args.seq_len)
    gflops = lambda tok_s: flops_per_token * tok_s / 1e9  # noqa: E731
    print(f"\nmodel {args.size}: {params / 1e6:.2f}M parameters, rows {args.batch} x {args.seq_len}, "
          f"{torch.get_num_threads()} threads, {flops_per_token / 1e6:.1f} MFLOP per token "
          f"({6 * params / flops_per_token:.0%} of it 6N)")
    print(f"{'':28}{'tokens/s':>10}{'GFLOP/s':>10}{'% ceiling':>11}{'vs Trainer':>12}")
    print(f"{'float32 torch.mm ceiling':28}{'':>10}{ceiling:>10.1f}{100:>10.0f}%{'':>12}")
    for name, tok_s in (("workbench pretrain loop", ours), ("... with pretrain.compile", compiled),
                        ("... compile, atomic adds", racing), ("transformers.Trainer", hf)):
        print(f"{name:28}{tok_s:>10.0f}{gflops(tok_s):>10.1f}{100 * gflops(tok_s) / ceiling:>10.0f}%"
              f"{tok_s / hf:>11.2f}x")


if __name__ == "__main__":
    main()
