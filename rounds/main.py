"""The `workbench` command line (the composition root): every package's sub-commands, one config loader.

Packages add sub-commands with ``add_commands(subparsers)`` and mark those that take a run's config
with :func:`workbench.cli.add_config_args`; this module loads that config (``--config``, ``--set``,
``--run-dir``) into ``args.cfg`` before the command runs, so no package imports the full config.
Run it as ``workbench`` or ``python -m rounds.main``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

# Modules that add sub-commands through `add_commands(subparsers)`, in --help order.
COMMAND_MODULES = (
    "workbench.commands",
    "sampling.evaluation",
    "workbench.data.cli",
    "workbench.pretrain.cli",
    "reward.cli",
    "sampling.cli",
    "workbench.posttrain.cli",
    "preference_ui.cli",
    "rounds.cli",
    "experts.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """The parser with every package's sub-commands."""
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Llama 3 post-training workbench: pretrain a base model, then run rounds of "
        "reward modelling, rejection sampling, SFT and DPO, with human or simulated annotation.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    return parser


def load_args_config(args: argparse.Namespace):
    """The config named by --config/--set, with --run-dir applied."""
    from rounds.full_config import load_config

    overrides = list(args.overrides)
    if getattr(args, "run_dir", None):
        overrides.append(f"run_dir={json.dumps(args.run_dir)}")  # a string, whatever YAML would read
    return load_config(args.config, overrides)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `workbench` console script."""
    from workbench.config_base import ConfigError
    from workbench.rundir import exit_on_os_error

    args = build_parser().parse_args(argv)
    try:
        if hasattr(args, "overrides"):  # the command took add_config_args
            args.cfg = load_args_config(args)
        return int(args.func(args) or 0)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        print(f"workbench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk, a read-only folder: the path and what to do
        return exit_on_os_error(args.command, exc)
    except KeyboardInterrupt:
        print(f"workbench {args.command}: interrupted; run the same command again to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
