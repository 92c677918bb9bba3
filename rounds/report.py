"""The run report: per-round metrics and plots in ``runs/<name>/report/index.html`` (and index.md)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from workbench.notebook import open_run
from workbench.rundir import atomic_write_text

# (stage, metric key, column title) of the per-round table, in the order of a round.
ROUND_COLUMNS = (
    ("reward", "heldout_accuracy", "RM acc"),
    ("reward", "heldout_accuracy_significantly_better", "RM acc (sig. better)"),
    ("samples", "mean_score_all", "RS reward (all)"),
    ("samples", "mean_score_selected", "RS reward (kept)"),
    ("samples", "random_pick_pass_rate", "RS pass: random sample"),
    ("samples", "reward_pick_pass_rate", "RS pass: RM's pick"),
    ("sft", "train_loss", "SFT loss"),
    ("dpo", "rewards_accuracies", "DPO reward acc"),
    ("dpo", "rewards_margins", "DPO margin"),
    ("policy", "sft_accuracy_mean", "SFT task acc"),
    ("policy", "accuracy_mean", "policy task acc"),
    ("policy", "reward/mean_reward", "policy reward (eval prompts)"),
    ("policy", "reward/win_rate", "win rate vs previous"),
)


def _fmt(value) -> str:
    return "" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))


def round_table(run) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one row per round with the key metric of each stage."""
    status = run.status()
    rows = []
    for n in sorted(int(r) for r in status["round"].dropna().unique()):
        in_round = status[status["round"] == n].set_index("stage")
        row = [str(n)]
        for stage, key, _ in ROUND_COLUMNS:
            value = in_round.loc[stage].get(key) if stage in in_round.index and key in in_round.columns else None
            row.append(_fmt(None if value != value else value))  # NaN -> blank
        rows.append(row)
    header = ["round"] + [title for _, _, title in ROUND_COLUMNS]
    # a column no round has (the reward suite of a task-world run, task accuracy of a user's run) is left out
    keep = [0] + [i for i in range(1, len(header)) if any(row[i] for row in rows)]
    return [header[i] for i in keep], [[row[i] for i in keep] for row in rows]


def plots(run, out_dir: Path) -> dict[str, str]:
    """Make the report's figures; returns {title: file name} (PNG files in ``out_dir``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = {}
    ev = run.evaluation()
    if not ev.empty:
        fig, ax = plt.subplots(figsize=(7, 4))
        rounds = ev[(ev["round"] > 0) & ~ev["model"].str.endswith("_sft")]
        for family, part in rounds.groupby("family"):
            line, = ax.plot(part["round"], part["accuracy"], marker="o", label=family)
            base = ev[(ev["model"] == "base") & (ev["family"] == family)]["accuracy"]
            if not base.empty:
                ax.axhline(float(base.iloc[0]), color=line.get_color(), linestyle=":", linewidth=1)
        ax.set(xlabel="round", ylabel="task-world accuracy", title="Policy accuracy per family (dotted: base)",
               ylim=(-0.02, 1.02))
        ax.legend()
        figures["Task-world accuracy"] = _save(fig, out_dir / "accuracy.png")
    metrics = run.metrics()
    panels = [("reward", ["heldout_accuracy", "heldout_accuracy_significantly_better"], "Reward model held-out accuracy"),
              ("samples", ["mean_score_all", "mean_score_selected"], "Rejection sampling: reward of all vs kept"),
              ("dpo", ["rewards_accuracies", "rewards_margins"], "DPO reward accuracy and margin")]
    for stage, keys, title in panels:
        part = metrics[(metrics["stage"] == stage) & (metrics["metric"].isin(keys))]
        if part.empty:
            continue
        fig, ax = plt.subplots(figsize=(7, 3.2))
        for key, series in part.groupby("metric"):
            ax.plot(series["round"], series["value"], marker="o", label=key)
        ax.set(xlabel="round", title=title)
        ax.legend()
        figures[title] = _save(fig, out_dir / f"{stage}.png")
    status = run.status()
    timed = status.dropna(subset=["wall_time_s"])
    if not timed.empty:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        labels = [s if pd_isna(r) else f"r{int(r)} {s}" for r, s in zip(timed["round"], timed["stage"])]
        ax.barh(labels, timed["wall_time_s"] / 60)
        ax.invert_yaxis()
        ax.set(xlabel="minutes", title="Wall time per stage")
        fig.set_size_inches(7, max(3, 0.18 * len(labels)))
        figures["Wall time per stage"] = _save(fig, out_dir / "wall_time.png")
    plt.close("all")
    return figures


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table of string cells (the report's tables; benchmarks print theirs with it too)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _frame_table(frame) -> str:
    """A DataFrame as a Markdown table (index first)."""
    header = [str(frame.index.name or "")] + [str(c) for c in frame.columns]
    return markdown_table(header, [[str(i)] + [_fmt(v) for v in row]
                                   for i, row in zip(frame.index, frame.values.tolist())])


def pd_isna(value) -> bool:
    """True for None and NaN."""
    return value is None or value != value


def _save(fig, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    return path.name


def write_report(run_root: str | Path) -> Path:
    """Write ``report/index.html`` and ``report/index.md`` for the run; returns the HTML path."""
    run = open_run(run_root)
    out = run.dir.report
    figures = plots(run, out)
    header, rows = round_table(run)
    ev = run.evaluation()
    pivot = ev.pivot_table(index="model", columns="family", values="accuracy") if not ev.empty else None
    md = [f"# Run report: {run.dir.root.name}", "", "## Per round", "", markdown_table(header, rows)]
    if pivot is not None:
        md += ["", "## Task-world accuracy (fresh instances)", "", _frame_table(pivot.round(3))]
    md += ["", *[f"![{title}]({name})" for title, name in figures.items()]]
    atomic_write_text(out / "index.md", "\n".join(md) + "\n")
    body = [f"<h1>Run report: {html.escape(run.dir.root.name)}</h1>", "<h2>Per round</h2><table border=1 cellpadding=4>",
            "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"]
    body += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows]
    body.append("</table>")
    if pivot is not None:
        body += ["<h2>Task-world accuracy (fresh instances)</h2>", pivot.round(3).to_html()]
    for title, name in figures.items():
        data = base64.b64encode((out / name).read_bytes()).decode()
        body.append(f"<h2>{html.escape(title)}</h2><img src='data:image/png;base64,{data}'>")
    page = "<!doctype html><meta charset='utf-8'><title>Run report</title>" + "\n".join(body)
    return atomic_write_text(out / "index.html", page)
