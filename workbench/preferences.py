"""The one preference schema used everywhere: annotation export, simulated annotator, RM, DPO.

A record (one JSON object per line in ``*.jsonl``, one row in a ``datasets`` dataset)::

    {"id": "r01-000017",                       # unique id of the comparison
     "prompt": [{"role": "user", "content": "What is 2 + 3?"}],   # chat messages
     "chosen": "...", "rejected": "...",       # the preferred and the other response
     "edited": "..." | null,                   # the annotator's improved chosen response, if any
     "level": "significantly_better",          # one of LEVELS
     "annotator": "alice", "round": 1,
     "meta": {...}}                            # free-form provenance (models, task family, ...)

With an edit the ranking is edited > chosen > rejected (Llama 3). A user's preference data in TRL's
formats or as rated completions is converted to this schema on load (:mod:`workbench.formats`); a
preference that comes without a level gets ``rounds.preference_level`` (default ``better``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from workbench.jsonl import message_problems, round_and_meta_problems, shown

LEVELS = ("significantly_better", "better", "slightly_better", "marginally_better")
LEVEL_LABELS = {
    "significantly_better": "significantly better",
    "better": "better",
    "slightly_better": "slightly better",
    "marginally_better": "marginally better",
}
# Signed ordinal scale for agreement: +4..+1 when the first shown response wins, -1..-4 otherwise.
LEVEL_STRENGTH = {"significantly_better": 4, "better": 3, "slightly_better": 2, "marginally_better": 1}
STRONG_LEVELS = ("significantly_better", "better")  # what DPO trains on (Llama 3)


class PreferenceError(ValueError):
    """A preference record is malformed; the message names the file and line or the record."""


@dataclass
class Preference:
    """One annotated comparison (see the module docstring for the JSON form)."""

    id: str
    prompt: list[dict]
    chosen: str
    rejected: str
    level: str
    annotator: str = "unknown"
    round: int = 0
    edited: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def ranked(self) -> list[str]:
        """Responses best first: [edited,] chosen, rejected."""
        return ([self.edited] if self.edited else []) + [self.chosen, self.rejected]

    def pairs(self) -> list[tuple[str, str]]:
        """Every (better, worse) pair the ranking implies."""
        ranked = self.ranked()
        return [(ranked[i], ranked[j]) for i in range(len(ranked)) for j in range(i + 1, len(ranked))]

    def to_dict(self) -> dict:
        """Plain JSON-able dict."""
        return asdict(self)


def problems(data: dict) -> list[str]:
    """Every problem of a preference record (a dict), each naming its field; empty when it is valid."""
    found = [f"missing field {key!r}" for key in ("id", "prompt", "chosen", "rejected", "level") if key not in data]
    found += [f"unknown field {key!r}" for key in sorted(map(str, set(data) - set(Preference.__dataclass_fields__)))]
    for key in ("id", "annotator"):
        if key in data and (not isinstance(data[key], str) or not data[key].strip()):
            found.append(f"field {key!r} must be a non-empty string, got {shown(data[key])}")
    for key in ("chosen", "rejected"):  # a model's empty answer is a response to judge, stored as generated
        if key in data and not isinstance(data[key], str):
            found.append(f"field {key!r} must be a string, got {shown(data[key])}")
    if "prompt" in data:
        found += message_problems(data["prompt"], "prompt")
    if data.get("edited") is not None and (not isinstance(data["edited"], str) or not data["edited"].strip()):
        found.append(f"field 'edited' must be null or a non-empty string, got {shown(data['edited'])}")
    if "level" in data and data["level"] not in LEVELS:
        found.append(f"field 'level' is {shown(data['level'])}, expected one of {list(LEVELS)}")
    return found + round_and_meta_problems(data)


def validate(data: Any, where: str) -> Preference:
    """Build a :class:`Preference` from a dict, or raise PreferenceError naming ``where`` and every problem."""
    if not isinstance(data, dict):
        raise PreferenceError(f"{where}: expected a JSON object, got {type(data).__name__}")
    found = problems(data)
    if found:
        raise PreferenceError(f"{where}: " + "; ".join(found))
    return Preference(**{**data, "meta": dict(data.get("meta") or {})})


def read_jsonl(path: str | Path) -> list[Preference]:
    """Read and validate a preference JSONL file; errors name the file and line."""
    from workbench.jsonl import iter_jsonl_numbered

    try:
        return [validate(data, f"{path}:{lineno}") for lineno, data in iter_jsonl_numbered(path)]
    except PreferenceError:
        raise
    except ValueError as exc:  # bad JSON, already naming the file and line
        raise PreferenceError(str(exc)) from exc


def write_jsonl(records: Iterable[Preference], path: str | Path) -> Path:
    """Write records as JSONL atomically."""
    from workbench.rundir import atomic_write_text

    text = "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in records)
    return atomic_write_text(path, text)


def to_dataset(records: Iterable[Preference]):
    """A `datasets.Dataset` with the schema's columns (meta as a JSON string)."""
    from datasets import Dataset

    rows = [r.to_dict() for r in records]
    for row in rows:
        row["meta"] = json.dumps(row["meta"], ensure_ascii=False)
    return Dataset.from_list(rows) if rows else Dataset.from_dict({k: [] for k in Preference.__dataclass_fields__})
