"""Planted noise with known ground truth, so every cleaning stage can be scored.

:func:`plant_noise` turns clean documents into a raw crawl: boilerplate lines (site navigation,
cookie notices) on some pages, exact copies on mirror sites, near copies (a few words edited,
shingle Jaccard checked >= the configured bound), older versions of some URLs, and low-quality
pages (repeated n-grams, log spam, dirty words, garbage token runs). The labels go to a sidecar
keyed by document id; ids are assigned after shuffling, so neither id nor text reveals them.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from workbench.data.corpus import Doc
from workbench.data.dedup import jaccard, shingles
from workbench.data.filters import DIRTY_WORDS

LABELS = ("clean", "exact_dup", "near_dup", "old_version", "low_quality")
LOW_QUALITY_KINDS = ("repeated_ngrams", "log_spam", "dirty_words", "garbage_tokens")

NAV = [  # one navigation line and one or two footer lines per site template
    "Home | About | Blog | Contact | Sign in",
    "Menu: News | Topics | Newsletter | Subscribe | Search",
    "Skip to main content | Accessibility | Site map",
    "You are here: Home / Library / Reading room",
]
FOOTERS = [
    "We use cookies to improve your experience. By continuing you accept our cookie policy.",
    "This site uses cookies. Accept all cookies | Manage preferences | Reject",
    "Copyright 2024 Example Media Ltd. All rights reserved. Terms of use | Privacy policy",
    "Did you find this page helpful? Yes No | Report a problem with this page",
]
SPAM_PHRASES = ["buy now best price", "click here to win", "free shipping today only", "limited offer act now",
                "best deals online", "top rated cheap"]
LOG_MESSAGES = [
    "Connection refused while contacting the upstream server, retrying in 5 seconds",
    "Cache miss for key user_session, fetching the value from the primary store",
    "Heartbeat received from worker node, all health checks passed",
    "Request completed with status 200 within the expected time window",
    "Disk usage above warning threshold on volume data, consider cleanup",
    "Scheduled job finished, next run queued according to the cron settings",
]
START = datetime(2023, 1, 1)


@dataclass
class Planted:
    """The raw crawl and its ground truth."""

    docs: list[Doc]
    labels: dict[str, dict] = field(default_factory=dict)  # id -> {"label", "kind", "of", "jaccard", "boilerplate", "domain"}


def _stamp(days: float) -> str:
    return (START + timedelta(days=days)).isoformat(timespec="seconds")


def add_boilerplate(text: str, rng: random.Random, site: int) -> tuple[str, list[str]]:
    """The text framed by its site's navigation line and one or two footer lines."""
    nav = NAV[site % len(NAV)]
    footers = [FOOTERS[site % len(FOOTERS)]] + ([FOOTERS[(site + 1) % len(FOOTERS)]] if rng.random() < 0.5 else [])
    return "\n".join([nav, text, *footers]), [nav, *footers]


def near_copy(text: str, rng: random.Random, min_jaccard: float, vocab: list[str], ngram: int = 5) -> tuple[str, float] | None:
    """Edit a few words (replace, delete, insert) while word n-gram Jaccard stays >= min_jaccard."""
    original = shingles(text, ngram)
    lines = [line.split(" ") for line in text.split("\n")]
    best, best_j = None, 1.0
    for _ in range(rng.randint(2, 6)):
        trial = [list(words) for words in lines]
        i = rng.choice([k for k, words in enumerate(trial) if words and words != [""]] or [0])
        j = rng.randrange(len(trial[i]) or 1)
        op = rng.random()
        if op < 0.5 and trial[i]:
            trial[i][j] = rng.choice(vocab)
        elif op < 0.75 and len(trial[i]) > 1:
            del trial[i][j]
        else:
            trial[i].insert(j, rng.choice(vocab))
        candidate = "\n".join(" ".join(words) for words in trial)
        sim = jaccard(original, shingles(candidate, ngram))
        if sim < min_jaccard:
            break
        lines, best, best_j = trial, candidate, sim
    return (best, best_j) if best is not None and best_j < 1.0 else None


def _snippet(text: str) -> str:
    return "\n\n".join(text.split("\n\n")[:2])


