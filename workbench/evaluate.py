"""`workbench eval`: a model's accuracy on fresh, canonical task-world instances, per family.

Greedy decoding; each family gets ``n_per_family`` new instances drawn with the eval seed (which no
training stage uses), in exactly the canonical phrasings of TASKS.md. The result is a JSON-able
dict with ``per_family`` accuracies, their ``mean``, details per template and a few examples.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from workbench import chat
from workbench import tasks as task_world

Generate = Callable[[list[list[dict]], int], list[str]]  # (conversations, max_new_tokens) -> responses
EXAMPLES_PER_FAMILY = 2
VERIFY_WORKERS = 2  # code verification waits on sandbox children; two overlap well on two cores


def evaluate(model_dir: str | Path, n_per_family: int = 100, seed: int = 20261123, max_new_tokens: int = 160,
             batch_size: int = 32, generate: Generate | None = None, device: str = "cpu") -> dict:
    """Score ``model_dir`` per family on fresh canonical instances (greedy); see the module docstring."""
    start = time.monotonic()
    if n_per_family < 1:
        raise ValueError(f"n_per_family must be at least 1, got {n_per_family}")
    # 1) fresh canonical instances, the same for every model at this seed
    tasks = [t for family in task_world.FAMILIES
             for t in task_world.generate(family, n_per_family, seed, canonical_only=True)]
    # 2) greedy answers
    generate = generate or transformers_generator(model_dir, batch_size, device)
    responses = generate([chat.user_prompt(t.prompt) for t in tasks], max_new_tokens)
    if len(responses) != len(tasks):
        raise ValueError(f"the generator returned {len(responses)} responses for {len(tasks)} prompts")
    # 3) verify and summarise
    with ThreadPoolExecutor(VERIFY_WORKERS) as pool:
        verdicts = list(pool.map(task_world.verify, tasks, responses))
    result = summarise(tasks, responses, verdicts)
    result.update(model=str(model_dir), seed=seed, n_per_family=n_per_family, max_new_tokens=max_new_tokens,
                  seconds=round(time.monotonic() - start, 2))
    return result


def summarise(tasks: list, responses: list[str], verdicts: list) -> dict:
    """Accuracy and mean closeness per family and per template, their mean, and a few examples."""
    families: dict[str, dict] = {}
    examples = []
    for task, response, verdict in zip(tasks, responses, verdicts):
        fam = families.setdefault(task.family, {"n": 0, "correct": 0, "closeness": 0.0, "templates": {}})
        tpl = fam["templates"].setdefault(task.template, {"n": 0, "correct": 0})
        for counts in (fam, tpl):
            counts["n"] += 1
            counts["correct"] += int(verdict.correct)
        fam["closeness"] += verdict.closeness
        if sum(e["family"] == task.family for e in examples) < EXAMPLES_PER_FAMILY:
            examples.append({"family": task.family, "template": task.template, "prompt": task.prompt,
                             "response": response, "reference": task.reference, "correct": verdict.correct,
                             "detail": verdict.detail})
    for fam in families.values():
        fam["accuracy"] = fam["correct"] / fam["n"]
        fam["closeness"] = round(fam["closeness"] / fam["n"], 4)
        for tpl in fam["templates"].values():
            tpl["accuracy"] = tpl["correct"] / tpl["n"]
    per_family = {name: fam["accuracy"] for name, fam in families.items()}
    mean = sum(per_family.values()) / len(per_family) if per_family else 0.0
    return {"per_family": per_family, "mean": mean, "families": families, "examples": examples}


def transformers_generator(model_dir: str | Path, batch_size: int = 32, device: str = "cpu") -> Generate:
    """Batched greedy generation with transformers (left padding, stops at the end of the turn)."""
    from workbench.modeling import load_causal_lm

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    model, tokenizer = load_causal_lm(model_dir, device)
    model.eval()

    def generate(prompts: list[list[dict]], max_new_tokens: int) -> list[str]:
        out: list[str] = []
        for i in range(0, len(prompts), batch_size):
            out += _generate_batch(model, tokenizer, prompts[i:i + batch_size], max_new_tokens)
        return out

    return generate


def _generate_batch(model, tokenizer, prompts: list[list[dict]], max_new_tokens: int) -> list[str]:
    """Greedy completions of one batch of conversations."""
    import torch

    ids = [list(tokenizer.apply_chat_template(p, add_generation_prompt=True, return_dict=True)["input_ids"])
           for p in prompts]
    width = max(len(x) for x in ids)
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in ids], device=model.device)
    mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], device=model.device)
    stops = [tokenizer.convert_tokens_to_ids(chat.EOT), tokenizer.convert_tokens_to_ids(chat.EOS)]
    with torch.inference_mode():
        output = model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                do_sample=False, eos_token_id=stops, pad_token_id=pad)
    return [_decode_until(tokenizer, row[width:].tolist(), stops) for row in output]


def _decode_until(tokenizer, ids: list[int], stops: list[int]) -> str:
    """Text of ``ids`` up to the first stop token."""
    end = next((i for i, t in enumerate(ids) if t in stops), len(ids))
    return tokenizer.decode(ids[:end], skip_special_tokens=True)


def format_table(result: dict) -> str:
    """A plain-text table: accuracy and mean closeness per family, then the mean accuracy."""
    lines = [f"{'family':<14}{'n':>6}{'correct':>9}{'accuracy':>10}{'closeness':>11}"]
    for name, fam in result["families"].items():
        lines.append(f"{name:<14}{fam['n']:>6}{fam['correct']:>9}{fam['accuracy']:>10.1%}{fam['closeness']:>11.3f}")
    lines.append(f"{'mean':<14}{'':>6}{'':>9}{result['mean']:>10.1%}")
    return "\n".join(lines)


# -- the `workbench eval` command --------------------------------------------------------------------

def add_commands(subparsers) -> None:
    """Register `workbench eval`."""
    from workbench.cli import add_config_args

    parser = subparsers.add_parser(
        "eval", help="score a model on fresh task-world instances per family",
        description="Greedy answers of a model to fresh, canonical task-world instances (math, code, "
        "multilingual, general), verified by the task world's checkers; prints a table and writes JSON. "
        "The eval section of the config sets n_per_family, seed, max_new_tokens and batch_size.")
    parser.add_argument("--model", required=True, help="model folder in Hugging Face format (with its tokenizer)")
    add_config_args(parser)
    parser.add_argument("--out", help="JSON to write (default: <run dir>/eval/<model folder name>.json)")
    parser.add_argument("--n", type=int, help="instances per family (default: eval.n_per_family)")
    parser.set_defaults(func=run_eval_command)


def run_eval_command(args: argparse.Namespace) -> int:
    """`workbench eval`: evaluate, print the table, write the JSON atomically."""
    from workbench.rundir import atomic_write_json

    model_dir = Path(args.model)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"--model {model_dir}: not a model folder (no config.json); "
                                "pass a folder written by the workbench or any HF causal LM")
    cfg = args.cfg
    e = cfg.eval
    result = evaluate(model_dir, e.n_per_family if args.n is None else args.n, e.seed, e.max_new_tokens, e.batch_size,
                      device=cfg.resolved_device())
    out = Path(args.out) if args.out else cfg.run_path / "eval" / f"{model_dir.resolve().name}.json"
    atomic_write_json(out, result)
    print(format_table(result))
    print(f"wrote {out}")
    return 0
