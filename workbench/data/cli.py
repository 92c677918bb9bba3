"""`workbench data build`: the pretraining corpus and its cleaning report."""

from __future__ import annotations

import argparse

from workbench.cli import add_config_args


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `workbench data build`."""
    data = sub.add_parser("data", help="the pretraining corpus (generate, plant noise, clean, mix)")
    data_sub = data.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = data_sub.add_parser(
        "build", help="build runs/<name>/data/: train, heldout and anneal JSONL plus report (skipped when done)")
    add_config_args(build)
    build.add_argument("--force", action="store_true", help="build again even if done")
    build.set_defaults(func=_build)


def _build(args) -> int:
    from workbench.data.build import build_data
    from workbench.rundir import RunDir, read_manifest

    cfg = args.cfg
    path = build_data(cfg, RunDir(cfg.run_path), force=args.force)
    metrics = (read_manifest(path) or {}).get("metrics", {})
    print(f"data: {path} ({metrics.get('train_documents')} train documents, "
          f"{metrics.get('train_chars')} characters; report in {path / 'report.md'})")
    if metrics.get("passed") is False:
        print("data: warning: the build missed a required number; see report.md")
    return 0
