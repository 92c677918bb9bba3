"""How many strongly rated pairs a round's preferences stage yields, and its time, per ``rounds.prompts_per_round``.

    .venv/bin/python benchmarks/preference_yield.py --run runs/smoke --round 2 --sizes 24 96 \
        [--config configs/smoke.yaml]

Runs the real preferences stage (both models answer, the simulated annotator ranks) of round
``--round`` of a finished run, once per size, each on a copy of the run without that round and
without the annotation store, so the run itself is left as it is. Prints per size the wall time of
the stage and of its two parts (both models answering; the annotators ranking), the preferences per
level, and the pairs DPO would train on (``dpo.levels``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path


def copy_run(run: Path, n: int, dest: Path) -> Path:
    """The run's folders up to round ``n - 1`` (models and manifests), without the annotation store."""
    shutil.copytree(run, dest, ignore=shutil.ignore_patterns("annotations.sqlite*", "tracking", "report"))
    for later in (dest / "rounds").glob("round_*"):
        if int(later.name.split("_")[1]) >= n:
            shutil.rmtree(later)
    return dest


def timing(module, name: str, seconds: dict) -> None:
    """Wrap ``module.name`` so that its wall time adds up in ``seconds[name]``."""
    inner = getattr(module, name)

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t0

    setattr(module, name, timed)


def main(argv: list[str] | None = None) -> int:
    """Run the preferences stage at each size and print the table (and JSON with --json)."""
    from rounds.full_config import load_config
    from rounds.stages import preferences
    from workbench.posttrain.dpo import preference_pairs
    from workbench.preferences import read_jsonl
    from workbench.rundir import RunDir
    from workbench.stage import run_stage

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a run folder whose rounds before --round are done")
    parser.add_argument("--round", type=int, default=2, help="the round whose preferences stage is measured")
    parser.add_argument("--sizes", type=int, nargs="+", default=[24, 96], help="rounds.prompts_per_round values")
    parser.add_argument("--config", default="configs/smoke.yaml")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args(argv)

    results, parts = [], {}
    timing(preferences, "preference_items", parts)
    timing(preferences, "annotate", parts)
    with tempfile.TemporaryDirectory(prefix="preference-yield-") as scratch:
        for size in args.sizes:
            root = copy_run(Path(args.run), args.round, Path(scratch) / f"run_{size}")
            cfg = load_config(args.config, [f"run_dir={root}", "tracking.backend=none",
                                            f"rounds.prompts_per_round={size}"])
            parts.clear()
            t0 = time.perf_counter()
            run_stage(preferences.STAGE, cfg, RunDir(root), args.round)
            seconds = time.perf_counter() - t0
            prefs = read_jsonl(RunDir(root).round_stage(args.round, "preferences") / "preferences.jsonl")
            rows, counts = preference_pairs(prefs, cfg.dpo.levels)
            strong, _ = preference_pairs(prefs, ("significantly_better", "better"))
            results.append({"prompts_per_round": size, "seconds": round(seconds, 1),
                            "generate_seconds": round(parts["preference_items"], 1),
                            "annotate_seconds": round(parts["annotate"], 1), "preferences": len(prefs),
                            "levels": dict(Counter(p.level for p in prefs)), "strong_pairs": len(strong),
                            "dpo_pairs_at_config_levels": len(rows)})
            print(f"prompts_per_round {size}: {seconds:.1f} s ({results[-1]['generate_seconds']} s answering, "
                  f"{results[-1]['annotate_seconds']} s annotating), {len(prefs)} preferences "
                  f"{dict(Counter(p.level for p in prefs))}, {len(strong)} pairs rated better or more, "
                  f"{len(rows)} at dpo.levels {cfg.dpo.levels}", file=sys.stderr, flush=True)
    print("| prompts_per_round | stage s | answering s | annotating s | preferences | pairs rated better+ "
          "| pairs at dpo.levels |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['prompts_per_round']} | {r['seconds']} | {r['generate_seconds']} | {r['annotate_seconds']} "
              f"| {r['preferences']} | {r['strong_pairs']} | "
              f"{r['dpo_pairs_at_config_levels']} |")
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
