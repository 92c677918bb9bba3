"""The modified DPO of Llama 3 on TRL's DPOTrainer.

Per pair i, with log-probabilities summed over the response tokens that are not formatting tokens:

    loss = mean_i [ -log sigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r)))  +  nll_coef * NLL_i ]
    NLL_i = -(1 / n_i) * sum_t log pi(chosen_t)      (n_i = unmasked tokens of the chosen response)

- Formatting tokens (derived from the model's chat template, :class:`workbench.chat.ChatFormat`: for
  Llama 3 ``<|begin_of_text|>``, ``<|end_of_text|>``, the two header tokens and ``<|eot_id|>``; ChatML
  ``<|im_start|>``/``<|im_end|>``; or ``formatting_tokens`` of the config) are dropped from TRL's
  ``completion_mask`` in the collator,
  so they leave the DPO term for chosen and rejected, the NLL term and the precomputed reference
  log-probs alike. Chosen and rejected share them, and Llama 3 found that their conflicting signals
  (raise and lower the same token) destabilise training (tail repetition, stray end-of-turn tokens).
- The NLL term is normalised per sequence, by the chosen response's own token count, then averaged
  over pairs, as in Pang et al. 2024 (the work Llama 3 cites for it). TRL's ``"sft"`` loss instead
  takes one mean over all chosen tokens of a micro-batch, which weights pairs by length and makes the
  loss depend on how a batch is split across processes and accumulation steps; the per-sequence
  mean keeps the whole loss a mean over pairs, so 2 processes give the same result as 1.
- A pair whose chosen or rejected response has no token left after masking (and truncation to
  ``max_length``, from the end with ``truncation_mode: keep_end`` in ``trl_args``) is skipped and
  counted in ``skipped_rows``, never turned into a NaN.
- Reference model: the SFT model (TRL loads it again from ``sft_dir``); with LoRA, the same weights
  with the adapters disabled; ``precompute_ref_log_probs`` computes its log-probs once up front.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch

from workbench.chat import ChatFormat, chat_format
from workbench.preferences import STRONG_LEVELS, Preference
from workbench.trl_private import DataCollatorForPreference, DPOTrainerHooks


def preference_pairs(preferences: Iterable[Preference], levels: Iterable[str] = STRONG_LEVELS
                     ) -> tuple[list[dict], dict[str, int]]:
    """DPO rows (conversational prompt/chosen/rejected) from the preferences rated at ``levels``.

    Without an edit a preference gives chosen > rejected; with one, the two pairs edited > chosen and
    edited > rejected (issue 6), so chosen > rejected is not trained on when an edit exists. An edit
    equal to the chosen response counts as no edit.
    """
    levels = set(levels)
    rows, used, total = [], 0, 0
    for pref in preferences:
        total += 1
        if pref.level not in levels:
            continue
        used += 1
        edited = pref.edited if pref.edited and pref.edited.strip() != pref.chosen.strip() else None
        pairs = [(edited, pref.chosen), (edited, pref.rejected)] if edited else [(pref.chosen, pref.rejected)]
        rows += [{"prompt": pref.prompt, "chosen": [{"role": "assistant", "content": better}],
                  "rejected": [{"role": "assistant", "content": worse}], "id": pref.id} for better, worse in pairs]
    return rows, {"preferences": total, "preferences_used": used, "pairs_used": len(rows)}


def kept_completion(prompt_ids: list[int], completion_ids: list[int], max_length: int | None,
                    truncation_mode: str) -> list[int]:
    """The completion tokens TRL's collator keeps once prompt + completion is cut to ``max_length``."""
    if max_length is None:
        return list(completion_ids)
    if truncation_mode not in ("keep_start", "keep_end"):
        raise ValueError(f"dpo: truncation_mode {truncation_mode!r}: expected 'keep_start' or 'keep_end'")
    # the same slice as the collator's, applied to the tokens and to which of them are completion
    cut = slice(None, max_length) if truncation_mode == "keep_start" else slice(-max_length, None)
    ids = (list(prompt_ids) + list(completion_ids))[cut]
    is_completion = ([False] * len(prompt_ids) + [True] * len(completion_ids))[cut]
    return [t for t, keep in zip(ids, is_completion) if keep]


@dataclass
class MaskingCollator(DataCollatorForPreference):
    """TRL's preference collator with the given token ids removed from ``completion_mask``."""

    masked_ids: tuple[int, ...] = ()

    def torch_call(self, examples):
        """Collate as TRL does, then unmask nothing but the non-masked completion tokens."""
        batch = super().torch_call(examples)
        if self.masked_ids:
            masked = torch.isin(batch["input_ids"], torch.tensor(self.masked_ids))
            batch["completion_mask"] = batch["completion_mask"].masked_fill(masked, 0)
        return batch


class _Recorder(torch.nn.Module):
    """Calls the policy and keeps its outputs, so the NLL term reuses TRL's forward pass."""

    def __init__(self, model):
        super().__init__()
        self.model, self.outputs = model, []

    def forward(self, *args, **kwargs):
        """Forward to the policy and record what it returned."""
        out = self.model(*args, **kwargs)
        self.outputs.append(out)
        return out


