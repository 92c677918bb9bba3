"""Core sub-commands: `workbench config show`, `tokenizer train`, `model init`, `launch follow`, `convert`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from workbench.cli import add_config_args


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register the core commands."""
    config = sub.add_parser("config", help="show the resolved config (YAML + overrides)")
    config_sub = config.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = config_sub.add_parser("show", help="print the resolved config as YAML")
    add_config_args(show)
    show.set_defaults(func=_config_show)

    tok = sub.add_parser("tokenizer", help="train the byte-level BPE tokenizer on the run's corpus")
    tok_sub = tok.add_subparsers(dest="action", required=True, metavar="ACTION")
    train = tok_sub.add_parser("train", help="train into runs/<name>/tokenizer/ (skipped when done)")
    add_config_args(train)
    train.add_argument("--force", action="store_true", help="train again even if done")
    train.set_defaults(func=_tokenizer_train)

    model = sub.add_parser("model", help="create models with the model factory")
    model_sub = model.add_subparsers(dest="action", required=True, metavar="ACTION")
    init = model_sub.add_parser("init", help="save a freshly initialised Llama model in HF format")
    init.add_argument("--tokenizer", required=True, help="HF tokenizer folder (with the chat template)")
    init.add_argument("--size", default="tiny", help="named size (tiny, small, base, 125m, 1b, 8b)")
    init.add_argument("--seed", type=int, default=0)
    init.add_argument("--out", required=True, help="output folder")
    init.set_defaults(func=_model_init)

    launch = sub.add_parser("launch", help="multi-machine training: machines 1..N-1 join machine 0's launches")
    launch_sub = launch.add_subparsers(dest="action", required=True, metavar="ACTION")
    follow = launch_sub.add_parser(
        "follow", help="on a machine of rank > 0: join every training launch machine 0 starts in the shared run folder",
        description="Run this on every machine but machine 0, with the same config and run folder (a shared "
        "file system) and --set distributed.machine_rank=R; machine 0 runs `workbench rounds run`.")
    add_config_args(follow)
    follow.add_argument("--idle", type=float, default=None,
                        help="stop after this many seconds without a new launch (default: run until interrupted)")
    follow.set_defaults(func=_launch_follow)

    convert = sub.add_parser(
        "convert", help="check the user's prompts, preferences or SFT data and convert them to one JSONL file",
        description="Read JSONL, parquet or datasets folders in any supported format (workbench.formats), check "
        "every record, and write the workbench's format (or TRL's with --to trl). Nothing is written when a "
        "record is bad; the detected format of each file is printed.")
    convert.add_argument("--kind", required=True, choices=("prompts", "preferences", "sft"))
    convert.add_argument("inputs", nargs="+", help="input files or folders")
    convert.add_argument("--out", help="output .jsonl file (omit to check only)")
    convert.add_argument("--to", choices=("workbench", "trl"), default="workbench",
                         help="preferences only: trl writes conversational prompt/chosen/rejected rows")
    convert.add_argument("--level", default="better", help="the level of a preference that has none")
    convert.set_defaults(func=_convert)


def _config_show(args) -> int:
    from workbench.config_base import to_dict

    yaml.safe_dump(to_dict(args.cfg), sys.stdout, sort_keys=False)
    return 0


def _tokenizer_train(args) -> int:
    from workbench.rundir import RunDir
    from workbench.stages import train_run_tokenizer

    cfg = args.cfg
    path = train_run_tokenizer(cfg, RunDir(cfg.run_path), force=args.force)
    print(f"tokenizer: {path}")
    return 0


def _model_init(args) -> int:
    from workbench.modeling import count_parameters, create_model, save_model
    from workbench.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(args.tokenizer)
    model = create_model(args.size, tokenizer, seed=args.seed)
    save_model(model, tokenizer, Path(args.out))
    print(f"{args.size}: {count_parameters(model):,} parameters -> {args.out}")
    return 0


def _launch_follow(args) -> int:
    from workbench.launch import follow

    cfg = args.cfg
    print(f"following {cfg.run_path} as machine {cfg.distributed.machine_rank} of {cfg.distributed.num_machines}")
    joined = follow(cfg.run_path, cfg.distributed, idle_seconds=args.idle)
    print(f"joined {joined} launch(es)")
    return 0


def _convert(args) -> int:
    import json

    from workbench import formats
    from workbench.jsonl import write_jsonl

    if args.to == "trl" and args.kind != "preferences":
        raise ValueError("--to trl: only for --kind preferences (prompts and SFT rows are TRL's format already)")
    if args.out and not args.out.endswith(".jsonl"):
        raise ValueError(f"--out {args.out}: expected a .jsonl file")
    loaded = formats.load(args.kind, args.inputs, default_level=args.level)
    for item in loaded:
        print(json.dumps(item.describe(), ensure_ascii=False))
    if args.out:
        records = formats.records_of(loaded)
        rows = (formats.trl_preference_rows(records) if args.to == "trl"
                else list(formats.iter_kind_records(args.kind, loaded)))
        write_jsonl(rows, args.out)
        print(f"convert: {len(rows)} rows -> {args.out}")
    return 0
