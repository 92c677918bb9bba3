"""`workbench pretrain`, and :func:`run_pretrain`, which the orchestrator calls.

With ``pretrain.num_processes > 1`` the work runs in that many processes started by torchrun (which
``accelerate.Accelerator`` picks up: gloo on the CPU, NCCL on GPUs; ``accelerate launch --cpu`` would
need mpirun for several CPU processes); the launched processes re-enter through the same command.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from workbench.cli import add_config_args
from workbench.rundir import RunDir


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `workbench pretrain`."""
    parser = sub.add_parser(
        "pretrain", help="pretrain the base model from scratch into runs/<name>/base/ (resumes; skipped when done)")
    add_config_args(parser)
    parser.add_argument("--force", action="store_true", help="start over even if done or checkpointed")
    parser.set_defaults(func=_pretrain)


def _pretrain(args) -> int:
    cfg = args.cfg
    path = run_pretrain(cfg, RunDir(cfg.run_path), force=args.force)
    print(f"base model: {path}")
    return 0


def in_launched_process() -> bool:
    """True inside a process started by torchrun or `accelerate launch`."""
    return "LOCAL_RANK" in os.environ or int(os.environ.get("WORLD_SIZE", "1")) > 1


def run_pretrain(cfg, run: RunDir, force: bool = False) -> Path:
    """Pretrain ``runs/<name>/base/`` unless it is done (or ``force``); resumes from checkpoints."""
    if run.is_done("base") and not force:
        print(f"pretrain: {run.base} is done; skipped (--force to run again)", file=sys.stderr)
        return run.base
    if cfg.pretrain.num_processes > 1 and not in_launched_process():
        return launch(cfg, run, force)
    from workbench.pretrain.train import pretrain

    return pretrain(cfg, run, force=force)


def launch(cfg, run: RunDir, force: bool) -> Path:
    """Run the stage in ``num_processes`` processes with torchrun and wait for them."""
    import yaml

    from workbench.config_base import to_dict

    config_path = run.base / "launch_config.yaml"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False), encoding="utf-8")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", str(cfg.pretrain.num_processes),
               "-m", "rounds.main", "pretrain", "--config", str(config_path), "--run-dir", str(run.root),
               *(["--force"] if force else [])]
    subprocess.run(command, check=True)
    if not run.is_done("base"):
        raise RuntimeError(f"{run.base}: the launched processes finished without a done manifest")
    return run.base
