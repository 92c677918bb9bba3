"""SFT packing with document masks on TRL's SFTTrainer: a batch's conversations share rows, none sees another.

Each step trains on the same ``per_device_train_batch_size`` conversations as without packing, so
the optimisation (steps, loss, resume) does not change; only the padding goes. TRL prepares the
rows as without packing (chat template, assistant-only labels, truncation); :class:`PackingCollator`
bins a batch's conversations into rows (first-fit decreasing, the row width among 1-4 times the
batch's longest conversation that computes the fewest positions) and numbers the conversations of
each row; :func:`document_masking` turns those numbers into the model's mask
(:func:`workbench.masking.attention_inputs`) right before each forward. Under varlen kernels
(flash-attention) TRL's own ``padding_free`` does the same with one row per batch.

What this relies on in TRL 1.16 beyond its documented API (``workbench.trl_private`` checks the
release): the prepared ``train_dataset`` rows hold ``input_ids`` and ``labels``; SFTTrainer passes
every collated key to ``model(**inputs)``; and its token count reads a 2D ``attention_mask``, which is why the
collator returns one and the 4D mask is built in a forward pre-hook rather than in the collator.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch

from workbench import trl_private  # noqa: F401 - checks the TRL release these assumptions were read from
from workbench.masking import attention_inputs

IGNORE = -100


def first_fit_decreasing(lengths: list[int], capacity: int) -> list[list[int]]:
    """Indices of ``lengths`` grouped into bins of at most ``capacity`` (longest first, each into the first fit)."""
    bins: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        fit = next((b for b, r in enumerate(room) if lengths[i] <= r), None)
        if fit is None:
            bins.append([])
            room.append(capacity)
            fit = len(bins) - 1
        bins[fit].append(i)
        room[fit] -= lengths[i]
    return bins


def fewest_positions(lengths: list[int], widths: int = 4) -> tuple[list[list[int]], int]:
    """Bins of ``lengths`` and the row width (1 to ``widths`` x the longest) that compute the fewest positions."""
    # The narrowest width wins a tie; the bound keeps the dense masks (rows x width^2) within
    # ``widths`` times those of the padded batch.
    longest = max(lengths)
    options = [(first_fit_decreasing(lengths, k * longest), k * longest) for k in range(1, widths + 1)]
    return min(options, key=lambda option: (len(option[0]) * option[1], option[1]))


@dataclass
class PackingCollator:
    """Packs prepared rows ({input_ids, labels}) with ``segment_ids`` (-1: padding), restarting positions, a 2D mask."""

    pad_token_id: int

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Rows holding whole conversations, as few positions as :func:`fewest_positions` finds."""
        lengths = [len(e["input_ids"]) for e in examples]
        rows, width = fewest_positions(lengths)
        shape = (len(rows), width)
        batch = {"input_ids": torch.full(shape, self.pad_token_id), "labels": torch.full(shape, IGNORE),
                 "attention_mask": torch.zeros(shape, dtype=torch.long),
                 "position_ids": torch.zeros(shape, dtype=torch.long),
                 "segment_ids": torch.full(shape, -1)}
        for r, members in enumerate(rows):
            start = 0
            for segment, i in enumerate(members):
                span = slice(start, start + lengths[i])
                batch["input_ids"][r, span] = torch.as_tensor(examples[i]["input_ids"])
                batch["labels"][r, span] = torch.as_tensor(examples[i]["labels"])
                batch["attention_mask"][r, span] = 1
                batch["segment_ids"][r, span] = segment
                batch["position_ids"][r, span] = torch.arange(lengths[i])
                start += lengths[i]
        # The model shifts labels: a conversation's last token must not learn the next one's first.
        batch["labels"][batch["position_ids"] == 0] = IGNORE
        return batch


@contextlib.contextmanager
def document_masking(model):
    """While inside, ``model(..., segment_ids=...)`` attends within segments (replacing the collator's 2D mask).

    Calls without ``segment_ids`` (unpacked rows, generation) are left as they are.
    """

    def replace_mask(module, args, kwargs):
        if "segment_ids" not in kwargs:
            return None
        kwargs.pop("attention_mask", None)
        return args, {**kwargs, **attention_inputs(module, kwargs.pop("segment_ids"))}

    handle = model.register_forward_pre_hook(replace_mask, with_kwargs=True)
    try:
        yield model
    finally:
        handle.remove()
