"""`workbench demo`, `workbench rounds run|status`, `workbench round run N`, `workbench report`."""

from __future__ import annotations

import argparse

from workbench.cli import add_config_args

KEY_METRIC = {
    "data": "train_documents", "tokenizer": "vocab_size", "base": "heldout_loss_after_anneal/mean",
    "bootstrap": "accuracy_mean", "preferences": "preferences", "reward": "heldout_accuracy",
    "samples": "mean_score_selected", "sft": "train_loss", "dpo": "rewards_accuracies", "policy": "accuracy_mean",
}


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register the orchestrator's commands."""
    demo = sub.add_parser("demo", help="the whole pipeline: data, pretrain, 6 rounds, report (embedded default)")
    add_config_args(demo)
    demo.set_defaults(func=_demo)

    rounds = sub.add_parser("rounds", help="run or inspect the rounds of a run")
    rounds_sub = rounds.add_subparsers(dest="action", required=True, metavar="ACTION")
    run = rounds_sub.add_parser("run", help="prepare (data, base, bootstrap) and run rounds 1..N, resuming")
    add_config_args(run)
    run.add_argument("--rounds", type=int, help="how many rounds (default: rounds.num_rounds)")
    run.set_defaults(func=_rounds_run)
    status = rounds_sub.add_parser("status", help="a table of every stage: status, key metric, wall time")
    add_config_args(status)
    status.set_defaults(func=_rounds_status)

    one = sub.add_parser("round", help="run one round")
    one_sub = one.add_subparsers(dest="action", required=True, metavar="ACTION")
    round_run = one_sub.add_parser("run", help="run round N (its earlier rounds must be done)")
    round_run.add_argument("n", type=int, help="round number (1-based)")
    add_config_args(round_run)
    round_run.set_defaults(func=_round_run)

    report = sub.add_parser("report", help="write runs/<name>/report/index.html from the run's manifests")
    add_config_args(report)
    report.set_defaults(func=_report)


def _orchestrator(args):
    from rounds.orchestrator import Orchestrator

    return Orchestrator(args.cfg)


def _finish(finished: bool) -> int:
    if not finished:
        print("stopped: waiting for annotations; run the same command again once the quota is met "
              "(`workbench annotate serve` to annotate)")
    return 0


def _demo(args) -> int:
    return _finish(_orchestrator(args).demo())


def _rounds_run(args) -> int:
    orch = _orchestrator(args)
    orch.prepare()
    return _finish(orch.run_rounds(args.rounds))


def _round_run(args) -> int:
    orch = _orchestrator(args)
    orch.prepare()
    return _finish(orch.run_round(args.n))


def status_rows(run_root) -> list[tuple[str, str, str, str, str]]:
    """(round, stage, status, key metric, wall time) for every stage of the run."""
    from workbench.notebook import stages
    from workbench.rundir import RunDir

    rows = []
    for info in stages(RunDir(run_root)):
        m = info.manifest or {}
        key = KEY_METRIC.get(info.stage, "")
        value = m.get("metrics", {}).get(key)
        metric = f"{key}={value:.3f}" if isinstance(value, float) else (f"{key}={value}" if value is not None else "")
        wall = f"{m['wall_time_s']:.0f}s" if "wall_time_s" in m else ""
        rows.append((str(info.round or "-"), info.stage, info.status, metric, wall))
    return rows


def _rounds_status(args) -> int:
    cfg = args.cfg
    rows = [("round", "stage", "status", "key metric", "wall time")] + status_rows(cfg.run_path)
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


def _report(args) -> int:
    from rounds.report import write_report

    print(write_report(args.cfg.run_path))
    return 0
