"""The `workbench` command line: one sub-command per stage, each package adding its own."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

# Modules that add sub-commands through `add_commands(subparsers)`, in --help order.
COMMAND_MODULES = (
    "workbench.commands",
    "workbench.evaluate",
    "workbench.data.cli",
    "workbench.pretrain.cli",
    "reward.cli",
    "sampling.cli",
    "workbench.posttrain.cli",
    "preference_ui.cli",
    "rounds.cli",
    "experts.cli",
)


def add_config_args(parser: argparse.ArgumentParser) -> None:
    """The options every stage command shares: --config, --run-dir and KEY=VALUE overrides."""
    parser.add_argument("--config", help="YAML config (default: configs/demo.yaml, the embedded default)")
    parser.add_argument("--run-dir", help="run folder (default: runs/<name> from the config)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. --set sampling.k=16 (repeatable)")


def load_args_config(args: argparse.Namespace):
    """The config named by --config/--set, with --run-dir applied."""
    from workbench.config import load_config

    overrides = list(args.overrides)
    if getattr(args, "run_dir", None):
        overrides.append(f"run_dir={args.run_dir}")
    return load_config(args.config, overrides)


def build_parser() -> argparse.ArgumentParser:
    """The parser with every installed sub-command."""
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Llama 3 post-training workbench: pretrain a base model, then run rounds of "
        "reward modelling, rejection sampling, SFT and DPO, with human or simulated annotation.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name).add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `workbench` console script."""
    from workbench.config_base import ConfigError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        print(f"workbench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"workbench {args.command}: interrupted; run the same command again to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
