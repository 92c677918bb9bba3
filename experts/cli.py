"""`workbench experts train|eval`: make capability experts and measure them on their own family."""

from __future__ import annotations

import argparse
from pathlib import Path

from experts.config import DOMAINS
from workbench.cli import add_config_args


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `workbench experts train` and `workbench experts eval`."""
    parser = sub.add_parser("experts", help="capability experts (code, multilingual, math): train and evaluate",
                            description="An expert is the base continued-pretrained on a domain-heavy mix, then "
                            "SFT-ed on its domain's demonstrations that pass the domain's checks.")
    experts = parser.add_subparsers(dest="experts_command", metavar="ACTION", required=True)
    train = experts.add_parser("train", help="make runs/<name>/experts/<domain>/ (skipped when done)")
    train.add_argument("domain", choices=DOMAINS)
    add_config_args(train)
    train.add_argument("--force", action="store_true", help="redo the corpus, continued pretraining and SFT")
    train.set_defaults(func=_train)
    ev = experts.add_parser("eval", help="each trained expert vs the base (and a policy) on its own family")
    ev.add_argument("domains", nargs="*", metavar="DOMAIN", help=f"experts to evaluate, of {list(DOMAINS)} "
                    "(default: every trained one)")
    add_config_args(ev)
    ev.add_argument("--policy", help="a policy model folder to compare with (e.g. runs/demo/rounds/round_01/policy)")
    ev.add_argument("--n", type=int, help="fresh instances of the family (default: eval.n_per_family)")
    ev.add_argument("--out", help="JSON to write (default: runs/<name>/experts/eval.json)")
    ev.set_defaults(func=_eval)


def _train(args) -> int:
    from experts.train import train_expert
    from workbench.rundir import RunDir

    cfg = args.cfg
    path = train_expert(cfg, RunDir(cfg.run_path), args.domain, force=args.force)
    print(f"{args.domain} expert: {path}")
    return 0


def _eval(args) -> int:
    from experts.evaluation import compare, format_comparison
    from experts.train import expert_dir
    from workbench.rundir import RunDir, atomic_write_json

    cfg = args.cfg
    run = RunDir(cfg.run_path)
    unknown = sorted(set(args.domains) - set(DOMAINS))
    if unknown:
        raise ValueError(f"experts eval: unknown domains {unknown}; expected some of {list(DOMAINS)}")
    domains = args.domains or [d for d in DOMAINS if run.is_done(Path("experts") / d)]
    if not domains:
        raise FileNotFoundError(f"{run.root / 'experts'}: no trained expert; run `workbench experts train DOMAIN`")
    e, results = cfg.eval, {}
    for domain in domains:
        if not run.is_done(Path("experts") / domain):
            raise FileNotFoundError(f"{expert_dir(run, domain)}: not trained; run `workbench experts train {domain}`")
        models = {"expert": expert_dir(run, domain), "base": run.base}
        if args.policy:
            models["policy"] = Path(args.policy)
        results[domain] = compare(models, domain, e.n_per_family if args.n is None else args.n, e.seed,
                                  e.max_new_tokens, e.batch_size, cfg.resolved_device())
    out = Path(args.out) if args.out else run.root / "experts" / "eval.json"
    atomic_write_json(out, results)
    print(format_comparison(results))
    print(f"wrote {out}")
    return 0
