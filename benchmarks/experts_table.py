"""Capability experts, measured on a finished run: the expert against the base and the round policy on its
own family, and a round trained with the experts' samples against the same round without them.

    .venv/bin/python benchmarks/experts_table.py --run runs/demo
    .venv/bin/python benchmarks/experts_table.py --run runs/demo-tiny --domains code math --json /tmp/experts.json

Part 1 trains each missing expert into ``<run>/experts/<domain>/`` (``experts.train.train_expert``) and
compares it with the base and round N's policy on ``eval.n_per_family`` fresh instances of its family
(``experts.evaluation.compare``, greedy).

Part 2 redoes round N with the experts in a sibling run folder (``<run>-experts/`` unless ``--sibling``):
``experts.rounds.prepare_sibling_run`` copies the run's data, tokenizer, base, bootstrap, the experts,
every earlier round and round N's preferences, reward model and prompts; then ``workbench round run N
--set experts.enabled=[...]`` runs the rest of round N there (rejection sampling, SFT, DPO, evaluation).
Both sides sample the same prompts with the same K, reward model, SFT/DPO settings and seeds; the only
differences are who samples the experts' families and that the experts' kept samples join the SFT mix.
The compute of each side (samples, SFT rows and tokens, wall time per stage) is printed beside the
accuracies, and the experts' own training cost separately.

Everything is resumable: done experts, copied stages and finished round stages are skipped on a rerun
(the evaluations of part 1 are redone). The config is the run's own ``config.yaml`` unless ``--config``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from statistics import mean

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experts.config import DOMAINS
from rounds.report import markdown_table
from workbench.rundir import STAGES, RunDir, read_manifest


def load_run_config(run: Path, config: str | None):
    """The run's config (its config.yaml, or ``config``) with ``run_dir`` set to ``run``."""
    from rounds.full_config import load_config

    return load_config(config or run / "config.yaml", [f"run_dir={run}"])


def wall(path: Path) -> float | None:
    """A stage's wall time from its manifest (None when it has none)."""
    return (read_manifest(path) or {}).get("wall_time_s")


