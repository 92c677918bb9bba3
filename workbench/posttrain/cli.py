"""`workbench sft`, `workbench dpo` and `workbench average`.

Each writes a ``manifest.json`` into its ``--out`` folder (``running``, then ``done`` or ``failed``); a
folder whose manifest says ``done`` is skipped unless ``--force``. The model appears in ``--out``
only once it is complete; an interrupted SFT or DPO resumes from its last checkpoint when the same
command is run again. Several processes: ``accelerate launch --multi_gpu --num_processes N -m rounds.main sft ...``
(on the CPU too: the workbench sets TRL's ``use_cpu``, so the processes train with DDP over gloo).
"""

from __future__ import annotations

import argparse
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


def _tracking(cfg, name: str) -> dict:
    from workbench.rundir import RunDir
    from workbench.tracking import trainer_kwargs, use_run_dir

    if cfg.tracking.backend != "none":
        use_run_dir(RunDir(cfg.run_path).tracking)
    return trainer_kwargs(cfg, name)


def _run(args, name: str, config, inputs: dict, work) -> int:
    """``work()`` as the stage ``name`` of the ``--out`` folder (workbench.stage.run_in_folder); print its metrics."""
    from workbench.rundir import is_done
    from workbench.stage import run_in_folder

    if is_done(args.out) and not args.force:
        print(f"{args.out}: done already (use --force to run again)")
    metrics = run_in_folder(name, args.out, work, inputs=inputs, config=config, cfg=args.cfg, force=args.force)
    print(f"{name}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                 for k, v in metrics.items() if k in _SHOWN))
    return 0


_SHOWN = ("models", "loss", "train_loss", "rewards/accuracies", "rewards/margins", "nll", "pairs_used", "skipped_rows",
          "rows", "global_step")


def _sft(args) -> int:
    from workbench.posttrain.sft import train_sft
    from workbench.stage import Result

    cfg = args.cfg
    inputs = {"init": args.init, **{f"data{i}": p for i, p in enumerate(args.data)}}
    return _run(args, "sft", cfg.sft, inputs, lambda: Result(
        train_sft(cfg.sft, args.data, args.init, args.out, seed=cfg.seed, tracking=_tracking(cfg, "sft")),
        {"model": Path(args.out)}))


def _dpo(args) -> int:
    from workbench.posttrain.dpo import train_dpo
    from workbench.preferences import read_jsonl
    from workbench.stage import Result

    cfg = args.cfg
    inputs = {"sft": args.sft, **{f"prefs{i}": p for i, p in enumerate(args.prefs)}}

    def work() -> Result:
        preferences = [p for path in args.prefs for p in read_jsonl(path)]
        return Result(train_dpo(cfg.dpo, preferences, args.sft, args.out, seed=cfg.seed,
                                tracking=_tracking(cfg, "dpo")), {"model": Path(args.out)})

    return _run(args, "dpo", cfg.dpo, inputs, work)


def _average(args) -> int:
    from workbench.posttrain.averaging import average_models
    from workbench.stage import Result

    cfg = args.cfg
    weights = args.weights or cfg.averaging.weights

    def work() -> Result:
        average_models(args.models, args.out, weights)
        return Result({"models": len(args.models)}, {"model": Path(args.out)},
                      {"weights": weights or [1.0] * len(args.models)})

    _run(args, "average", cfg.averaging, {f"model{i}": m for i, m in enumerate(args.models)}, work)
    print(f"average: {len(args.models)} models -> {args.out}")
    return 0
