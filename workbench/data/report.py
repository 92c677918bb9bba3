"""The build report: counts per stage, precision and recall against the planted ground truth, mix.

Precision of a stage is the share of its removals that are planted noise (any kind); recall of a
noise kind is the share of its planted documents that some cleaning stage removed. Mix sampling
is not a removal: "clean removed" counts only the cleaning stages.
"""

from __future__ import annotations

from collections import Counter

from workbench.data.corpus import Doc
from workbench.data.dedup import normalize_line
from workbench.data.mix import domain_shares
from workbench.data.pipeline import Cleaned

TARGETS = {"url_dedup": ("old_version",), "minhash_dedup": ("exact_dup", "near_dup"),
           "heuristic_filters": ("low_quality",), "quality_classifier": ("low_quality",)}
REQUIRED = {"near_dup_recall": 0.9, "low_quality_recall": 0.9, "clean_removed_max": 0.02, "mix_max_abs_dev": 0.02}


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def stage_rows(cleaned: Cleaned, labels: dict[str, dict]) -> list[dict]:
    """One row per stage: counts, removals by planted label, precision and target recall."""
    planted = Counter(m["label"] for m in labels.values())
    rows = []
    for st in cleaned.stages:
        by_label = Counter(labels[i]["label"] for i in st.removed)
        noise = sum(v for k, v in by_label.items() if k != "clean")
        row = {"stage": st.name, "docs_in": st.docs_in, "docs_out": st.docs_out, "removed": len(st.removed),
               "removed_by_label": dict(sorted(by_label.items())), "precision": _ratio(noise, len(st.removed)),
               "seconds": st.seconds}
        for target in TARGETS.get(st.name, ()):
            row[f"recall_{target}"] = _ratio(by_label[target], planted[target])
        rows.append(row)
    return rows


def line_scores(cleaned: Cleaned, labels: dict[str, dict]) -> dict:
    """Line dedup against the planted boilerplate lines of documents that reached it."""
    reached = set(labels) - {i for st in cleaned.stages if st.name in ("url_dedup", "minhash_dedup")
                             for i in st.removed}
    planted = {i: {normalize_line(x) for x in m.get("boilerplate", [])} for i, m in labels.items() if i in reached}
    n_planted = sum(len(v) for v in planted.values())
    removed = [(i, normalize_line(x)) for i, lines in cleaned.removed_lines.items() for x in lines]
    hits = sum(1 for i, x in removed if x in planted.get(i, ()))
    caught = sum(len(v & {normalize_line(x) for x in cleaned.removed_lines.get(i, [])}) for i, v in planted.items())
    return {"lines_removed": len(removed), "boilerplate_planted": n_planted,
            "precision": _ratio(hits, len(removed)), "recall": _ratio(caught, n_planted),
            "docs_touched": len(cleaned.removed_lines)}


