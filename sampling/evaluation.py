"""`workbench eval` and the rounds' evaluations: the task world answered through a sampling backend.

Evaluation generates through the same backends as rejection sampling (:mod:`sampling.backends`), so
the chat template, the stop tokens and the decoding are the ones the policy samples with.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from sampling.backends import Backend, make_backend
from workbench.evaluate import Generate, evaluate, format_table


def greedy_generator(backend: Backend, seed: int) -> Generate:
    """The evaluation's ``generate(conversations, max_new_tokens)``: one greedy answer per conversation."""
    def generate(prompts: list[list[dict]], max_new_tokens: int) -> list[str]:
        outs = backend.generate(prompts, n=1, temperature=0.0, top_p=1.0, max_new_tokens=max_new_tokens, seed=seed)
        return [o[0].text for o in outs]

    return generate


def evaluate_model(model_dir: str | Path, eval_cfg, sampling_cfg, backend: str, *, device: str = "auto",
                   n_per_family: int | None = None) -> dict:
    """Task-world accuracy of ``model_dir`` (the ``eval`` section's instances) through the named backend."""
    scfg = dataclasses.replace(sampling_cfg, backend=backend, batch_size=eval_cfg.batch_size)
    n = eval_cfg.n_per_family if n_per_family is None else n_per_family
    with make_backend(scfg, model_dir, device=device) as b:
        return evaluate(model_dir, n, eval_cfg.seed, eval_cfg.max_new_tokens, greedy_generator(b, eval_cfg.seed))


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
    parser.add_argument("--backend", choices=["vllm", "transformers"],
                        help="generation backend (default: rounds.generation_backend, as the rounds evaluate)")
    parser.set_defaults(func=run_eval_command)


def run_eval_command(args: argparse.Namespace) -> int:
    """`workbench eval`: evaluate, print the table, write the JSON atomically."""
    from workbench.rundir import atomic_write_json

    model_dir = Path(args.model)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"--model {model_dir}: not a model folder (no config.json); "
                                "pass a folder written by the workbench or any HF causal LM")
    cfg = args.cfg
    result = evaluate_model(model_dir, cfg.eval, cfg.sampling, args.backend or cfg.rounds.generation_backend,
                            device=cfg.resolved_device(), n_per_family=args.n)
    out = Path(args.out) if args.out else cfg.run_path / "eval" / f"{model_dir.resolve().name}.json"
    atomic_write_json(out, result)
    print(format_table(result))
    print(f"wrote {out}")
    return 0