def fmt(value, digits: int = 1) -> str:
    """A table cell: numbers rounded, None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown(header: list[str], rows: list[list]) -> str:
    """A Markdown table, cells through :func:`fmt`."""
    return markdown_table(header, [[fmt(c) for c in row] for row in rows])


# -- part 1: each expert against the base and the round policy -----------------------------------------

def expert_training_cost(run: RunDir, domain: str) -> dict:
    """What making an expert cost, from its manifests: corpus, continued pretraining and SFT."""
    from experts.train import cpt_run, expert_dir

    cpt = cpt_run(run, domain)
    metrics = read_manifest(expert_dir(run, domain))["metrics"]
    parts = {"corpus_s": wall(cpt.data), "cpt_s": wall(cpt.base), "sft_s": wall(expert_dir(run, domain))}
    return {**parts, "total_s": sum(v for v in parts.values() if v), "cpt_tokens": metrics.get("cpt_tokens"),
            "cpt_steps": metrics.get("cpt_steps"), "sft_tokens": metrics.get("sft_num_tokens"),
            "demonstrations": metrics.get("demonstrations"), "domain_token_share": metrics.get("domain_token_share"),
            "cpt_heldout_loss_before": metrics.get("cpt_heldout_loss_before"),
            "cpt_heldout_loss_after": metrics.get("cpt_heldout_loss_after")}


def experts_vs_base_and_policy(cfg, run: RunDir, domains: list[str], n: int) -> dict:
    """Train the missing experts, then each expert, the base and round ``n``'s policy on the expert's family."""
    from experts.evaluation import compare
    from experts.train import expert_dir, train_expert

    policy = run.round_stage(n, "policy")
    if not run.is_done(policy.relative_to(run.root)):
        raise FileNotFoundError(f"{policy}: round {n} is not done in {run.root}")
    results = {}
    for domain in domains:
        start = time.monotonic()
        train_expert(cfg, run, domain)
        trained_s = time.monotonic() - start
        e = cfg.eval
        accuracy = compare({"expert": expert_dir(run, domain), "base": run.base, "policy": policy}, domain,
                           e.n_per_family, e.seed, e.max_new_tokens, e.batch_size, cfg.resolved_device())
        results[domain] = {"accuracy": {k: {kk: vv for kk, vv in v.items() if kk != "examples"}
                                        for k, v in accuracy.items()},
                           "training": expert_training_cost(run, domain),
                           "trained_in_this_call_s": round(trained_s, 1),
                           "eval_s": round(time.monotonic() - start - trained_s, 1)}
    return results


def part1_tables(results: dict, n: int) -> str:
    """The accuracy table and the experts' training cost."""
    acc = [[d, r["accuracy"]["expert"]["n"]] + [r["accuracy"][m]["accuracy"] for m in ("expert", "base", "policy")]
           + [r["accuracy"]["expert"]["accuracy"] - r["accuracy"][m]["accuracy"] for m in ("base", "policy")]
           for d, r in results.items()]
    acc = [[row[0], row[1], *(f"{v:.2f}" for v in row[2:5]), *(f"{v:+.2f}" for v in row[5:])] for row in acc]
    cost = [[d, t["demonstrations"], t["cpt_steps"], t["cpt_tokens"],
             f"{fmt(t['cpt_heldout_loss_before'], 2)} -> {fmt(t['cpt_heldout_loss_after'], 2)}",
             t["corpus_s"], t["cpt_s"], t["sft_s"], t["total_s"]]
            for d, t in ((d, r["training"]) for d, r in results.items())]
    return "\n\n".join([
        "Each expert on its own family (fresh instances, greedy), accuracy:\n\n" + markdown(
            ["family", "n", "expert", "base", f"round {n} policy", "expert - base", "expert - policy"], acc),
        "The experts' own training (not part of the round's compute):\n\n" + markdown(
            ["expert", "demonstrations", "cpt steps", "cpt tokens", "held-out loss on its domain",
             "corpus s", "cpt s", "sft s", "total s"], cost)])


# -- part 2: round n with and without expert data ------------------------------------------------------

def run_round_with_experts(config: Path, sibling: Path, n: int, domains: list[str]) -> float:
    """``workbench round run n`` in the sibling run with the experts enabled (the orchestrator's own path)."""
    command = [sys.executable, "-m", "rounds.main", "round", "run", str(n), "--config", str(config),
               "--run-dir", str(sibling), "--set", f"experts.enabled=[{','.join(domains)}]"]
    print("$ " + " ".join(command), file=sys.stderr, flush=True)
    start = time.monotonic()
    subprocess.run(command, check=True, stdout=sys.stderr)  # its logs beside ours, not in the tables
    return time.monotonic() - start


def check_sibling_domains(sibling: Path, domains: list[str]) -> None:
    """Refuse a sibling run made with other experts (its round would mix two experiments)."""
    import yaml

    path = sibling / "config.yaml"
    if path.exists():
        enabled = (yaml.safe_load(path.read_text()).get("experts") or {}).get("enabled")
        if enabled and sorted(enabled) != sorted(domains):
            raise SystemExit(f"{sibling}: made with experts {enabled}, not {domains}; delete it or pass --sibling")


def family_sampling(stage: Path) -> dict[str, dict]:
    """Per task family: prompts, samples, verified share and kept samples of a rejection-sampling stage."""
    import pyarrow.parquet as pq

    from workbench.jsonl import read_jsonl

    families = {str(r["id"]): (r.get("task") or {}).get("family") for r in read_jsonl(stage / "prompts.jsonl")}
    out: dict[str, dict] = {}
    for shard in sorted((stage / "candidates").glob("*.parquet")):
        for row in pq.read_table(shard, columns=["prompt_id", "verified", "chosen"]).to_pylist():
            f = out.setdefault(families[row["prompt_id"]], {"prompts": set(), "samples": 0, "verified": 0, "kept": 0})
            f["prompts"].add(row["prompt_id"])
            f["samples"] += 1
            f["verified"] += bool(row["verified"])
            f["kept"] += bool(row["chosen"])
    return {k: {**v, "prompts": len(v["prompts"]), "pass_rate": v["verified"] / v["samples"]} for k, v in out.items()}


