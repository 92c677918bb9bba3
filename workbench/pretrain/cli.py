"""`workbench pretrain`: the pretraining stage (:mod:`workbench.pretrain.stage`) on the run folder.

Several processes: the ``distributed`` section (the stage's training call runs under `accelerate
launch`, :mod:`workbench.launch`).
"""

from __future__ import annotations

import argparse
import sys

from workbench.cli import add_config_args
from workbench.rundir import RunDir
from workbench.stage import run_stage


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `workbench pretrain`."""
    parser = sub.add_parser(
        "pretrain", help="pretrain the base model from scratch into runs/<name>/base/ (resumes; skipped when done)")
    add_config_args(parser)
    parser.add_argument("--force", action="store_true", help="start over even if done or checkpointed")
    parser.set_defaults(func=_pretrain)


def _pretrain(args) -> int:
    from workbench.pretrain.stage import STAGE

    cfg = args.cfg
    run = RunDir(cfg.run_path)
    if run.is_done("base") and not args.force:
        print(f"pretrain: {run.base} is done; skipped (--force to run again)", file=sys.stderr)
    run_stage(STAGE, cfg, run, force=args.force)
    print(f"base model: {run.base}")
    return 0
