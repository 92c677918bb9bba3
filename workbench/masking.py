"""Document masking: the attention input that keeps the segments of a packed row apart.

A packed row holds several segments (pretraining documents, SFT conversations, or a reward row's
prompt and responses), numbered by ``segment_ids`` [batch, T]. Measured with transformers 5.19 on the
CPU: eager attention reads a boolean 4D mask wrongly (a packed document's logits differ from the
document alone), and position ids restarting at 0 isolate segments only when the model is called
without a cache and without a mask (transformers then infers the segments); the additive float
mask [batch, 1, T, T] (0 where a query may attend, the dtype's minimum elsewhere) isolates exactly
under eager and sdpa. Flash-attention's varlen kernels take no dense mask: they read the segments
from position ids that restart at 0, so for them no mask is passed (flash-attention does not
install on this CPU machine; that path is untested here). flex_attention has no backward on the CPU.
"""

from __future__ import annotations

import torch

# Implementations whose kernels split a row into segments where its position ids restart at 0.
VARLEN_IMPLEMENTATIONS = ("flash_attention_2", "flash_attention_3", "flash_attention_4")


def document_mask(segment_ids: torch.Tensor, dtype: torch.dtype = torch.float32,
                  shared_segment: int | None = None) -> torch.Tensor:
    """Additive [batch, 1, T, T] mask: causal inside a segment; every segment >= 0 also sees ``shared_segment``.

    A negative segment (padding) sees only itself, so no query's softmax row is empty.
    """
    T = segment_ids.shape[-1]
    q, k = segment_ids[:, :, None], segment_ids[:, None, :]
    allowed = q == k
    if shared_segment is not None:
        allowed = allowed | ((k == shared_segment) & (q >= 0))
    allowed = allowed & torch.ones(T, T, dtype=torch.bool, device=segment_ids.device).tril()
    mask = torch.zeros(allowed.shape, dtype=dtype, device=segment_ids.device)
    return mask.masked_fill(~allowed, torch.finfo(dtype).min)[:, None]


def attention_implementation(model) -> str:
    """The attention implementation ``model`` runs (through ``.module`` for DDP; PEFT forwards ``config``)."""
    return getattr(model, "module", model).config._attn_implementation  # transformers keeps it private


def is_varlen(model) -> bool:
    """Whether ``model``'s attention splits rows into segments from position ids (no dense mask)."""
    return attention_implementation(model) in VARLEN_IMPLEMENTATIONS


def attention_inputs(model, segment_ids: torch.Tensor, shared_segment: int | None = None) -> dict:
    """The forward kwargs that isolate segments under ``model``'s attention implementation.

    Under a varlen implementation the position ids must restart at 0 per segment, which cannot
    express a shared segment.
    """
    if is_varlen(model):
        if shared_segment is not None:
            raise ValueError(f"attn_implementation {attention_implementation(model)}: a segment shared by other "
                             "segments needs a dense mask; load the model with attn_implementation='sdpa' or 'eager'")
        return {}
    return {"attention_mask": document_mask(segment_ids, getattr(model, "module", model).dtype, shared_segment)}
