"""SFT packing with document masks on TRL's SFTTrainer: several conversations per row, none sees another.

TRL 1.16 packs (``packing=True``, best-fit decreasing) only in its padding-free mode: every batch
becomes one row whose position ids restart per conversation, which isolates conversations only
under varlen kernels (flash-attention) and forbids a custom collator. For the other attention
implementations the workbench packs instead: TRL prepares the rows as without packing (chat
template, assistant-only labels, truncation), :func:`pack` bins them with TRL's public
``pack_dataset``, :class:`DocumentCollator` numbers each row's conversations, and
:func:`document_masking` turns those numbers into the model's mask
(:func:`workbench.masking.attention_inputs`) right before each forward.

What this relies on in TRL 1.16 beyond its documented API (checked at import): the prepared
``train_dataset`` holds ``input_ids`` and ``labels``; SFTTrainer keeps a ``seq_lengths`` column
(its signature columns); it passes every collated key to ``model(**inputs)``; and its token
count reads a 2D ``attention_mask``, which is why the collator returns one and the 4D mask is
built in a forward pre-hook rather than in the collator.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
import trl

from workbench.masking import attention_inputs

TRL_VERSION = "1.16."  # the release whose SFTTrainer this module was written against
if not trl.__version__.startswith(TRL_VERSION):
    raise ImportError(f"workbench.posttrain.sft_packing: written for trl {TRL_VERSION}x, found {trl.__version__}; "
                      "check the assumptions in its docstring against this TRL and update TRL_VERSION")

IGNORE = -100


def pack(trainer, max_length: int) -> None:
    """Replace the trainer's prepared (unpacked) rows by rows of up to ``max_length`` tokens (best-fit decreasing)."""
    rows = trainer.train_dataset.select_columns(["input_ids", "labels"])
    trainer.train_dataset = trl.pack_dataset(rows, max_length, strategy="bfd")
    trainer.data_collator = DocumentCollator(pad_token_id=trainer.processing_class.pad_token_id)


@dataclass
class DocumentCollator:
    """Pads packed rows and adds ``segment_ids`` (-1 on padding), position ids restarting per conversation,
    and a 2D ``attention_mask`` of the real tokens."""

    pad_token_id: int

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """A batch of packed rows ({input_ids, labels, seq_lengths}) as padded tensors."""
        shape = (len(examples), max(len(e["input_ids"]) for e in examples))
        batch = {"input_ids": torch.full(shape, self.pad_token_id), "labels": torch.full(shape, IGNORE),
                 "attention_mask": torch.zeros(shape, dtype=torch.long),
                 "position_ids": torch.zeros(shape, dtype=torch.long),
                 "segment_ids": torch.full(shape, -1)}
        for i, example in enumerate(examples):
            lengths = torch.as_tensor(example["seq_lengths"])
            n = int(lengths.sum())
            batch["input_ids"][i, :n] = torch.as_tensor(example["input_ids"])
            batch["labels"][i, :n] = torch.as_tensor(example["labels"])
            batch["attention_mask"][i, :n] = 1
            batch["segment_ids"][i, :n] = torch.repeat_interleave(torch.arange(len(lengths)), lengths)
            batch["position_ids"][i, :n] = torch.cat([torch.arange(int(k)) for k in lengths])
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
