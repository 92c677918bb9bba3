"""`workbench reward train`, `workbench reward score` and `workbench reward simulate`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from workbench.cli import add_config_args


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `workbench reward ...`."""
    reward = sub.add_parser("reward", help="train a reward model on preferences, or score responses with one")
    reward_sub = reward.add_subparsers(dest="action", required=True, metavar="ACTION")

    train = reward_sub.add_parser("train", help="train a reward model (HF sequence classification) on preference JSONL")
    add_config_args(train)
    train.add_argument("--base", required=True, help="pretrained base model folder (HF format)")
    train.add_argument("--prefs", required=True, nargs="+", help="preference JSONL file(s) (workbench.preferences)")
    train.add_argument("--heldout", nargs="+",
                       help="held-out preference files in any format workbench.formats reads "
                            "(default: reward.heldout_data, else reward.heldout_fraction of the prompts)")
    train.add_argument("--out", required=True, help="output folder: model, tokenizer and manifest.json")
    train.add_argument("--seed", type=int, help="training seed (default: the config's seed)")
    train.add_argument("--force", action="store_true", help="train again even if --out is done")
    train.set_defaults(func=_train)

    score = reward_sub.add_parser("score", help="score (prompt, response) records with a reward model")
    score.add_argument("--model", required=True, help="reward model folder")
    score.add_argument("--input", required=True,
                       help='JSONL with "prompt" (chat messages or a string) and "response" per line')
    score.add_argument("--out", help="output JSONL: each input record plus \"score\" (default: stdout)")
    score.add_argument("--device", default="cpu")
    score.add_argument("--batch-size", type=int, default=32)
    score.set_defaults(func=_score)

    simulate = reward_sub.add_parser(
        "simulate", help="write simulated task-world preferences (reward.synthetic) as preference JSONL")
    simulate.add_argument("--n", type=int, required=True, help="number of preferences")
    simulate.add_argument("--seed", type=int, required=True, help="seed of the task instances and the choices")
    simulate.add_argument("--edit-fraction", type=float, default=0.3,
                          help="share of strongly rated pairs that carry an edit (0: none, as for a held-out set)")
    simulate.add_argument("--split", choices=("posttrain", "eval"), default="posttrain",
                          help="side of the task world's held-out split the items come from (eval: a held-out "
                               "set, the items the evaluation asks; posttrain: training data)")
    simulate.add_argument("--out", required=True, help="output preference JSONL")
    simulate.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    simulate.set_defaults(func=_simulate)


def _train(args) -> int:
    from reward.train import train_reward_model
    from workbench.stage import Result, run_in_folder

    from workbench.rundir import is_done

    cfg = args.cfg
    out = Path(args.out)
    if is_done(out) and not args.force:
        print(f"{out}: done already (use --force to train again)")
    heldout_files = args.heldout or cfg.reward.heldout_data
    inputs = {"base": args.base, **{f"prefs_{i}": p for i, p in enumerate(args.prefs)},
              **{f"heldout_{i}": p for i, p in enumerate(heldout_files)}}

    def work() -> Result:
        from workbench.formats import load, records_of

        loaded = load("preferences", heldout_files, default_level=cfg.rounds.preference_level)
        metrics = train_reward_model(cfg, args.prefs, args.base, out, heldout=records_of(loaded) if loaded else None,
                                     seed=cfg.seed if args.seed is None else args.seed)
        return Result(metrics, {"model": out},
                      {"heldout_data_formats": [item.describe() for item in loaded]} if loaded else {})

    metrics = run_in_folder("reward", out, work, inputs=inputs, config=cfg.reward, cfg=cfg, force=args.force)
    print(json.dumps(metrics, indent=2))
    return 0


def read_score_input(path: str | Path) -> list[dict]:
    """Records with a prompt (messages, or a string taken as one user turn) and a response; errors name file:line."""
    from workbench import chat
    from workbench.jsonl import iter_jsonl_numbered, message_problems

    records = []
    for lineno, record in iter_jsonl_numbered(path):
        if not isinstance(record, dict):
            raise ValueError(f"{path}:{lineno}: expected an object with \"prompt\" (messages or string) "
                             "and \"response\" (string)")
        found = [] if isinstance(record.get("response"), str) else ["field 'response' must be a string"]
        if not isinstance(record.get("prompt"), str):
            found += message_problems(record.get("prompt"), "prompt")
        if found:
            raise ValueError(f"{path}:{lineno}: " + "; ".join(found))
        if isinstance(record["prompt"], str):
            record["prompt"] = chat.user_prompt(record["prompt"])
        records.append(record)
    return records


def _score(args) -> int:
    from reward.scoring import RewardScorer
    from workbench.jsonl import write_jsonl

    records = read_score_input(args.input)
    scorer = RewardScorer(args.model, device=args.device, batch_size=args.batch_size)
    try:
        scores = scorer.score([r["prompt"] for r in records], [r["response"] for r in records])
    finally:
        scorer.close()
    scored = [{**r, "score": s} for r, s in zip(records, scores)]
    if args.out:
        write_jsonl(scored, args.out)
    else:
        sys.stdout.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in scored)
    return 0


def _simulate(args) -> int:
    from collections import Counter

    from reward.synthetic import simulated_preferences
    from workbench.preferences import write_jsonl

    if args.n < 1:
        raise ValueError("--n: must be at least 1")
    if not 0.0 <= args.edit_fraction <= 1.0:
        raise ValueError("--edit-fraction: must be in [0, 1]")
    out = Path(args.out)
    if out.exists() and not args.force:
        raise ValueError(f"{out}: exists already (use --force to overwrite)")
    records = simulated_preferences(args.n, args.seed, edit_fraction=args.edit_fraction, split=args.split)
    write_jsonl(records, out)
    levels = Counter(r.level for r in records)
    print(f"{out}: {len(records)} preferences ({', '.join(f'{k} {v}' for k, v in sorted(levels.items()))}; "
          f"{sum(r.edited is not None for r in records)} with an edit)")
    return 0
