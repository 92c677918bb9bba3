"""Reward-model data: load preferences, drop near-identical ones, split, and tokenize into rows.

Tokens of a (prompt, response) are ``chat template(prompt, add_generation_prompt)`` followed by the
response and its end of turn as the template renders them (``<|eot_id|>``, ``<|im_end|>\n``,
``<end_of_turn>\n``, ...: :meth:`workbench.chat.ChatFormat.reply_text`), tokenized in two parts
exactly as a policy produces them at sampling time; training, held-out evaluation and
:mod:`reward.scoring` all use :func:`encode`, so a score means the same everywhere.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

from workbench import chat
from workbench.jsonl import loads
from workbench.preferences import Preference, PreferenceError, read_jsonl, validate

PACKED_COLUMNS = ("input_ids", "position_ids", "segment_ids", "ends", "ranks", "margin")


# -- loading and filtering -------------------------------------------------------------------------

def load_preferences(sources: Any) -> list[Preference]:
    """Preferences from JSONL paths, Preference objects, or a `datasets` dataset (errors name file:line or row)."""
    if hasattr(sources, "column_names"):  # a datasets.Dataset
        return [_from_row(dict(row), f"dataset row {i}") for i, row in enumerate(sources)]
    if isinstance(sources, (str, Path, Preference)):
        sources = [sources]
    records: list[Preference] = []
    for source in sources:
        if isinstance(source, Preference):
            records.append(source)
        else:
            records.extend(read_jsonl(source))
    return records


def _from_row(row: dict, where: str) -> Preference:
    if isinstance(row.get("meta"), str):  # to_dataset stores meta as a JSON string
        try:
            row["meta"] = loads(row["meta"], f"{where}: field 'meta'") if row["meta"] else {}
        except ValueError as exc:  # names the row and what is wrong
            raise PreferenceError(str(exc)) from None
    return validate(row, where)


def similarity(a: str, b: str) -> float:
    """Word-level edit similarity in [0, 1] (difflib ratio over whitespace-split words)."""
    wa, wb = a.split(), b.split()
    if wa == wb:
        return 1.0
    return SequenceMatcher(None, wa, wb, autojunk=False).ratio()


def filter_near_duplicates(records: list[Preference], threshold: float) -> tuple[list[Preference], dict]:
    """Drop records whose chosen and rejected are near-identical; drop edits near-identical to the chosen.

    Returns the kept records and counts ``near_duplicates_removed`` and ``near_duplicate_edits_dropped``.
    """
    kept, removed, edits_dropped = [], 0, 0
    for record in records:
        if similarity(record.chosen, record.rejected) >= threshold:
            removed += 1
            continue
        if record.edited and similarity(record.edited, record.chosen) >= threshold:
            record = Preference(**{**record.to_dict(), "edited": None})
            edits_dropped += 1
        kept.append(record)
    return kept, {"near_duplicates_removed": removed, "near_duplicate_edits_dropped": edits_dropped}


def split_heldout(records: list[Preference], fraction: float, seed: int) -> tuple[list[Preference], list[Preference]]:
    """(train, heldout): a seeded share of the prompts goes to heldout, with all of its preferences."""
    prompts = sorted({_prompt_key(r) for r in records})
    random.Random(seed).shuffle(prompts)
    n_held = round(len(prompts) * fraction)
    held = set(prompts[:n_held])
    return ([r for r in records if _prompt_key(r) not in held], [r for r in records if _prompt_key(r) in held])


def _prompt_key(record: Preference) -> str:
    return json.dumps(record.prompt, sort_keys=True)


# -- tokenization ----------------------------------------------------------------------------------

def encode_prompt(tokenizer, prompt: list[dict]) -> list[int]:
    """Token ids of the prompt rendered with the chat template and the assistant header."""
    out = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True)
    return list(out["input_ids"] if hasattr(out, "keys") else out)


def encode_response(tokenizer, response: str) -> list[int]:
    """Token ids of a response and the template's end of turn (its score is read at the last one).

    A response that still ends with the stop token it was generated up to is taken without it.
    """
    return chat.chat_format(tokenizer).reply_ids(response)


def encode(tokenizer, prompt: list[dict], response: str) -> list[int]:
    """Token ids of one (prompt, response): what the reward model scores."""
    return encode_prompt(tokenizer, prompt) + encode_response(tokenizer, response)


# -- rows ------------------------------------------------------------------------------------------

@dataclass
class Rows:
    """A tokenized training set and what building it dropped."""

    dataset: Any  # datasets.Dataset
    num_pairs: int
    too_long_removed: int


def packed_rows(records: list[Preference], tokenizer, max_length: int, margins: dict[str, float],
                seed: int) -> Rows:
    """One row per preference: the prompt, then its 2-3 ranked responses in shuffled order.

    Columns: ``input_ids``; ``position_ids`` (each response continues from the prompt's end);
    ``segment_ids`` (0 prompt, 1.. responses; the block mask is built from them); ``ends`` (index
    of each response's last token, where its score is read); ``ranks`` (0 = best) and ``margin``.
    """
    from datasets import Dataset

    rng = random.Random(seed)
    rows, pairs, too_long = [], 0, 0
    for record in records:
        prompt = encode_prompt(tokenizer, record.prompt)
        ranked = [encode_response(tokenizer, r) for r in record.ranked()]
        if len(prompt) + sum(len(r) for r in ranked) > max_length:
            too_long += 1
            continue
        order = list(range(len(ranked)))
        rng.shuffle(order)
        row = {"input_ids": list(prompt), "position_ids": list(range(len(prompt))),
               "segment_ids": [0] * len(prompt), "ends": [], "ranks": [],
               "margin": float(margins.get(record.level, 0.0))}
        for segment, rank in enumerate(order, 1):
            response = ranked[rank]
            row["input_ids"] += response
            row["position_ids"] += range(len(prompt), len(prompt) + len(response))
            row["segment_ids"] += [segment] * len(response)
            row["ends"].append(len(row["input_ids"]) - 1)
            row["ranks"].append(rank)
        rows.append(row)
        pairs += len(ranked) * (len(ranked) - 1) // 2
    dataset = Dataset.from_list(rows) if rows else Dataset.from_dict({c: [] for c in PACKED_COLUMNS})
    return Rows(dataset, pairs, too_long)


def pair_rows(records: list[Preference], tokenizer, max_length: int, margins: dict[str, float]) -> Rows:
    """One row per ranked pair, in TRL's processed format (``chosen_ids``, ``rejected_ids``[, ``margin``])."""
    from datasets import Dataset

    rows, too_long = [], 0
    for record in records:
        prompt = encode_prompt(tokenizer, record.prompt)
        for better, worse in record.pairs():
            chosen, rejected = prompt + encode_response(tokenizer, better), prompt + encode_response(tokenizer, worse)
            if max(len(chosen), len(rejected)) > max_length:
                too_long += 1
                continue
            row = {"chosen_ids": chosen, "rejected_ids": rejected}
            if margins:
                row["margin"] = float(margins.get(record.level, 0.0))
            rows.append(row)
    columns = ["chosen_ids", "rejected_ids"] + (["margin"] if margins else [])
    dataset = Dataset.from_list(rows) if rows else Dataset.from_dict({c: [] for c in columns})
    return Rows(dataset, len(rows), too_long)

