"""Deduplication at three levels (Llama 3, section 3.1.1): URL, document (MinHash), line.

Document dedup uses datasketch's in-memory ``MinHash``/``MinHashLSH``: the corpus fits in memory
and datasketch needs no executor, no signature files and no extra pipeline steps (datatrove's
``MinhashDedup*`` is four disk-backed stages made for sharded web-scale runs). LSH only proposes
candidates; each is confirmed by the exact Jaccard similarity of the two shingle sets, so the
``dedup_jaccard`` threshold is exact while the lower LSH threshold buys recall near it.
Line dedup (count a line's documents per bucket, drop lines in more than ``max_count``) is the
Llama 3 rule itself; neither library implements it (datatrove's sentence dedup removes spans of
sentences seen twice, which would strip the task world's repeated answer lines).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace

from datasketch import MinHash, MinHashLSH

from workbench.data.corpus import Doc

_WORD = re.compile(r"\w+")
_PROSE_WORD = re.compile(r"\w\w+")  # line dedup counts words of two or more characters


def url_dedup(docs: list[Doc]) -> tuple[list[Doc], list[str]]:
    """Keep the newest document of each URL (ties: the later one); returns (kept, removed ids)."""
    newest: dict[str, int] = {}
    for i, doc in enumerate(docs):
        j = newest.get(doc.url)
        if j is None or doc.timestamp >= docs[j].timestamp:
            newest[doc.url] = i
    keep = set(newest.values())
    return [d for i, d in enumerate(docs) if i in keep], [d.id for i, d in enumerate(docs) if i not in keep]


def shingles(text: str, n: int = 5) -> set[bytes]:
    """The set of lower-cased word n-grams of a text (the whole text when it has fewer than n words)."""
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return {" ".join(words).encode()}
    return {" ".join(words[i:i + n]).encode() for i in range(len(words) - n + 1)}


def jaccard(a: set, b: set) -> float:
    """Jaccard similarity of two sets (1.0 for two empty sets)."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def minhash_dedup(docs: list[Doc], num_perm: int = 128, ngram: int = 5, lsh_threshold: float = 0.5,
                  threshold: float = 0.8, seed: int = 1) -> tuple[list[Doc], dict[str, str]]:
    """Drop documents whose shingle Jaccard with an earlier-crawled kept one is >= threshold.

    Returns (kept in input order, {removed id: id of the kept document it duplicates}).
    """
    order = sorted(range(len(docs)), key=lambda i: (docs[i].timestamp, i))
    sets = [shingles(docs[i].text, ngram) for i in order]
    hashes = MinHash.generator(sets, num_perm=num_perm, seed=seed)
    lsh = MinHashLSH(threshold=lsh_threshold, num_perm=num_perm)
    kept_sets: dict[int, set[bytes]] = {}
    removed: dict[str, str] = {}
    for i, shingle_set, mh in zip(order, sets, hashes):
        match = next((j for j in lsh.query(mh) if jaccard(shingle_set, kept_sets[j]) >= threshold), None)
        if match is None:
            lsh.insert(i, mh)
            kept_sets[i] = shingle_set
        else:
            removed[docs[i].id] = docs[match].id
    return [d for d in docs if d.id not in removed], removed


def normalize_line(line: str) -> str:
    """A line with runs of whitespace collapsed (the key line dedup counts)."""
    return " ".join(line.split())


def _removable(lines: list[str], min_words: int) -> list[bool]:
    """Which lines line dedup may remove: prose lines of at least ``min_words`` words.

    Short lines (answers, keywords, a word spelled letter by letter: only words of two or more
    characters count) and code (indented lines, lines inside ``` fences) are exempt: in this
    corpus every document of a kind shares them, and Llama 3 cleans code separately.
    """
    out, in_fence = [], False
    for line in lines:
        fence = line.lstrip().startswith("```")
        out.append(not (fence or in_fence or line[:1].isspace()) and len(_PROSE_WORD.findall(line)) >= min_words)
        in_fence ^= fence
    return out


def line_dedup(docs: list[Doc], max_count: int = 6, bucket_docs: int = 500, min_words: int = 4
               ) -> tuple[list[Doc], dict[str, list[str]]]:
    """Remove lines found in more than ``max_count`` documents of their bucket of ``bucket_docs``.

    Only lines :func:`_removable` allows are counted. Documents left empty are dropped.
    Returns (documents, {id: removed lines}).
    """
    out: list[Doc] = []
    removed: dict[str, list[str]] = {}
    for start in range(0, len(docs), bucket_docs):
        bucket = docs[start:start + bucket_docs]
        split = [d.text.split("\n") for d in bucket]
        allowed = [_removable(lines, min_words) for lines in split]
        counts = Counter(key for lines, ok in zip(split, allowed)
                         for key in {normalize_line(x) for x, a in zip(lines, ok) if a})
        frequent = {k for k, c in counts.items() if c > max_count}
        for doc, lines, ok in zip(bucket, split, allowed):
            drop = [a and normalize_line(x) in frequent for x, a in zip(lines, ok)]
            if not any(drop):
                out.append(doc)
                continue
            removed[doc.id] = [x for x, d in zip(lines, drop) if d]
            text = "\n".join(x for x, d in zip(lines, drop) if not d).strip("\n")
            if text.strip():
                out.append(replace(doc, text=text))
    return out, removed
