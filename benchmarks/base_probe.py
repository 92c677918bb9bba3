"""Can a base model copy from its prompt? Held-out items asked in the pretraining corpus's own formats.

Every held-out item of the task world needs the model to copy something from the prompt (a function
name, the operands, the words) or to retrieve a fact the corpus states. A base that cannot do that
gives the rounds nothing to build on, whatever post-training does. This probe asks base models (or
pretraining checkpoints, ``base/checkpoints/step-N/``) for exactly that, greedily, on the distinct
evaluation-side items of ``workbench eval`` (which no post-training prompt contains), in the corpus's
formats rather than the chat format the base never saw:

- code: ``# {fname}.py: Write a Python function {fname}(xs) that ...`` then ``def``: is the next
  word the prompt's function name?
- general, math, multilingual: ``Question: {prompt}`` then a newline: is the answer right (the
  task world's verifier), and for math is the first column line the reference's?

    .venv/bin/python benchmarks/base_probe.py --tokenizer runs/demo/tokenizer \\
        old=runs/a/base new=runs/b/base step1200=runs/b/base/checkpoints/step-001200

The first model is the baseline of the ratio column.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.evaluate import evaluation_tasks  # noqa: E402
from workbench.pretrain.checkpoint import load_checkpoint  # noqa: E402
from workbench.tasks import verify  # noqa: E402

COLUMNS = ("code_copy", "general", "math", "math_first_column", "multilingual")


def is_checkpoint(path: str) -> bool:
    """A pretraining checkpoint folder (``step-N/state.pt``) rather than a model folder."""
    return (Path(path) / "state.pt").is_file()


def load(spec: str, config_dir: str):
    """A model folder, or a pretraining checkpoint folder (architecture from ``config_dir``)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    if is_checkpoint(spec):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(config_dir))
        model.load_state_dict(load_checkpoint(Path(spec))["model"])
    else:
        model = AutoModelForCausalLM.from_pretrained(spec)
    return model.eval()


def greedy(model, tokenizer, prompt: str, max_new_tokens: int) -> str:
    """The greedy continuation of ``prompt`` up to its first blank line."""
    import torch

    ids = tokenizer(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id or 0)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).split("\n\n")[0]


def probe(model, tokenizer, n: int, seed: int) -> dict:
    """The shares of :data:`COLUMNS` on ``n`` held-out items per family."""
    result = {}
    code = evaluation_tasks(n, seed, ("code",))
    hits = 0
    for task in code:
        name = task.meta["fname"]
        text = greedy(model, tokenizer, f"# {name}.py: {task.prompt.rstrip('.')}\ndef", 6)
        hits += text.strip().startswith(name)
    result["code_copy"] = hits / n
    for family in ("general", "math", "multilingual"):
        tasks = evaluation_tasks(n, seed, (family,))
        answers = [greedy(model, tokenizer, f"Question: {t.prompt}\n", 80 if family == "math" else 24)
                   for t in tasks]
        result[family] = sum(verify(t, a).correct for t, a in zip(tasks, answers)) / n
        if family == "math":
            first = [(a.strip().splitlines() or [""])[0].strip() == t.solution.strip().splitlines()[0].strip()
                     for t, a in zip(tasks, answers)]
            result["math_first_column"] = sum(first) / n
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", help="name=MODEL_DIR or name=CHECKPOINT_DIR; the first is the baseline")
    parser.add_argument("--tokenizer", required=True, help="the run's tokenizer folder")
    parser.add_argument("--config-dir", default=None,
                        help="a model folder whose config.json the checkpoints use (default: the first folder given)")
    parser.add_argument("--n", type=int, default=40, help="held-out items per family")
    parser.add_argument("--seed", type=int, default=7, help="seed of the item draw")
    args = parser.parse_args(argv)

    import torch
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    specs = []
    for item in args.models:
        name, sep, path = item.partition("=")
        if not sep or not path:
            parser.error(f"{item!r}: expected name=PATH")
        specs.append((name, path))
    folders = [p for _, p in specs if not is_checkpoint(p)]
    config_dir = args.config_dir or (folders[0] if folders else None)
    if config_dir is None:  # every model given is a checkpoint
        parser.error("checkpoints need --config-dir (a model folder with the same architecture)")
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    rows = []
    for name, path in specs:
        rows.append((name, probe(load(path, config_dir), tokenizer, args.n, args.seed)))
        print(f"probed {name}", file=sys.stderr, flush=True)
    base_mean = sum(rows[0][1].values()) / len(COLUMNS)
    print(f"Held-out items in the corpus format, {args.n} per family, greedy (first row: baseline)\n")
    print("| model | " + " | ".join(COLUMNS) + " | mean | ratio |")
    print("| --- " * (len(COLUMNS) + 3) + "|")
    for name, res in rows:
        mean = sum(res.values()) / len(COLUMNS)
        ratio = f"{mean / base_mean:.2f}x" if base_mean else "n/a"
        print(f"| {name} | " + " | ".join(f"{res[c]:.2f}" for c in COLUMNS) + f" | {mean:.3f} | {ratio} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
