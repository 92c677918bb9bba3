"""Held-out math accuracy of chat models: greedy, and K samples per prompt (what rejection sampling sees).

For each model: greedy accuracy, pass@1 (mean over samples), pass@K (a prompt with at least one right
sample of K), the mean number of right samples per prompt, the share of right samples whose column steps
also pass the math expert's step check, and the share of samples cut off at ``max_new_tokens``; per
template too. The items are the evaluation side of the held-out split (``workbench eval``'s items).

    .venv/bin/python benchmarks/math_steps_bench.py old=runs/a/bootstrap new=runs/b/bootstrap

With ``--train BASE``: first SFT of the base BASE on ``--examples`` curated math demonstrations (post-training
items, the config's ``sft`` settings) twice, once with the one-line solutions of before (``a op b = c``, then
the answer) and once with the worked column solutions of ``task.solution``; then both are measured.

    .venv/bin/python benchmarks/math_steps_bench.py --train runs/smoke/base --workdir /tmp/math_steps
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experts.math_checks import check_math  # noqa: E402
from sampling.backends import TransformersBackend  # noqa: E402
from workbench.evaluate import evaluation_tasks  # noqa: E402
from workbench.tasks import verify  # noqa: E402


def measure(model_dir: str, n_items: int, k: int, max_new_tokens: int, temperature: float, seed: int,
            eval_seed: int, batch_size: int) -> dict:
    """The numbers of one model (module docstring)."""
    tasks = evaluation_tasks(n_items, eval_seed, ("math",))
    prompts = [[{"role": "user", "content": t.prompt}] for t in tasks]
    keys = [f"math-{i}" for i in range(len(tasks))]
    start = time.monotonic()
    with TransformersBackend(model_dir, device="cpu", batch_size=batch_size) as backend:
        greedy = backend.generate(prompts, n=1, temperature=0.0, top_p=1.0, max_new_tokens=max_new_tokens, seed=seed)
        sampled = backend.generate(prompts, n=k, temperature=temperature, top_p=1.0, max_new_tokens=max_new_tokens,
                                   seed=seed, keys=keys)
    per_template: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for task, [g], samples in zip(tasks, greedy, sampled):
        row = per_template[task.template]
        right = [verify(task, s.text).correct for s in samples]
        row["items"] += 1
        row["greedy"] += verify(task, g.text).correct
        row["pass@1"] += sum(right) / k
        row[f"pass@{k}"] += any(right)
        row["right_per_prompt"] += sum(right)
        row["right_samples"] += sum(right)
        row["steps_pass"] += sum(check_math(task, s.text)["steps"] for s, ok in zip(samples, right) if ok)
        row["cut_off"] += sum(s.finish_reason == "length" for s in samples) / k
    total: dict[str, float] = defaultdict(float)
    for row in per_template.values():
        for name, value in row.items():
            total[name] += value
    out = {}
    for name, row in [*sorted(per_template.items()), ("all", total)]:
        n = row["items"]
        out[name] = {"items": int(n), "greedy": row["greedy"] / n, "pass@1": row["pass@1"] / n,
                     f"pass@{k}": row[f"pass@{k}"] / n, "right_per_prompt": row["right_per_prompt"] / n,
                     "steps_pass_of_right": row["steps_pass"] / row["right_samples"] if row["right_samples"] else None,
                     "cut_off": row["cut_off"] / n}
    return {"model": model_dir, "k": k, "temperature": temperature, "max_new_tokens": max_new_tokens,
            "seconds": round(time.monotonic() - start, 1), "by_template": out,
            "example": {"prompt": tasks[0].prompt, "greedy": greedy[0][0].text}}


STYLES = ("one-line", "worked", "spelled")


def demonstrations(n: int, seed: int, style: str) -> list[dict]:
    """``n`` curated math demonstrations (post-training items) in ``style``: ``one-line`` (``a op b = c``, the
    answer), ``worked`` (``task.solution``'s columns), ``spelled`` (a line spelling both operands digit by
    digit, e.g. ``273 is 2 7 3, 329 is 3 2 9``, then the columns: a number of up to 3 digits is one token)."""
    from workbench.tasks import generate

    rows = []
    for task in generate("math", n, seed=seed):
        a, op, b, result = task.meta["a"], task.meta["op"], task.meta["b"], task.reference
        answer = {"one-line": f"{a} {op} {b} = {result}\nAnswer: {result}", "worked": task.solution,
                  "spelled": f"{a} is {' '.join(str(a))}, {b} is {' '.join(str(b))}\n{task.solution}"}[style]
        rows.append({"messages": [{"role": "user", "content": task.prompt}, {"role": "assistant", "content": answer}],
                     "source": "curated"})
    return rows


def train_arms(base: str, workdir: Path, n: int, config: str, seed: int, styles: list[str]) -> dict[str, str]:
    """SFT of ``base`` on demonstrations of each style; returns label -> model folder."""
    from rounds.full_config import load_config
    from workbench.posttrain.sft import train_sft

    cfg = load_config(config)
    models = {}
    for label in styles:
        out = workdir / label
        if not (out / "model.safetensors").exists():
            start = time.monotonic()
            metrics = train_sft(cfg.sft, demonstrations(n, seed, label), base, out, seed=seed, tracking=None)
            print(f"{label}: SFT in {time.monotonic() - start:.0f} s, loss {metrics.get('loss')}", flush=True)
        models[label] = str(out)
    return models


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="label=model_dir")
    parser.add_argument("--train", metavar="BASE", help="first SFT this base on demonstrations of --styles")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/math_steps"), help="--train: where the models go")
    parser.add_argument("--examples", type=int, default=400, help="--train: curated math demonstrations")
    parser.add_argument("--config", default="configs/demo.yaml", help="--train: the sft settings of this config")
    parser.add_argument("--styles", default="one-line,worked", help=f"--train: demonstration styles, of {STYLES}")
    parser.add_argument("--items", type=int, default=160, help="held-out math items")
    parser.add_argument("--k", type=int, default=16, help="samples per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-seed", type=int, default=20261123, help="the demo's eval.seed")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    models = [spec.partition("=")[::2] for spec in args.models]
    if args.train:
        models += list(train_arms(args.train, args.workdir, args.examples, args.config, args.seed,
                                        args.styles.split(",")).items())
    results = {}
    for label, path in models:
        results[label] = measure(path, args.items, args.k, args.max_new_tokens, args.temperature, args.seed,
                                 args.eval_seed, args.batch_size)
        print(json.dumps({label: results[label]}, indent=1), flush=True)
    k = args.k
    print(f"\n| model | template | items | greedy | pass@1 | pass@{k} | right of {k} | steps pass (of right) | cut off |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, result in results.items():
        for template, r in result["by_template"].items():
            steps = "-" if r["steps_pass_of_right"] is None else f"{r['steps_pass_of_right']:.0%}"
            print(f"| {label} | {template} | {r['items']} | {r['greedy']:.1%} | {r['pass@1']:.1%} | {r[f'pass@{k}']:.1%} "
                  f"| {r['right_per_prompt']:.2f} | {steps} | {r['cut_off']:.1%} |")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
