"""Command-line options that every stage command shares (the `workbench` entry point is `rounds.main`)."""

from __future__ import annotations

import argparse


def add_config_args(parser: argparse.ArgumentParser) -> None:
    """--config, --run-dir and KEY=VALUE overrides; the entry point loads them into ``args.cfg``."""
    parser.add_argument("--config", help="YAML config (default: configs/demo.yaml, the embedded default)")
    parser.add_argument("--run-dir", help="run folder (default: runs/<name> from the config)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. --set sampling.k=16 (repeatable)")
