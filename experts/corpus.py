"""The domain-heavy corpus of an expert: the run's train documents re-sampled to a domain-heavy mix.

The data pipeline's mix sampling (:func:`workbench.data.mix.sample_mix`) keeps the whole domain and
down-samples the others to their share; the annealing set is the best-scored part of that mix, as
in the data build. The shares are measured afterwards, in characters and in tokens.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from workbench.data.build import select_anneal
from workbench.data.corpus import Doc, write_jsonl
from workbench.jsonl import iter_jsonl
from workbench.data.mix import domain_shares, sample_mix
from workbench.rundir import atomic_dir


def target_mix(domain: str, share: float, run_mix: dict[str, float]) -> dict[str, float]:
    """``share`` for ``domain``; the rest split between the other domains in the run's proportions."""
    others = {d: w for d, w in run_mix.items() if d != domain}
    return {domain: share, **{d: (1.0 - share) * w / sum(others.values()) for d, w in others.items()}}


def token_shares(docs: list[Doc], tokenizer) -> dict[str, float]:
    """Share of tokens per domain (the tokenizer's count, no special tokens)."""
    counts: dict[str, int] = {}
    lengths = tokenizer([d.text for d in docs], add_special_tokens=False)["input_ids"] if docs else []
    for doc, ids in zip(docs, lengths):
        counts[doc.domain] = counts.get(doc.domain, 0) + len(ids)
    total = sum(counts.values()) or 1
    return {d: c / total for d, c in sorted(counts.items())}


def read_docs(path: Path) -> list[Doc]:
    """The documents of a built corpus split."""
    return [Doc(id=r["id"], text=r["text"], url=r.get("url", ""), timestamp="", domain=r["domain"],
                quality=r.get("quality")) for r in iter_jsonl(path)]


def build_domain_corpus(data_dir: Path, out_dir: Path, target: dict[str, float], tokenizer, *, seed: int,
                        anneal_fraction: float) -> dict:
    """Write ``train``/``anneal``/``heldout.jsonl`` of the domain-heavy mix into ``out_dir``; returns its measured shares."""
    source = read_docs(Path(data_dir) / "train.jsonl")
    missing = [d for d in target if not any(doc.domain == d for doc in source)]
    if missing:
        raise ValueError(f"{data_dir}/train.jsonl: no documents of the domains {missing}; "
                         "the run's corpus must hold every domain of the mix")
    train = sample_mix(source, target, seed)
    anneal = select_anneal(train, anneal_fraction)
    with atomic_dir(out_dir) as tmp:
        write_jsonl(tmp / "train.jsonl", (d.record() for d in train))
        write_jsonl(tmp / "anneal.jsonl", (d.record() for d in anneal))
        shutil.copy2(Path(data_dir) / "heldout.jsonl", tmp / "heldout.jsonl")
    return {"char_shares": domain_shares(train), "token_shares": token_shares(train, tokenizer),
            "documents": len(train), "source_documents": len(source), "anneal_documents": len(anneal),
            "source_token_shares": token_shares(source, tokenizer)}
