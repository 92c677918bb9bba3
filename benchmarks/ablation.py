"""Every stage measured: held-out accuracy per family of the rounds with parts of the recipe switched off.

    .venv/bin/python benchmarks/ablation.py                                   # demo config, 2 rounds, seed 0
    .venv/bin/python benchmarks/ablation.py --rounds 6 --seeds 0 1 2
    .venv/bin/python benchmarks/ablation.py --config configs/smoke.yaml --rounds 1 --out runs/ablation-smoke

Variants (``--variants``): ``full`` (the recipe: the reward model's best among samples the verifier
passed, then SFT and DPO), ``no_dpo`` (``rounds.dpo: false``), ``reward`` (rejection sampling by the
reward model alone, ``sampling.selection: reward``), ``random`` (a seeded random sample that stopped),
``verifier`` (a seeded random sample the verifier passed). The base and the bootstrap policy are made
once, in ``<out>/pretrained`` (or taken from ``--from-run``); per seed, ``<out>/seed_S/shared`` runs
round 1's preferences and reward model (no variant changes them), and every variant is a normal run
folder ``<out>/seed_S/<variant>`` starting from copies of those stages. Rerunning the same command
continues where it stopped. Prints, per variant, the last round's held-out accuracy per family
(``policy/eval.json``) with its mean and range over seeds, the gain over ``random``, and the two
targets: reward beats random; the reward model's gain over random is at least half the verifier's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

VARIANTS = {
    "full": [],
    "no_dpo": ["rounds.dpo=false"],
    "reward": ["sampling.selection=reward"],
    "random": ["sampling.selection=random"],
    "verifier": ["sampling.selection=verifier"],
}
PRE_ROUND = ("data", "tokenizer", "base", "bootstrap")
SHARED_FILES = ("reward_heldout", "annotations.sqlite")  # round 1's reward held-out set and annotation store


def log(message: str) -> None:
    """A progress line on stderr."""
    print(f"[ablation] {message}", file=sys.stderr, flush=True)


def copy_stages(src: Path, dst: Path, relpaths: list[str]) -> None:
    """Copy the done stage folders ``relpaths`` of run ``src`` into run ``dst`` (each atomically; done ones kept)."""
    from workbench.rundir import RunDir

    RunDir(src).copy_done_stages(RunDir(dst), relpaths, f"{dst}, which starts from it,")


def copy_shared_files(src: Path, dst: Path) -> None:
    """The run-level files round 1 wrote (held-out reward pairs, annotation store), unless ``dst`` has them."""
    for name in SHARED_FILES:
        if not (src / name).exists() or (dst / name).exists():
            continue
        tmp = dst / f".{name}.tmp"
        if (src / name).is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(src / name, tmp)
        else:
            shutil.copy2(src / name, tmp)
        tmp.rename(dst / name)


def load(config: str, run_dir: Path, seed: int, overrides: list[str]):
    """The run config of one folder (no tracking: the benchmark reads the manifests and eval.json)."""
    from rounds.full_config import load_config

    return load_config(config, [*overrides, f"run_dir={run_dir}", f"seed={seed}", "tracking.backend=none"])


def pretrained(args) -> Path:
    """The run whose data, tokenizer, base and bootstrap every variant copies: ``--from-run`` or one made once."""
    from rounds.orchestrator import Orchestrator

    if args.from_run:
        return Path(args.from_run)
    root = Path(args.out) / "pretrained"
    log(f"pretraining once into {root}")
    Orchestrator(load(args.config, root, args.seeds[0], args.set)).prepare()
    return root


def shared_round_one(args, source: Path, seed: int) -> Path:
    """``seed_S/shared``: the pre-round stages and round 1's preferences and reward model at seed ``seed``."""
    from rounds.orchestrator import Orchestrator
    from rounds.stages import preferences, reward
    from workbench.stage import run_stage

    root = Path(args.out) / f"seed_{seed}" / "shared"
    copy_stages(source, root, list(PRE_ROUND))
    orchestrator = Orchestrator(load(args.config, root, seed, args.set))
    for stage in (preferences.STAGE, reward.STAGE):
        run_stage(stage, orchestrator.cfg, orchestrator.run, 1, log=log)
    return root


