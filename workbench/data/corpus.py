"""Documents and their JSONL files: the format `workbench data build` writes and pretraining reads.

A line of ``train.jsonl``, ``heldout.jsonl`` or ``anneal.jsonl`` is
``{"id", "text", "domain", "url", "quality"}`` with domain one of general, math, code,
multilingual and quality a float in [0, 1] (or null when no classifier scored it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from workbench.jsonl import iter_jsonl

OUTPUT_FIELDS = ("id", "text", "domain", "url", "quality")


@dataclass
class Doc:
    """One document of the raw or cleaned corpus."""

    id: str
    text: str
    url: str
    timestamp: str  # crawl time, ISO 8601; URL dedup keeps the newest, document dedup the earliest
    domain: str | None = None  # set by the domain classifier (the generator's domain is ground truth only)
    quality: float | None = None  # set by the quality classifier

    def record(self) -> dict:
        """The output record (the contract's fields only)."""
        return {"id": self.id, "text": self.text, "domain": self.domain, "url": self.url,
                "quality": None if self.quality is None else round(float(self.quality), 4)}


def write_jsonl(path: str | Path, records: Iterable[dict]) -> int:
    """Write one JSON object per line (not atomic: write into a temp folder); returns the count."""
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
    return n


def corpus_texts(data_dir: str | Path, split: str = "train") -> Iterator[str]:
    """The texts of a built corpus split (default the train documents), e.g. for the tokenizer trainer."""
    path = Path(data_dir) / f"{split}.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no corpus here; run `workbench data build` first")
    for record in iter_jsonl(path):
        yield record["text"]