def round_record(run: RunDir, n: int) -> dict:
    """Round ``n``'s accuracies, compute and per-family sampling, from its manifests and files."""
    samples = run.round_stage(n, "samples")
    samplers = {"policy": samples, **{p.name: p for p in sorted((samples / "experts").glob("*")) if p.is_dir()}}
    sampling = {name: read_manifest(path)["metrics"] for name, path in samplers.items()}
    by_family = {}
    for name, path in samplers.items():
        for family, stats in family_sampling(path).items():
            by_family[family] = {"sampler": name, **stats}
    sft, dpo = (read_manifest(run.round_stage(n, s))["metrics"] for s in ("sft", "dpo"))
    policy = run.round_stage(n, "policy")
    walls = {s: wall(run.round_stage(n, s)) for s in STAGES}
    expert_walls = [wall(p) or 0.0 for name, p in samplers.items() if name != "policy"]
    walls["samples_experts"] = sum(expert_walls) if expert_walls else None
    return {
        "policy_eval": json.loads((policy / "eval.json").read_text())["per_family"],
        "sft_eval": json.loads((policy / "sft_eval.json").read_text())["per_family"],
        "compute": {
            "prompts": sum(m["num_prompts"] for m in sampling.values()),
            "samples": sum(m["num_candidates"] for m in sampling.values()),
            "generated_tokens": round(sum(m["num_candidates"] * (m["mean_tokens"] or 0) for m in sampling.values())),
            "kept_samples": sum(m["num_selected"] for m in sampling.values()),
            "sft_rows": sft.get("examples"), "sft_curated_rows": sft.get("curated_examples"),
            "sft_tokens": round(sft.get("num_tokens") or 0), "sft_steps": sft.get("global_step"),
            "dpo_pairs": dpo.get("pairs_used"), "dpo_steps": dpo.get("global_step"),
            "wall_time_s": walls, "round_wall_time_s": sum(v for k, v in walls.items() if v),
        },
        "sampling": sampling,
        "sampling_by_family": by_family,
    }