def low_quality_text(kind: str, rng: random.Random, clean_text: str) -> str:
    """A low-quality page of the given kind (some wrap real content, as scraped spam does)."""
    if kind == "repeated_ngrams":
        phrase = rng.choice(SPAM_PHRASES)
        words = " ".join(phrase for _ in range(rng.randint(25, 50)))
        return words if rng.random() < 0.5 else _snippet(clean_text) + "\n" + words
    if kind == "log_spam":
        messages = rng.sample(LOG_MESSAGES, 3)
        return "\n".join(
            f"2024-0{rng.randint(1, 9)}-{rng.randint(10, 28)} {rng.randint(10, 23)}:{rng.randint(10, 59)}:"
            f"{rng.randint(10, 59)} {rng.choice(['INFO', 'WARN', 'ERROR'])} [worker-{rng.randint(1, 8)}] "
            f"{rng.choice(messages)} (request {rng.randint(1000, 9999)})"
            for _ in range(rng.randint(10, 30)))
    if kind == "dirty_words":
        dirty = sorted(DIRTY_WORDS)
        body = _snippet(clean_text).split(" ")
        for _ in range(rng.randint(5, 12)):
            body.insert(rng.randrange(len(body) + 1), rng.choice(dirty))
        return " ".join(body)
    chars = string.ascii_letters + string.digits + "#$%&*@!~^"
    garbage = " ".join("".join(rng.choice(chars) for _ in range(rng.randint(3, 12))) for _ in range(rng.randint(40, 120)))
    return garbage if rng.random() < 0.5 else _snippet(clean_text) + "\n" + garbage


def plant_noise(clean: list[tuple[Doc, str]], spare: list[tuple[Doc, str]], rates: dict[str, float],
                seed: int, min_jaccard: float = 0.8) -> Planted:
    """Plant noise into (doc, domain) pairs; ``spare`` documents supply older versions' content.

    ``rates`` has exact_dup, near_dup, old_version, boilerplate and low_quality, as fractions of
    ``len(clean)``.
    """
    rng = random.Random(seed)
    n = len(clean)
    docs: list[tuple[Doc, dict]] = []
    vocab = sorted({w for d, _ in clean[:200] for w in d.text.split() if w.isalpha()}) or ["word"]
    for d, domain in clean:
        d.timestamp = _stamp(rng.uniform(0, 500))
        docs.append((d, {"label": "clean", "domain": domain}))
    # 1) boilerplate on some clean pages (before copying: mirrors copy the whole page)
    for d, meta in rng.sample(docs, int(rates["boilerplate"] * n)):
        d.text, meta["boilerplate"] = add_boilerplate(d.text, rng, rng.randrange(len(NAV)))
    originals = list(docs)
    # 2) exact and near copies, crawled after their original
    for d, meta in rng.sample(originals, int(rates["exact_dup"] * n)):
        copy = Doc("", d.text, f"https://mirror{rng.randint(1, 9)}.example/{d.url.split('/', 3)[-1]}",
                   _stamp(rng.uniform(500, 700)))
        docs.append((copy, {"label": "exact_dup", "of": d.id, "jaccard": 1.0, "domain": meta["domain"]}))
    planted = 0
    for d, meta in rng.sample(originals, len(originals)):
        if planted >= int(rates["near_dup"] * n):
            break
        edited = near_copy(d.text, rng, min_jaccard, vocab)
        if edited is None:
            continue
        copy = Doc("", edited[0], f"https://copy{rng.randint(1, 9)}.example/{d.url.split('/', 3)[-1]}",
                   _stamp(rng.uniform(500, 700)))
        docs.append((copy, {"label": "near_dup", "of": d.id, "jaccard": round(edited[1], 4), "domain": meta["domain"]}))
        planted += 1
    # 3) older versions of some URLs: other content, earlier timestamps
    pool: dict[str, list[Doc]] = {}
    for old, domain in spare:
        pool.setdefault(domain, []).append(old)
    for d, meta in rng.sample(originals, int(rates["old_version"] * n)):
        if not pool.get(meta["domain"]):
            continue
        old = pool[meta["domain"]].pop()
        stamp = _stamp(rng.uniform(-300, -1))
        docs.append((Doc("", old.text, d.url, stamp), {"label": "old_version", "of": d.id, "domain": meta["domain"]}))
    # 4) low-quality pages
    for k in range(int(rates["low_quality"] * n)):
        kind = LOW_QUALITY_KINDS[k % len(LOW_QUALITY_KINDS)]
        base, meta = rng.choice(originals)
        text = low_quality_text(kind, rng, base.text)
        docs.append((Doc("", text, f"https://spam{rng.randint(1, 99)}.example/p/{k}", _stamp(rng.uniform(0, 700))),
                     {"label": "low_quality", "kind": kind, "domain": None}))
    rng.shuffle(docs)
    renamed = {d.id: f"raw-{i:07d}" for i, (d, _) in enumerate(docs) if d.id}
    out = Planted(docs=[])
    for i, (d, meta) in enumerate(docs):
        d.id = f"raw-{i:07d}"
        if "of" in meta:
            meta["of"] = renamed[meta["of"]]
        out.docs.append(d)
        out.labels[d.id] = meta
    return out
