"""Sampling throughput: vLLM against transformers.generate, and ``n=K`` against K copies of a prompt.

    .venv/bin/python benchmarks/sampling_bench.py                      # trains a small policy first (~2 min)
    .venv/bin/python benchmarks/sampling_bench.py --policy runs/demo/bootstrap

Random weights never stop, so every sample would run to the token limit and hide what vLLM does
well (continuous batching refills a finished sample's slot; transformers pads a batch until its
longest sample ends). Without ``--policy`` the script therefore first trains a tiny workbench
model for ``--train-steps`` on task-world "question -> short answer<|eot_id|>" conversations, so
samples stop at varied lengths. Then, on the same prompts with K samples each:

1. transformers: ``TransformersBackend`` (left-padded batches, each prompt repeated K times, one seeded generator per sample)
2. vLLM n=K:     ``VLLMBackend``, one request per prompt with ``SamplingParams(n=K)``
3. vLLM copies:  the same engine, each prompt sent K times with ``n=1``

and prints one table with samples/s, tokens/s and the ratios against the targets (vLLM >= 2x
transformers, n=K >= 1.3x copies).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def train_policy(out: Path, size: str, steps: int, seed: int = 0) -> Path:
    """Train a fresh workbench model on task-world conversations for ``steps`` steps of 16 rows."""
    import torch

    from workbench.modeling import count_parameters, create_model, save_model
    from workbench.tasks import generate
    from workbench.tokenizer import train_tokenizer

    tasks = generate(None, 4000, seed=seed)
    convs = [[{"role": "user", "content": t.prompt}, {"role": "assistant", "content": t.solution}] for t in tasks]
    tokenizer = train_tokenizer([t.prompt + "\n" + t.solution for t in tasks], vocab_size=1024)
    model = create_model(size, tokenizer, seed=seed)
    print(f"training a {count_parameters(model) / 1e6:.1f}M-parameter policy for {steps} steps ...", flush=True)
    ids = [tokenizer.apply_chat_template(c)["input_ids"] for c in convs]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    start = time.time()
    for step in range(steps):
        batch = [ids[i] for i in torch.randint(len(ids), (16,), generator=generator).tolist()]
        width = max(map(len, batch))
        input_ids = torch.full((len(batch), width), tokenizer.pad_token_id)
        labels = torch.full((len(batch), width), -100)
        for row, seq in enumerate(batch):
            input_ids[row, :len(seq)] = labels[row, :len(seq)] = torch.tensor(seq)
        for group in optimizer.param_groups:  # 1) linear warm-up over 20 steps, then constant
            group["lr"] = 3e-3 * min(1.0, (step + 1) / 20)
        loss = model(input_ids=input_ids, attention_mask=(labels != -100).long(), labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if (step + 1) % 50 == 0:
            print(f"  step {step + 1}  loss {loss.item():.3f}  {time.time() - start:.0f} s", flush=True)
    model.eval()
    return save_model(model, tokenizer, out)


def bench_prompts(n: int, seed: int) -> list[list[dict]]:
    """Fresh task-world prompts (another seed than training)."""
    from workbench.tasks import generate

    return [[{"role": "user", "content": t.prompt}] for t in generate(None, n, seed=seed)]


def measure(name: str, backend, prompts, *, n: int, copies: int, max_new_tokens: int) -> dict:
    """Generate ``copies`` x ``n`` samples per prompt at temperature 1 and time it."""
    sent = [p for p in prompts for _ in range(copies)]
    backend.generate(prompts[:2], n=n, temperature=1.0, top_p=1.0, max_new_tokens=8, seed=1)  # warm-up
    start = time.perf_counter()
    out = backend.generate(sent, n=n, temperature=1.0, top_p=1.0, max_new_tokens=max_new_tokens, seed=0)
    elapsed = time.perf_counter() - start
    gens = [g for gs in out for g in gs]
    tokens = sum(g.num_tokens for g in gens)
    return {"name": name, "samples": len(gens), "seconds": elapsed, "samples_per_s": len(gens) / elapsed,
            "tokens_per_s": tokens / elapsed, "mean_tokens": tokens / len(gens),
            "stop_rate": sum(g.finish_reason == "stop" for g in gens) / len(gens)}


def table(rows: list[dict], ratios: list[tuple[str, float, float]]) -> str:
    """One plain-text table."""
    lines = [f"{'backend':<24}{'samples':>9}{'seconds':>9}{'samples/s':>11}{'tokens/s':>10}{'mean tok':>10}{'stopped':>9}"]
    for r in rows:
        lines.append(f"{r['name']:<24}{r['samples']:>9}{r['seconds']:>9.1f}{r['samples_per_s']:>11.1f}"
                     f"{r['tokens_per_s']:>10.0f}{r['mean_tokens']:>10.1f}{r['stop_rate']:>9.0%}")
    lines.append("")
    for label, value, target in ratios:
        lines.append(f"{label:<46}{value:>6.2f}x   target >= {target}x   {'met' if value >= target else 'NOT met'}")
    return "\n".join(lines)


def main() -> None:
    """Parse arguments, get a policy, run the three measurements, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", help="a trained policy folder; trained here first when it does not exist "
                        "(default: a new temp folder)")
    parser.add_argument("--size", default="tiny", help="model size of the policy trained here")
    parser.add_argument("--train-steps", type=int, default=300, help="training steps (16 rows each) of the policy trained here")
    parser.add_argument("--prompts", type=int, default=64, help="prompts, each sampled K times")
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--hf-batch-size", type=int, default=4, help="prompts per transformers.generate call (x K rows)")
    parser.add_argument("--kv-cache-gib", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads of each backend (torch in this process, vLLM's bound OpenMP threads); on a "
                        "shared machine 1 avoids OpenMP spin-waits that made 2 threads 10x slower here")
    parser.add_argument("--skip", nargs="*", default=[], choices=["transformers", "copies"])
    args = parser.parse_args()

    from sampling.backends import TransformersBackend, VLLMBackend

    import torch

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ["VLLM_CPU_OMP_THREADS_BIND"] = f"0-{args.threads - 1}"
    torch.set_num_threads(args.threads)
    policy = Path(args.policy) if args.policy else Path(tempfile.mkdtemp(prefix="sampling_bench_")) / "policy"
    if not (policy / "config.json").exists():
        train_policy(policy, args.size, args.train_steps)
        print(f"policy saved to {policy} (pass --policy {policy} to reuse it)", flush=True)
    prompts = bench_prompts(args.prompts, seed=12345)
    kwargs = dict(max_new_tokens=args.max_new_tokens)
    rows = []
    if "transformers" not in args.skip:
        with TransformersBackend(policy, device="cpu", batch_size=args.hf_batch_size) as backend:
            rows.append(measure("transformers", backend, prompts, n=args.k, copies=1, **kwargs))
        print(rows[-1], flush=True)
    with VLLMBackend(policy, device="cpu", max_model_len=512, kv_cache_space_gib=args.kv_cache_gib) as backend:
        cache = backend.llm.llm_engine.vllm_config.cache_config
        print(f"vLLM prefix caching: {cache.enable_prefix_caching}, block size {cache.block_size}", flush=True)
        rows.append(measure(f"vllm n={args.k}", backend, prompts, n=args.k, copies=1, **kwargs))
        print(rows[-1], flush=True)
        if "copies" not in args.skip:
            rows.append(measure(f"vllm {args.k} copies", backend, prompts, n=1, copies=args.k, **kwargs))
            print(rows[-1], flush=True)
    by = {r["name"]: r for r in rows}
    ratios = []
    if "transformers" in by:
        ratios.append(("vLLM n=K / transformers (samples/s)",
                       by[f"vllm n={args.k}"]["samples_per_s"] / by["transformers"]["samples_per_s"], 2.0))
    if f"vllm {args.k} copies" in by:
        ratios.append(("vLLM n=K / K copies (samples/s)",
                       by[f"vllm n={args.k}"]["samples_per_s"] / by[f"vllm {args.k} copies"]["samples_per_s"], 1.3))
    print(f"\npolicy {policy}, {args.prompts} prompts x K={args.k}, max_new_tokens {args.max_new_tokens}, "
          f"temperature 1.0, {args.threads} thread(s) per backend on {os.cpu_count()} CPUs\n")
    print(table(rows, ratios))


if __name__ == "__main__":
    main()