class ModifiedDPOTrainer(DPOTrainerHooks):
    """DPOTrainer with formatting tokens masked and a per-sequence NLL term on the chosen response."""

    def __init__(self, *args, masked_token_ids: Iterable[int] = (), nll_coef: float = 0.0, **kwargs):
        self.masked_token_ids = tuple(masked_token_ids)
        self.masked_tokens = kwargs["processing_class"].convert_ids_to_tokens(list(self.masked_token_ids))
        self.nll_coef = nll_coef
        self.skipped_rows: dict[str, int] = {}
        config, tokenizer = kwargs["args"], kwargs["processing_class"]
        collator = MaskingCollator(pad_token_id=tokenizer.pad_token_id, max_length=config.max_length,
                                   truncation_mode=config.truncation_mode,
                                   pad_to_multiple_of=config.pad_to_multiple_of, masked_ids=self.masked_token_ids)
        super().__init__(*args, data_collator=collator, **kwargs)

    def filter_prepared(self, dataset, args, dataset_name: str):
        """After TRL tokenized the pairs, skip (and count) those left with no trainable token."""
        keep = [i for i, row in enumerate(dataset) if self._has_tokens(row, args.max_length, args.truncation_mode)]
        self.skipped_rows[dataset_name] = len(dataset) - len(keep)
        if not keep:
            raise ValueError(f"dpo: every one of the {len(dataset)} {dataset_name} pairs has an empty chosen or "
                             "rejected response once formatting tokens are masked")
        return dataset.select(keep) if len(keep) < len(dataset) else dataset

    def _has_tokens(self, row: dict, max_length: int | None, truncation_mode: str) -> bool:
        """True when chosen and rejected each keep an unmasked token after the collator's truncation."""
        return all(any(t not in self.masked_token_ids
                       for t in kept_completion(row["prompt_ids"], row[key], max_length, truncation_mode))
                   for key in ("chosen_ids", "rejected_ids"))

    def step_loss(self, model, inputs, return_outputs):
        """TRL's DPO loss (on the masked completion) plus ``nll_coef`` x the mean per-sequence NLL of chosen."""
        recorder = _Recorder(model)
        result = self.trl_step_loss(recorder, inputs, return_outputs)
        if not self.nll_coef:
            return result
        loss, outputs = result if return_outputs else (result, None)
        mask = inputs["completion_mask"][:, 1:]
        chosen_logps, _ = recorder.outputs[0].log_probs[:, -mask.size(1):].chunk(2, dim=0)
        chosen_mask, _ = mask.chunk(2, dim=0)
        nll = -(chosen_logps * chosen_mask).sum(dim=1) / chosen_mask.sum(dim=1).clamp(min=1)
        loss = loss + self.nll_coef * nll.mean()
        mode = "train" if self.model.training else "eval"
        self.log_metric(mode, "nll", self.accelerator.gather(nll.detach()).mean().item())
        return (loss, outputs) if return_outputs else loss


def build_trainer(dpo_cfg, rows: list[dict], model, tokenizer, out_dir: str | Path, *, seed: int,
                  tracking: dict | None = None, ref_model=None) -> ModifiedDPOTrainer:
    """The modified-DPO trainer for ``rows`` (from :func:`preference_pairs`); reference = ``ref_model`` or the policy's folder."""
    from datasets import Dataset
    from trl import DPOConfig as TRLDPOConfig

    from workbench.posttrain.common import trl_kwargs

    args = TRLDPOConfig(**trl_kwargs(dpo_cfg, Path(out_dir), seed, tracking),
                        loss_type=["sigmoid"], loss_weights=[1.0])
    masked = (ChatFormat.from_tokenizer(tokenizer, dpo_cfg.formatting_tokens).formatting_ids
              if dpo_cfg.mask_formatting_tokens else ())
    return ModifiedDPOTrainer(model=model, ref_model=ref_model, args=args, processing_class=tokenizer,
                              train_dataset=Dataset.from_list(rows), peft_config=dpo_cfg.lora.peft_config(),
                              masked_token_ids=masked, nll_coef=dpo_cfg.nll_coef)


def train_dpo(dpo_cfg, preferences: list[Preference], sft_dir: str | Path, out_dir: str | Path, *,
              seed: int, tracking: dict | None = None) -> dict:
    """Train the SFT model in ``sft_dir`` with the modified DPO; save the policy (HF format) to ``out_dir``.

    Returns the last logged step's metrics (``loss``, ``rewards/accuracies``, ``rewards/margins``,
    ``nll``, ...) with ``skipped_rows``, ``pairs_used``, ``preferences_used``, ``masked_tokens``
    (the tokens left out of the loss, as strings) and ``pad_choice`` (where the pad token came from).
    ``tracking`` as in ``train_sft``. An interrupted run resumes from its last checkpoint.
    """
    from workbench.posttrain.common import (final_metrics, load_policy, resume_checkpoint, save_final,
                                            work_dir)
    from workbench.tokenizer import load_tokenizer

    rows, counts = preference_pairs(preferences, dpo_cfg.levels)
    if not rows:
        raise ValueError(f"dpo: none of the {counts['preferences']} preferences is rated {dpo_cfg.levels}")
    tokenizer = load_tokenizer(sft_dir)
    if dpo_cfg.mask_formatting_tokens:  # a bad formatting_tokens list fails before the model loads
        ChatFormat.from_tokenizer(tokenizer, dpo_cfg.formatting_tokens)
    trainer = build_trainer(dpo_cfg, rows, load_policy(sft_dir), tokenizer, out_dir, seed=seed, tracking=tracking)
    output = trainer.train(resume_from_checkpoint=resume_checkpoint(work_dir(out_dir)))
    save_final(trainer, tokenizer, out_dir)
    skipped = trainer.skipped_rows["train"]
    return {**final_metrics(trainer, output), **counts, "pairs_used": counts["pairs_used"] - skipped,
            "skipped_rows": skipped, "masked_tokens": list(trainer.masked_tokens),
            "pad_choice": chat_format(tokenizer).pad_choice}
