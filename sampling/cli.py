"""`workbench sample`: rejection sampling of a prompts file with a policy and a reward model."""

from __future__ import annotations

import argparse
import json
import logging


def add_commands(subparsers) -> None:
    """Add `workbench sample`."""
    from workbench.cli import add_config_args

    parser = subparsers.add_parser(
        "sample", help="rejection sampling: K samples per prompt, the reward model keeps the best",
        description="For each prompt, sample sampling.k responses from the policy (vLLM or transformers), "
        "score them with the reward model and keep the best; writes every candidate as parquet and the "
        "best per prompt as sft.jsonl into --out. Killed mid-way, the same command resumes.",
    )
    parser.add_argument("--policy", required=True, help="the policy model folder (HF format)")
    parser.add_argument("--reward", default=None, help="the reward model folder (HF sequence classifier); "
                        "not needed with sampling.selection verifier or random")
    parser.add_argument("--prompts", required=True,
                        help='prompts JSONL: {"id": ..., "messages": [...], "task": {...} | null} per line')
    parser.add_argument("--out", required=True, help="the stage folder, e.g. runs/demo/rounds/round_01/samples")
    parser.add_argument("--seed", type=int, default=None, help="sampling seed (default: the config's seed)")
    parser.add_argument("--force", action="store_true", help="discard earlier output in --out and start over")
    add_config_args(parser)
    parser.set_defaults(func=run)

    worker = subparsers.add_parser(
        "sample-worker", help="join a running rejection-sampling stage as one more worker (another GPU or machine)",
        description="Claims shards of the stage folder --out (on a file system shared with the machine that runs "
        "the stage) until none is left; the stage must be running with sampling.workers > 1, which writes "
        "the folder's worker.json (models, prompts, seed, settings).")
    worker.add_argument("--out", required=True, help="the stage folder, e.g. runs/demo/rounds/round_01/samples")
    worker.set_defaults(func=run_worker_command)


def run(args: argparse.Namespace) -> int:
    """Run rejection sampling and print its metrics as JSON."""
    from sampling.rejection import run_rejection_sampling

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    cfg = args.cfg
    metrics = run_rejection_sampling(cfg.sampling, args.policy, args.reward, args.prompts, args.out,
                                     seed=cfg.seed if args.seed is None else args.seed,
                                     device=cfg.resolved_device(), force=args.force)
    print(json.dumps(metrics, indent=2))
    return 0


def run_worker_command(args: argparse.Namespace) -> int:
    """`workbench sample-worker`: claim shards of a running stage until none is left."""
    from sampling.rejection import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    run_worker(args.out)
    return 0
