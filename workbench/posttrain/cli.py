"""`workbench sft`, `workbench dpo` and `workbench average`.

Each writes a ``manifest.json`` into its ``--out`` folder (``running``, then ``done`` or ``failed``); a
folder whose manifest says ``done`` is skipped unless ``--force``. The model appears in ``--out``
only once it is complete; an interrupted SFT or DPO resumes from its last checkpoint when the same
command is run again. Several processes: ``accelerate launch --multi_gpu --num_processes N -m workbench sft ...``
(on the CPU too: the workbench sets TRL's ``use_cpu``, so the processes train with DDP over gloo).
"""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path

from workbench.cli import add_config_args


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register sft, dpo and average."""
    sft = sub.add_parser("sft", help="supervised fine-tuning on conversations (assistant tokens only)")
    sft.add_argument("--init", required=True, help="model folder to start from (Llama 3: the pretrained base)")
    sft.add_argument("--data", required=True, nargs="+", help='JSONL files of {"messages": [...]} rows')
    _common(sft)
    sft.set_defaults(func=_sft)

    dpo = sub.add_parser("dpo", help="the modified DPO of Llama 3 on preference data")
    dpo.add_argument("--sft", required=True, help="the SFT model folder (policy start and reference)")
    dpo.add_argument("--prefs", required=True, nargs="+", help="preference JSONL files (workbench.preferences)")
    _common(dpo)
    dpo.set_defaults(func=_dpo)

    avg = sub.add_parser("average", help="average checkpoints of one architecture (mergekit linear merge)")
    avg.add_argument("models", nargs="+", metavar="DIR", help="model folders to average (two or more)")
    avg.add_argument("--weights", type=float, nargs="+", help="one weight per model (default: averaging.weights, "
                                                              "else uniform)")
    _common(avg)
    avg.set_defaults(func=_average)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output model folder (gets a manifest.json)")
    parser.add_argument("--force", action="store_true", help="run again even if --out is done")
    add_config_args(parser)


def _stage(args, name: str, config, inputs: dict):
    """The --out folder's Stage on the main process (other ranks of a multi-process run write nothing)."""
    from workbench.rundir import Stage

    if int(os.environ.get("RANK", "0")) != 0:
        return contextlib.nullcontext(None)
    return Stage(Path(args.out), name, config=config, inputs=inputs)


def _skip(args) -> bool:
    from workbench.rundir import is_done

    if is_done(args.out) and not args.force:
        print(f"{args.out}: done already (use --force to run again)")
        return True
    return False


def _tracking(cfg, name: str) -> dict:
    from workbench.rundir import RunDir
    from workbench.tracking import trainer_kwargs, use_run_dir

    if cfg.tracking.backend != "none":
        use_run_dir(RunDir(cfg.run_path).tracking)
    return trainer_kwargs(cfg, name)


def _finish(cfg, st, name: str, metrics: dict) -> int:
    from workbench.tracking import log_stage

    if st is not None:
        st.metrics.update(metrics)
        st.output("model", st.path)
        log_stage(cfg, name, metrics)
    print(f"{name}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                 for k, v in metrics.items() if k in _SHOWN))
    return 0


_SHOWN = ("loss", "train_loss", "rewards/accuracies", "rewards/margins", "nll", "pairs_used", "skipped_rows",
          "rows", "global_step")


def _sft(args) -> int:
    from workbench.posttrain.sft import train_sft

    cfg = args.cfg
    if _skip(args):
        return 0
    inputs = {"init": args.init, **{f"data{i}": p for i, p in enumerate(args.data)}}
    with _stage(args, "sft", cfg.sft, inputs) as st:
        metrics = train_sft(cfg.sft, args.data, args.init, args.out, seed=cfg.seed, tracking=_tracking(cfg, "sft"))
        return _finish(cfg, st, "sft", metrics)


def _dpo(args) -> int:
    from workbench.posttrain.dpo import train_dpo
    from workbench.preferences import read_jsonl

    cfg = args.cfg
    if _skip(args):
        return 0
    preferences = [p for path in args.prefs for p in read_jsonl(path)]
    inputs = {"sft": args.sft, **{f"prefs{i}": p for i, p in enumerate(args.prefs)}}
    with _stage(args, "dpo", cfg.dpo, inputs) as st:
        metrics = train_dpo(cfg.dpo, preferences, args.sft, args.out, seed=cfg.seed, tracking=_tracking(cfg, "dpo"))
        return _finish(cfg, st, "dpo", metrics)


def _average(args) -> int:
    from workbench.posttrain.averaging import average_models

    cfg = args.cfg
    if _skip(args):
        return 0
    weights = args.weights or cfg.averaging.weights
    with _stage(args, "average", cfg.averaging, {f"model{i}": m for i, m in enumerate(args.models)}) as st:
        average_models(args.models, args.out, weights)
        st.extra["weights"] = weights or [1.0] * len(args.models)
        st.output("model", args.out)
    print(f"average: {len(args.models)} models -> {args.out}")
    return 0
