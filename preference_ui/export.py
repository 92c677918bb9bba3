"""Export of the store to the preference schema: JSONL, a `datasets` dataset and statistics.

``out_dir`` receives (each written atomically)::

    preferences.jsonl   one workbench.preferences.Preference per line
    dataset/            the same records, datasets.Dataset.save_to_disk
    stats.json          counts per level, edits, skips, flags, per annotator, agreement (alpha)
"""

from __future__ import annotations

from pathlib import Path

from preference_ui.store import Store
from workbench.preferences import to_dataset, write_jsonl
from workbench.rundir import atomic_dir, atomic_write_json

JSONL_NAME = "preferences.jsonl"
DATASET_NAME = "dataset"
STATS_NAME = "stats.json"


def write_export(store: Store, out_dir: str | Path, round: int | None = None) -> dict:
    """Write the round's (or every) live annotation to ``out_dir``; returns the statistics."""
    out_dir = Path(out_dir)
    records = store.export(round=round)
    stats = store.stats(round=round)
    write_jsonl(records, out_dir / JSONL_NAME)
    with atomic_dir(out_dir / DATASET_NAME) as tmp:
        to_dataset(records).save_to_disk(str(tmp))
    atomic_write_json(out_dir / STATS_NAME, stats)
    return stats
