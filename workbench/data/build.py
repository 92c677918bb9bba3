"""`workbench data build`: generate, plant noise, clean, sample the mix, write ``runs/<name>/data/``.

Everything is written into a temp folder that replaces ``data/`` in one rename when the build
succeeds, so an interrupted build leaves the previous data (or none) and a manifest that does not
say ``done``; a done build is skipped unless forced.
"""

from __future__ import annotations

import random
from pathlib import Path

from tqdm.auto import tqdm

from workbench.data.config import DOMAINS, DataConfig
from workbench.data.corpus import Doc, write_jsonl
from workbench.data.generate import domain_counts, generate_documents
from workbench.data.mix import sample_mix
from workbench.data.noise import plant_noise
from workbench.data.pipeline import clean_corpus
from workbench.data.report import build_report, render_markdown
from workbench.rundir import RunDir, atomic_dir, atomic_write_json, atomic_write_text
from workbench.stage import Result, Stage, StageContext, run_stage


def select_anneal(docs: list[Doc], fraction: float) -> list[Doc]:
    """The best-scored ``fraction`` of each domain's documents (the mix is kept), in input order."""
    keep: set[str] = set()
    for domain in DOMAINS:
        pool = sorted((d for d in docs if d.domain == domain), key=lambda d: -(d.quality or 0.0))
        keep |= {d.id for d in pool[: max(1, round(fraction * len(pool)))] if pool}
    return [d for d in docs if d.id in keep]


def make_corpus(cfg: DataConfig, progress: bool = False) -> dict:
    """The whole build in memory: raw crawl with labels, cleaning log, train/heldout/anneal, report."""
    bar = tqdm(total=4, desc="data build", disable=not progress)
    # 1) clean documents: the train pool, spare content for old URL versions, held-out, classifier seed
    pool = generate_documents(domain_counts(cfg.num_documents, cfg.mix), cfg.seed, cfg.min_doc_chars,
                              cfg.max_doc_chars, prefix="doc")
    spare = generate_documents(domain_counts(int(cfg.old_version_rate * cfg.num_documents) + 4, cfg.mix),
                               cfg.seed + 3, cfg.min_doc_chars, cfg.max_doc_chars, prefix="old")
    heldout = generate_documents({d: cfg.heldout_per_domain for d in DOMAINS}, cfg.seed + 1,
                                 cfg.min_doc_chars, cfg.max_doc_chars, prefix="heldout")
    seed = generate_documents({d: cfg.classifier_seed_docs // len(DOMAINS) for d in DOMAINS}, cfg.seed + 2,
                              cfg.min_doc_chars, cfg.max_doc_chars, prefix="seed")
    bar.update()
    # 2) planted noise
    rates = {"exact_dup": cfg.exact_dup_rate, "near_dup": cfg.near_dup_rate, "old_version": cfg.old_version_rate,
             "boilerplate": cfg.boilerplate_rate, "low_quality": cfg.low_quality_rate}
    raw = plant_noise([(g.doc, g.domain) for g in pool], [(g.doc, g.domain) for g in spare], rates,
                      cfg.seed + 4, cfg.near_dup_jaccard)
    raw_records = [{"id": d.id, "text": d.text, "url": d.url, "timestamp": d.timestamp} for d in raw.docs]
    bar.update()
    # 3) cleaning stages
    cleaned = clean_corpus([Doc(**r) for r in raw_records], [(g.doc.text, g.domain) for g in seed], cfg, progress)
    bar.update()
    # 4) mix, anneal, held-out
    train = sample_mix(cleaned.docs, cfg.mix, cfg.seed + 5)
    anneal = select_anneal(train, cfg.anneal_fraction)
    train_texts = {d.text for d in raw.docs}
    held = [g.doc for g in heldout if g.doc.text not in train_texts]
    for g in heldout:
        g.doc.domain = g.domain
    if cleaned.quality_model is not None and held:
        for d, s in zip(held, cleaned.quality_model.predict_proba([d.text for d in held])[:, 1]):
            d.quality = float(s)
    report = build_report(raw.labels, cleaned, train, held, anneal, cfg.mix)
    bar.update()
    bar.close()
    random.Random(cfg.seed + 6).shuffle(train)
    return {"raw": raw_records, "labels": raw.labels, "train": train, "heldout": held, "anneal": anneal,
            "report": report}


def write_corpus(result: dict, folder: Path) -> dict[str, Path]:
    """Write the build's files into ``folder``; returns their paths by name."""
    files = {
        "train": write_jsonl(folder / "train.jsonl", (d.record() for d in result["train"])),
        "heldout": write_jsonl(folder / "heldout.jsonl", (d.record() for d in result["heldout"])),
        "anneal": write_jsonl(folder / "anneal.jsonl", (d.record() for d in result["anneal"])),
        "raw": write_jsonl(folder / "raw.jsonl", result["raw"]),
        "planted": write_jsonl(folder / "planted.jsonl", ({"id": i, **m} for i, m in result["labels"].items())),
    }
    atomic_write_json(folder / "report.json", result["report"])
    atomic_write_text(folder / "report.md", render_markdown(result["report"]))
    return {name: folder / f"{name}.jsonl" for name in files} | {
        "report": folder / "report.json", "report_md": folder / "report.md"}


def build_corpus(ctx: StageContext) -> Result:
    """The data stage's work: generate, plant noise, clean and mix into ``ctx.out`` (replaced in one rename)."""
    result = make_corpus(ctx.cfg.data, progress=True)
    with atomic_dir(ctx.out) as tmp:
        paths = write_corpus(result, tmp)
    report = result["report"]
    return Result({
        "raw_documents": report["raw"]["documents"],
        "train_documents": report["outputs"]["train"]["documents"],
        "train_chars": report["outputs"]["train"]["chars"],
        "near_dup_recall": report["recall"].get("near_dup"),
        "low_quality_recall": report["recall"].get("low_quality"),
        "clean_removed": report["clean_removed"]["fraction"],
        "mix_max_abs_dev": report["mix"]["max_abs_dev"],
        "passed": report["passed"],
    }, {name: ctx.out / path.name for name, path in paths.items()})


STAGE = Stage("data", "data", lambda ctx: {}, build_corpus, folder=lambda run, n: run.data)


def build_data(cfg, run: RunDir, force: bool = False) -> Path:
    """Build ``runs/<name>/data/`` from ``cfg.data`` (skipped when done unless ``force``); returns it."""
    run_stage(STAGE, cfg, run, force=force)
    return run.data