def run_variant(args, shared: Path, seed: int, variant: str) -> Path:
    """One variant's rounds in ``seed_S/<variant>``, from copies of the shared stages; resumes when rerun."""
    from rounds.orchestrator import Orchestrator

    root = Path(args.out) / f"seed_{seed}" / variant
    copy_stages(shared, root, [*PRE_ROUND, "rounds/round_01/preferences", "rounds/round_01/reward"])
    copy_shared_files(shared, root)
    orchestrator = Orchestrator(load(args.config, root, seed, [*args.set, *VARIANTS[variant]]))
    orchestrator.prepare()  # every stage is done: only checks
    if not orchestrator.run_rounds(args.rounds):
        raise RuntimeError(f"{root}: a round is waiting for annotations; the ablation needs annotation.mode simulated")
    return root


def last_eval(root: Path, rounds: int) -> dict:
    """``per_family`` and ``mean`` of the last round's policy evaluation."""
    data = json.loads((root / "rounds" / f"round_{rounds:02d}" / "policy" / "eval.json").read_text())
    return {"per_family": data["per_family"], "mean": data["mean"]}


def summarize(results: dict[str, list[dict]]) -> dict:
    """Per variant: per-family and mean accuracy as mean/min/max over seeds; gains over random; the targets."""
    def spread(values):
        return {"mean": sum(values) / len(values), "min": min(values), "max": max(values)}

    table = {}
    for variant, runs in results.items():
        if not runs:
            continue
        families = sorted(runs[0]["per_family"])
        table[variant] = {"per_family": {f: spread([r["per_family"][f] for r in runs]) for f in families},
                          "mean": spread([r["mean"] for r in runs]), "seeds": len(runs)}
    base = table.get("random", {}).get("mean", {}).get("mean")
    for row in table.values():
        row["gain_over_random"] = None if base is None else row["mean"]["mean"] - base
    targets = {}
    if base is not None and "reward" in table:
        reward_gain = table["reward"]["gain_over_random"]
        targets["reward_beats_random"] = reward_gain > 0
        if "verifier" in table:
            verifier_gain = table["verifier"]["gain_over_random"]
            targets["reward_gain_at_least_half_the_verifiers"] = (
                reward_gain >= 0.5 * verifier_gain if verifier_gain > 0 else None)  # None: the verifier gains nothing
    return {"variants": table, "targets": targets}


def print_table(summary: dict, rounds: int) -> None:
    """The markdown table and the targets."""
    table = summary["variants"]
    if not table:
        print("no variant finished")
        return
    families = list(next(iter(table.values()))["per_family"])
    cell = lambda s: f"{s['mean']:.3f}" + (f" ({s['min']:.3f}-{s['max']:.3f})" if s["max"] > s["min"] else "")  # noqa: E731
    print(f"Held-out accuracy after round {rounds} (mean over seeds, range in brackets)\n")
    print("| variant | seeds | " + " | ".join(families) + " | mean | gain over random |")
    print("|---" * (len(families) + 4) + "|")
    for variant, row in table.items():
        gain = "" if row["gain_over_random"] is None else f"{row['gain_over_random']:+.3f}"
        print(f"| {variant} | {row['seeds']} | " + " | ".join(cell(row["per_family"][f]) for f in families)
              + f" | {cell(row['mean'])} | {gain} |")
    names = {"reward_beats_random": "reward-model selection beats random selection",
             "reward_gain_at_least_half_the_verifiers": "reward-model gain over random >= half the verifier's"}
    for key, met in summary["targets"].items():
        print(f"- {names[key]}: {'n/a (the verifier does not beat random)' if met is None else 'met' if met else 'NOT met'}")


def main(argv: list[str] | None = None) -> int:
    """Run (or resume) every variant for every seed, then print the table (and JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--out", default="runs/ablation", help="the folder holding every run of the ablation")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per variant (the table is the last round's)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="round seeds; the base is pretrained once")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--from-run", help="a run whose data, tokenizer, base and bootstrap are done, used instead "
                                           "of pretraining")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    parser.add_argument("--json", action="store_true", help="also print the summary as JSON")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds: at least 1")

    source = pretrained(args)
    results: dict[str, list[dict]] = {v: [] for v in args.variants}
    failed = []
    for seed in args.seeds:
        shared = shared_round_one(args, source, seed)
        for variant in args.variants:
            log(f"seed {seed}: {variant}")
            try:
                results[variant].append(last_eval(run_variant(args, shared, seed, variant), args.rounds))
            except Exception as exc:  # noqa: BLE001 - one broken variant must not hide the others' numbers
                log(f"seed {seed}: {variant} failed: {type(exc).__name__}: {exc}")
                failed.append(f"seed {seed} {variant}")
    summary = summarize(results)
    print_table(summary, args.rounds)
    if failed:
        print(f"- failed (rerun to resume): {', '.join(failed)}")
    if args.json:
        print(json.dumps(summary, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
