"""Mix sampling: down-sample domains so their shares of characters match the target mix."""

from __future__ import annotations

import random

from workbench.data.corpus import Doc


def domain_shares(docs: list[Doc], weight: str = "chars") -> dict[str, float]:
    """Share of characters (or of documents, ``weight="docs"``) per domain."""
    totals: dict[str, float] = {}
    for d in docs:
        totals[d.domain or "unknown"] = totals.get(d.domain or "unknown", 0) + (len(d.text) if weight == "chars" else 1)
    whole = sum(totals.values()) or 1
    return {k: v / whole for k, v in sorted(totals.items())}


def sample_mix(docs: list[Doc], target: dict[str, float], seed: int = 0) -> list[Doc]:
    """The largest subset (in input order) whose domain character shares follow ``target``.

    The scarcest domain relative to its share is kept whole and sets the total; every other
    domain is drawn at random without replacement up to its budget (documents never repeat).
    """
    rng = random.Random(seed)
    by_domain: dict[str, list[Doc]] = {d: [] for d in target}
    for doc in docs:
        if doc.domain in by_domain:
            by_domain[doc.domain].append(doc)
    chars = {d: sum(len(x.text) for x in xs) for d, xs in by_domain.items()}
    total = min(chars[d] / target[d] for d in target)
    chosen: set[str] = set()
    for domain, pool in by_domain.items():
        budget, taken = target[domain] * total, 0
        for doc in rng.sample(pool, len(pool)):
            if taken + len(doc.text) / 2 > budget:
                continue
            chosen.add(doc.id)
            taken += len(doc.text)
    return [d for d in docs if d.id in chosen]
