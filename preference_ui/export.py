"""Export of the store to the preference schema: JSONL, a `datasets` dataset and statistics.

``out_dir`` receives (each written atomically)::

    preferences.jsonl   one workbench.preferences.Preference per line
    preferences_trl.jsonl  the same in TRL's conversational prompt/chosen/rejected format (plus id
                        and level), one row per pair DPO trains on (workbench.formats.trl_preference_rows):
                        what TRL's DPOTrainer/RewardTrainer, OpenRLHF and LLaMA-Factory read
    dataset/            the same records, datasets.Dataset.save_to_disk
    outcomes.jsonl      ties, both bad and cannot judge (not preferences: reward model and DPO never
                        read this file)
    superseded.jsonl    answers withdrawn when an admin reopened their item (history only: not
                        preferences, never trained on)
    stats.json          counts per level and outcome, edits, skips and flags with their reasons,
                        per annotator, agreement (alpha)
"""

from __future__ import annotations

import json
from pathlib import Path

from preference_ui.store import Store
from workbench.formats import trl_preference_rows
from workbench.jsonl import write_jsonl as write_rows
from workbench.preferences import to_dataset, write_jsonl
from workbench.rundir import atomic_dir, atomic_write_json, atomic_write_text

JSONL_NAME = "preferences.jsonl"
TRL_NAME = "preferences_trl.jsonl"
DATASET_NAME = "dataset"
OUTCOMES_NAME = "outcomes.jsonl"
SUPERSEDED_NAME = "superseded.jsonl"
STATS_NAME = "stats.json"


def write_export(store: Store, out_dir: str | Path, round: int | None = None) -> dict:
    """Write the round's (or every) live annotation to ``out_dir``; returns the statistics."""
    out_dir = Path(out_dir)
    records = store.export(round=round)
    stats = store.stats(round=round)
    write_jsonl(records, out_dir / JSONL_NAME)
    write_rows(trl_preference_rows(records), out_dir / TRL_NAME)
    atomic_write_text(out_dir / OUTCOMES_NAME, "".join(json.dumps(o, ensure_ascii=False) + "\n"
                                                        for o in store.export_outcomes(round=round)))
    write_rows(store.export_superseded(round=round), out_dir / SUPERSEDED_NAME)
    with atomic_dir(out_dir / DATASET_NAME) as tmp:
        to_dataset(records).save_to_disk(str(tmp))
    atomic_write_json(out_dir / STATS_NAME, stats)
    return stats
