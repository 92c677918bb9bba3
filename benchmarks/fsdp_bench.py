"""FSDP2 on 2 CPU processes against 1 unsharded process: memory held per process and tokens/s, one run.

    .venv/bin/python benchmarks/fsdp_bench.py [--size base] [--vocab 8192] [--batch 8] [--seq-len 256] [--steps 4]

Both train the same Llama-shaped model (``workbench.modeling.SIZES``) with AdamW on random tokens at
the same global batch: the baseline in one process without sharding, FSDP through the workbench's
launch path (``workbench.launch.run_call`` with ``distributed.strategy: fsdp``, 2 gloo processes,
half the batch each). Per process it measures the bytes of parameters, gradients and optimizer
states it holds (shards under FSDP), the peak resident memory (whole process: Python, torch,
activations too) and tokens/s over the steps after a warm-up step. The last line is arithmetic, not
a measurement: what the same sharding gives an 8B model on 8 GPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def build_model(size: str, vocab: int):
    """A freshly initialised float32 LlamaForCausalLM of a named workbench size at ``vocab`` tokens."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from workbench.modeling import HEAD_DIM, SIZES

    s = SIZES[size]
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=s.hidden_size, intermediate_size=s.intermediate_size,
                                        num_hidden_layers=s.num_layers, num_attention_heads=s.num_heads,
                                        num_key_value_heads=s.num_kv_heads, head_dim=HEAD_DIM,
                                        tie_word_embeddings=True, dtype="float32"))


def held_bytes(tensors) -> int:
    """Bytes of the tensors this process holds (a DTensor's local shard)."""
    from torch.distributed.tensor import DTensor

    local = [t.to_local() if isinstance(t, DTensor) else t for t in tensors if t is not None]
    return sum(t.numel() * t.element_size() for t in local)


def measure(size: str, vocab: int, global_batch: int, seq_len: int, steps: int, out_dir: str) -> list[dict]:
    """Train ``steps`` + 1 steps in this process (one of a launch, or alone); every process's numbers."""
    from accelerate import Accelerator

    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    accelerator = Accelerator(cpu=True)
    model = build_model(size, vocab)
    parameters = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model, optimizer = accelerator.prepare(model, optimizer)
    batch = global_batch // accelerator.num_processes
    generator = torch.Generator().manual_seed(accelerator.process_index)
    times = []
    for _ in range(steps + 1):
        ids = torch.randint(0, vocab, (batch, seq_len), generator=generator)
        t0 = time.perf_counter()
        accelerator.backward(model(input_ids=ids, labels=ids).loss)
        grads = held_bytes(p.grad for p in model.parameters())
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        accelerator.wait_for_everyone()
        times.append(time.perf_counter() - t0)
    state = [v for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v) and v.dim() > 0]
    row = torch.tensor([held_bytes(model.parameters()), grads, held_bytes(state), rss_start * 1024,
                        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024], dtype=torch.float64)
    rows = accelerator.gather(row.unsqueeze(0)).tolist() if accelerator.num_processes > 1 else [row.tolist()]
    tokens_per_s = global_batch * seq_len * steps / sum(times[1:])
    return [{"parameters": parameters, "param_bytes": r[0], "grad_bytes": r[1], "optimizer_bytes": r[2],
             "rss_start_bytes": r[3], "peak_rss_bytes": r[4], "tokens_per_s": tokens_per_s} for r in rows]


def baseline(args) -> list[dict]:
    """The unsharded run, in a fresh process of its own (so its peak memory is its own)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "baseline.json"
        subprocess.run([sys.executable, "-m", "benchmarks.fsdp_bench", "--worker", str(out), "--size", args.size,
                        "--vocab", str(args.vocab), "--batch", str(args.batch), "--seq-len", str(args.seq_len),
                        "--steps", str(args.steps)], cwd=ROOT, check=True)
        return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> int:
    """Run the baseline, then FSDP on 2 processes, and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="base", help="a workbench.modeling size (base: 8 layers, 384 wide)")
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--batch", type=int, default=8, help="global batch (rows of --seq-len tokens)")
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--steps", type=int, default=4, help="timed steps after one warm-up step")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    if args.worker:
        rows = measure(args.size, args.vocab, args.batch, args.seq_len, args.steps, "")
        Path(args.worker).write_text(json.dumps(rows))
        return 0

    sys.path.insert(0, str(ROOT))  # the launched processes import this module by name (not as __main__)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    from benchmarks import fsdp_bench
    from rounds.report import markdown_table
    from workbench.config import DistributedConfig
    from workbench.launch import run_call

    one = baseline(args)
    with tempfile.TemporaryDirectory() as tmp:
        two = run_call(DistributedConfig(strategy="fsdp", num_processes=2), fsdp_bench.measure, Path(tmp) / "fsdp",
                       size=args.size, vocab=args.vocab, global_batch=args.batch, seq_len=args.seq_len,
                       steps=args.steps, out_dir=tmp)
    mib = lambda b: f"{b / 2**20:.1f}"  # noqa: E731
    state = lambda r: r["param_bytes"] + r["grad_bytes"] + r["optimizer_bytes"]  # noqa: E731
    base = state(one[0])
    table = [[name, str(rank), mib(r["param_bytes"]), mib(r["grad_bytes"]), mib(r["optimizer_bytes"]), mib(state(r)),
              f"{state(r) / base:.3f}", mib(r["peak_rss_bytes"]), mib(r["peak_rss_bytes"] - r["rss_start_bytes"]),
              f"{r['tokens_per_s']:.0f}", f"{r['tokens_per_s'] / one[0]['tokens_per_s']:.2f}"]
             for name, rows in (("1 process", one), ("FSDP, 2 processes", two)) for rank, r in enumerate(rows)]
    print(f"\nmodel {args.size} at {args.vocab} tokens: {one[0]['parameters'] / 1e6:.2f}M parameters; global batch "
          f"{args.batch} x {args.seq_len} tokens; {args.steps} timed steps; AdamW, float32")
    print(markdown_table(["run", "rank", "params MiB", "grads MiB", "Adam MiB", "held MiB", "held / 1 process",
                          "peak RSS MiB", "RSS growth MiB", "tokens/s", "tokens/s / 1 process"], table))
    cut = max(state(r) for r in two) / base
    print(f"\nmeasured: FSDP on 2 processes holds {cut:.3f}x the parameter + gradient + optimizer bytes of 1 process.")
    # Arithmetic, not measured: an 8B Llama (8.03e9 parameters), bf16 mixed precision with float32 master
    # weights as FSDP keeps them: 4 B parameter + 4 B gradient + 8 B Adam = 16 B per parameter.
    full = 8.03e9 * 16 / 2**30
    print(f"arithmetic (not measured): an 8B model needs {full:.0f} GiB of parameters + gradients + Adam states "
          f"(16 B/parameter); FSDP full shard on 8 GPUs holds {full / 8:.0f} GiB per GPU plus one gathered decoder "
          f"layer at a time (~{218e6 * 4 / 2**30:.1f} GiB), against {full:.0f} GiB unsharded, which fits no "
          "80 GiB GPU.")
    if args.json:
        Path(args.json).write_text(json.dumps({"one": one, "fsdp": two}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