def part2_tables(without: dict, with_: dict, n: int, domains: list[str]) -> str:
    """Accuracy per family (SFT and policy, both sides), the compute of each side, sampling per family."""
    families = sorted(without["policy_eval"])
    label = f"with experts ({', '.join(domains)})"
    acc = []
    for model, key in (("SFT", "sft_eval"), ("policy", "policy_eval")):
        for side, record in (("without experts", without), (label, with_)):
            acc.append([f"round {n} {model}, {side}", *(f"{record[key][f]:.2f}" for f in families),
                        f"{mean(record[key].values()):.3f}"])
        acc.append([f"round {n} {model}: with - without",
                    *(f"{with_[key][f] - without[key][f]:+.2f}" for f in families),
                    f"{mean(with_[key].values()) - mean(without[key].values()):+.3f}"])
    cw, cx = without["compute"], with_["compute"]
    rows = [[name, cw[key], cx[key]] for name, key in (
        ("prompts rejection-sampled", "prompts"), ("samples generated", "samples"),
        ("tokens generated", "generated_tokens"), ("samples kept", "kept_samples"),
        ("SFT rows (mix)", "sft_rows"), ("of which curated", "sft_curated_rows"), ("SFT tokens trained", "sft_tokens"),
        ("SFT steps", "sft_steps"), ("DPO pairs", "dpo_pairs"), ("DPO steps", "dpo_steps"))]
    walls = [("preferences (one stage, copied)", "preferences"), ("reward (one stage, copied)", "reward"), ("samples: policy", "samples"),
             ("samples: experts", "samples_experts"), ("sft", "sft"), ("dpo", "dpo"), ("policy (evaluation)", "policy")]
    rows += [[f"wall s, {name}", cw["wall_time_s"][key], cx["wall_time_s"][key]] for name, key in walls]
    rows.append(["wall s, round total", cw["round_wall_time_s"], cx["round_wall_time_s"]])
    fams = sorted(set(without["sampling_by_family"]) | set(with_["sampling_by_family"]))

    def cell(record, f):
        s = record["sampling_by_family"].get(f)
        return f"{s['sampler']}: {s['samples']} samples, {s['pass_rate']:.0%} pass, {s['kept']} kept" if s else "-"

    per_family = [[f, cell(without, f), cell(with_, f)] for f in fams]
    return "\n\n".join([
        f"Round {n} with vs without expert data, accuracy on fresh instances:\n\n"
        + markdown(["model", *families, "mean"], acc),
        f"Round {n}'s compute on each side (samples, SFT, DPO; wall time per stage from the manifests):\n\n"
        + markdown(["", "without experts", label], rows),
        "Rejection sampling per family (who sampled, verifier pass rate, samples kept for SFT):\n\n"
        + markdown(["family", "without experts", label], per_family)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="a finished run folder (e.g. runs/demo)")
    parser.add_argument("--config", help="its config (default: <run>/config.yaml)")
    parser.add_argument("--domains", nargs="+", default=list(DOMAINS), choices=DOMAINS, help="the experts")
    parser.add_argument("--round", type=int, default=1, help="the round to compare with and to redo with experts")
    parser.add_argument("--sibling", help="the run folder of the round with experts (default: <run>-experts)")
    parser.add_argument("--json", help="write every number here")
    parser.add_argument("--threads", type=int, help="torch threads here and in the round's process "
                        "(1 is much faster when other jobs load the cores)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)

    from experts.rounds import prepare_sibling_run

    start = time.monotonic()
    run_root = Path(args.run)
    config = Path(args.config) if args.config else run_root / "config.yaml"
    cfg = load_run_config(run_root, args.config)
    run, n = RunDir(run_root), args.round
    sibling = Path(args.sibling) if args.sibling else run_root.with_name(run_root.name + "-experts")

    # 1) the experts (trained when missing) against the base and round n's policy on their families;
    #    the trainers' logs go to stderr so that stdout holds the tables
    with contextlib.redirect_stdout(sys.stderr):
        experts = experts_vs_base_and_policy(cfg, run, args.domains, n)
    print(part1_tables(experts, n), flush=True)

    # 2) round n again in a sibling run, with the experts sampling their families
    check_sibling_domains(sibling, args.domains)
    copied = prepare_sibling_run(run_root, sibling, n, args.domains)
    print(f"\nsibling run {sibling}: copied {len(copied)} stages", file=sys.stderr)
    round_s = None
    if not RunDir(sibling).is_done(RunDir(sibling).round_stage(n, "policy").relative_to(sibling)):
        round_s = run_round_with_experts(config, sibling, n, args.domains)
    without, with_ = round_record(run, n), round_record(RunDir(sibling), n)
    print("\n" + part2_tables(without, with_, n, args.domains))

    total_s = time.monotonic() - start
    print(f"\nwall time of this call: {total_s:.0f} s (round {n} with experts: "
          f"{'already done' if round_s is None else f'{round_s:.0f} s'})")
    if args.json:
        report = {"run": str(run_root), "sibling": str(sibling), "round": n, "domains": args.domains,
                  "n_per_family": cfg.eval.n_per_family, "eval_seed": cfg.eval.seed, "experts": experts,
                  "without_experts": without, "with_experts": with_, "round_with_experts_s": round_s,
                  "wall_time_s": round(total_s, 1)}
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