def build_report(labels: dict[str, dict], cleaned: Cleaned, train: list[Doc], heldout: list[Doc],
                 anneal: list[Doc], mix: dict[str, float]) -> dict:
    """The report as plain data (report.json); :func:`render_markdown` prints it."""
    planted = Counter(m["label"] for m in labels.values())
    removed_ids = {i for st in cleaned.stages for i in st.removed}
    removed_label = Counter(labels[i]["label"] for i in removed_ids)
    kinds = Counter(m["kind"] for m in labels.values() if m["label"] == "low_quality")
    kinds_removed = Counter(labels[i]["kind"] for i in removed_ids if labels[i]["label"] == "low_quality")
    clean_reasons = Counter(st.name for st in cleaned.stages for i in st.removed if labels[i]["label"] == "clean")
    shares = domain_shares(train)
    true_domain = [labels.get(d.id, {}).get("domain") for d in train]
    known = [(d.domain, t) for d, t in zip(train, true_domain) if t]
    recall = {k: _ratio(removed_label[k], planted[k]) for k in planted if k != "clean"}
    report = {
        "raw": {"documents": len(labels), "by_label": dict(sorted(planted.items())),
                "low_quality_kinds": dict(sorted(kinds.items()))},
        "stages": stage_rows(cleaned, labels),
        "line_dedup": line_scores(cleaned, labels),
        "recall": recall,
        "low_quality_recall_by_kind": {k: _ratio(kinds_removed[k], v) for k, v in sorted(kinds.items())},
        "train_by_label": dict(sorted(Counter(labels[d.id]["label"] for d in train).items())),
        "clean_removed": {"count": removed_label["clean"], "of": planted["clean"],
                          "fraction": _ratio(removed_label["clean"], planted["clean"]) or 0.0,
                          "by_stage": dict(clean_reasons)},
        "classifiers": {**cleaned.classifiers, "domain_accuracy_on_train": _ratio(sum(p == t for p, t in known), len(known))},
        "mix": {"target": mix, "chars_share": {k: round(v, 4) for k, v in shares.items()},
                "docs_share": {k: round(v, 4) for k, v in domain_shares(train, "docs").items()},
                "max_abs_dev": round(max(abs(shares.get(k, 0.0) - v) for k, v in mix.items()), 4),
                "docs_before_mix": len(cleaned.docs), "docs_after_mix": len(train)},
        "outputs": {name: {"documents": len(docs), "chars": sum(len(d.text) for d in docs)}
                    for name, docs in (("train", train), ("heldout", heldout), ("anneal", anneal))},
    }
    report["required"] = {
        "near_dup_recall": {"value": recall.get("near_dup"), "min": REQUIRED["near_dup_recall"]},
        "low_quality_recall": {"value": recall.get("low_quality"), "min": REQUIRED["low_quality_recall"]},
        "clean_removed": {"value": report["clean_removed"]["fraction"], "max": REQUIRED["clean_removed_max"]},
        "mix_max_abs_dev": {"value": report["mix"]["max_abs_dev"], "max": REQUIRED["mix_max_abs_dev"]},
    }
    for check in report["required"].values():
        v = check["value"]
        check["passed"] = v is None or (v >= check["min"] if "min" in check else v <= check["max"])
    report["passed"] = all(c["passed"] for c in report["required"].values())
    return report


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def render_markdown(report: dict) -> str:
    """report.md: the same numbers as tables."""
    lines = ["# Data build report", "",
             f"Raw crawl: {report['raw']['documents']} documents "
             + ", ".join(f"{k} {v}" for k, v in report["raw"]["by_label"].items()), "",
             "| stage | in | out | removed | precision | target recall | seconds |",
             "| --- | ---: | ---: | ---: | ---: | --- | ---: |"]
    for row in report["stages"]:
        recalls = ", ".join(f"{k[7:]} {_pct(v)}" for k, v in row.items() if k.startswith("recall_")) or "-"
        lines.append(f"| {row['stage']} | {row['docs_in']} | {row['docs_out']} | {row['removed']} | "
                     f"{_pct(row['precision'])} | {recalls} | {row['seconds']} |")
    ld = report["line_dedup"]
    lines += ["", f"Line dedup: {ld['lines_removed']} lines removed from {ld['docs_touched']} documents; "
              f"precision {_pct(ld['precision'])}, recall {_pct(ld['recall'])} of {ld['boilerplate_planted']} "
              "planted boilerplate lines.", "",
              "Recall per planted kind (any stage): " + ", ".join(f"{k} {_pct(v)}" for k, v in report["recall"].items()),
              "Low-quality recall per kind: " + ", ".join(f"{k} {_pct(v)}" for k, v in report["low_quality_recall_by_kind"].items()),
              f"Planted labels of the train documents: {report['train_by_label']}",
              f"Clean documents removed: {report['clean_removed']['count']} of {report['clean_removed']['of']} "
              f"({_pct(report['clean_removed']['fraction'])}) {report['clean_removed']['by_stage']}",
              f"Domain classifier: seed-split accuracy {_pct(report['classifiers']['domain']['seed_split_accuracy'])}, "
              f"agreement with the generator on train {_pct(report['classifiers']['domain_accuracy_on_train'])}", "",
              "| domain | target | chars share | docs share |", "| --- | ---: | ---: | ---: |"]
    mix = report["mix"]
    for k, v in mix["target"].items():
        lines.append(f"| {k} | {_pct(v)} | {_pct(mix['chars_share'].get(k, 0.0))} | {_pct(mix['docs_share'].get(k, 0.0))} |")
    lines += ["", f"Mix: largest deviation {100 * mix['max_abs_dev']:.2f} points; "
              f"{mix['docs_before_mix']} clean documents sampled down to {mix['docs_after_mix']}.", "",
              "| output | documents | characters |", "| --- | ---: | ---: |"]
    lines += [f"| {k}.jsonl | {v['documents']} | {v['chars']} |" for k, v in report["outputs"].items()]
    lines += ["", "Required: " + ", ".join(
        f"{k} {c['value']} ({'ok' if c['passed'] else 'FAILED'})" for k, c in report["required"].items()), ""]
    return "\n".join(lines)
