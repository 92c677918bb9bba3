"""The cleaning pipeline, in the Llama 3 order: URL dedup, MinHash dedup, line dedup, heuristic
filters, quality classifier, domain classifier. Mix sampling follows in :mod:`workbench.data.mix`.

:func:`clean_corpus` is pure (documents in, documents and per-stage removals out), so each stage
and the whole pipeline are testable without files.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from tqdm.auto import tqdm

from workbench.data.classify import HashedNgramClassifier
from workbench.data.config import DOMAINS, DataConfig
from workbench.data.corpus import Doc
from workbench.data.dedup import line_dedup, minhash_dedup, url_dedup
from workbench.data.filters import DirtyWordFilter, TokenKLFilter, repetition_filter, run_filters


@dataclass
class StageLog:
    """What one stage removed."""

    name: str
    docs_in: int
    docs_out: int
    removed: dict[str, str]  # removed id -> why
    seconds: float


@dataclass
class Cleaned:
    """The documents left after cleaning, with the log of every stage."""

    docs: list[Doc]
    stages: list[StageLog] = field(default_factory=list)
    removed_lines: dict[str, list[str]] = field(default_factory=dict)
    classifiers: dict[str, dict] = field(default_factory=dict)
    quality_model: HashedNgramClassifier | None = None


class _Timer:
    def __init__(self, cleaned: Cleaned, name: str, docs_in: int, bar: tqdm):
        self.cleaned, self.name, self.docs_in, self.bar, self.t0 = cleaned, name, docs_in, bar, time.time()
        bar.set_postfix_str(name)

    def done(self, docs: list[Doc], removed: dict[str, str]) -> list[Doc]:
        self.cleaned.stages.append(StageLog(self.name, self.docs_in, len(docs), removed,
                                            round(time.time() - self.t0, 3)))
        self.bar.update()
        return docs


def heuristic_filters(docs: list[Doc], cfg: DataConfig) -> tuple[list[Doc], dict[str, str]]:
    """Gopher repetition, dirty-word count and token KL (the KL reference is these documents)."""
    kl = TokenKLFilter(cfg.max_kl).fit(d.text for d in docs)
    return run_filters(docs, [
        ("repetition", repetition_filter(cfg.dup_ngram_char_frac)),
        ("dirty_words", DirtyWordFilter(cfg.max_dirty_words)),
        ("token_kl", kl),
    ])


def train_quality(seed_texts: list[str], flagged_texts: list[str], cfg: DataConfig) -> HashedNgramClassifier | None:
    """Quality classifier: trusted clean seed documents (1) vs heuristic-flagged documents (0)."""
    if len(flagged_texts) < 5:
        return None
    model = HashedNgramClassifier(2, cfg.classifier_buckets)
    return model.fit(seed_texts + flagged_texts, [1] * len(seed_texts) + [0] * len(flagged_texts),
                     steps=cfg.classifier_steps, balanced=False)


def train_domain(seed: list[tuple[str, str]], cfg: DataConfig) -> tuple[HashedNgramClassifier, float]:
    """Domain classifier on (text, domain) seed pairs; returns it and its accuracy on a 20% split."""
    pairs = list(seed)
    random.Random(cfg.seed).shuffle(pairs)
    cut = max(1, len(pairs) // 5)
    test, train = pairs[:cut], pairs[cut:]
    model = HashedNgramClassifier(len(DOMAINS), cfg.classifier_buckets)
    model.fit([t for t, _ in train], [DOMAINS.index(d) for _, d in train], steps=cfg.classifier_steps)
    pred = model.predict_proba([t for t, _ in test]).argmax(1)
    accuracy = float(sum(DOMAINS[p] == d for p, (_, d) in zip(pred, test)) / len(test))
    return model, accuracy


def clean_corpus(docs: list[Doc], seed_docs: list[tuple[str, str]], cfg: DataConfig,
                 progress: bool = False) -> Cleaned:
    """Run every cleaning stage; ``seed_docs`` are trusted (text, domain) pairs for the classifiers."""
    out = Cleaned(docs=[])
    bar = tqdm(total=6, desc="cleaning", disable=not progress)
    # 1) URL dedup: the newest crawl of a URL wins
    t = _Timer(out, "url_dedup", len(docs), bar)
    docs, removed = url_dedup(docs)
    docs = t.done(docs, {i: "older version of its URL" for i in removed})
    # 2) document dedup: MinHash LSH candidates, exact Jaccard check, the earliest crawl wins
    t = _Timer(out, "minhash_dedup", len(docs), bar)
    docs, dups = minhash_dedup(docs, cfg.minhash_num_perm, cfg.minhash_ngram, cfg.minhash_lsh_threshold,
                               cfg.dedup_jaccard, seed=cfg.seed + 1)
    docs = t.done(docs, {i: f"duplicate of {j}" for i, j in dups.items()})
    # 3) line dedup per bucket
    t = _Timer(out, "line_dedup", len(docs), bar)
    before = {d.id for d in docs}
    docs, out.removed_lines = line_dedup(docs, cfg.line_max_count, cfg.line_bucket_docs, cfg.line_min_words)
    docs = t.done(docs, {i: "empty after line dedup" for i in before - {d.id for d in docs}})
    # 4) heuristic filters
    t = _Timer(out, "heuristic_filters", len(docs), bar)
    flagged_texts = {d.id: d.text for d in docs}
    docs, flagged = heuristic_filters(docs, cfg)
    docs = t.done(docs, flagged)
    # 5) quality classifier, trained on the seed set vs what the heuristics flagged
    t = _Timer(out, "quality_classifier", len(docs), bar)
    seed_texts = [text for text, _ in seed_docs]
    model = train_quality(seed_texts, [flagged_texts[i] for i in flagged], cfg)
    removed = {}
    if model is not None:
        scores = model.predict_proba([d.text for d in docs])[:, 1]
        for d, s in zip(docs, scores):
            d.quality = float(s)
        removed = {d.id: f"quality {d.quality:.3f}" for d in docs if d.quality < cfg.quality_threshold}
        docs = [d for d in docs if d.id not in removed]
    out.quality_model = model
    out.classifiers["quality"] = {"seed_positive": len(seed_texts), "seed_negative": len(flagged),
                                  "trained": model is not None}
    docs = t.done(docs, removed)
    # 6) domain classifier: every kept document gets its predicted domain
    t = _Timer(out, "domain_classifier", len(docs), bar)
    domain_model, accuracy = train_domain(seed_docs, cfg)
    for d, p in zip(docs, domain_model.predict_proba([d.text for d in docs]).argmax(1)):
        d.domain = DOMAINS[p]
    out.classifiers["domain"] = {"seed_docs": len(seed_docs), "seed_split_accuracy": round(accuracy, 4)}
    out.docs = t.done(docs, {})
    bar.close()
    return out
