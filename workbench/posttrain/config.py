"""Configs of `workbench sft`, `workbench dpo` and `workbench average`.

The sections keep only the fields the workbench decides on; every other TRL option goes through
``trl_args`` (checked against TRL's own ``SFTConfig``/``DPOConfig``), so the workbench extends TRL's
configs instead of copying their fields.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from workbench.config_base import ConfigError, field
from workbench.preferences import LEVELS, STRONG_LEVELS

# TRL fields the workbench sets itself (from the run, the stage or a workbench field).
_RESERVED = ("output_dir", "seed", "report_to", "project", "run_name", "resume_from_checkpoint",
             "loss_type", "loss_weights", "assistant_only_loss")


@dataclass
class LoRAConfig:
    """LoRA adapters through PEFT; merged into the saved model so every checkpoint stays plain HF."""

    r: int = field(0, "LoRA rank; 0 trains all weights (full fine-tuning)")
    alpha: int = field(16, "LoRA scaling numerator (lora_alpha)")
    dropout: float = field(0.0, "dropout on the LoRA branch")
    target_modules: str | list[str] = field("all-linear", "modules that get adapters (PEFT's target_modules)")

    def validate(self) -> None:
        """Check ranges."""
        if self.r < 0:
            raise ConfigError("r: must be >= 0 (0 disables LoRA)")

    def peft_config(self):
        """A `peft.LoraConfig`, or None when LoRA is off."""
        if not self.r:
            return None
        from peft import LoraConfig

        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=self.target_modules, task_type="CAUSAL_LM")


@dataclass
class _TrainerSection:
    """Fields SFT and DPO share; the rest of TRL's options go through ``trl_args``."""

    num_train_epochs: float = field(2.0, "epochs over the data")
    learning_rate: float = field(1e-3, "peak learning rate")
    per_device_train_batch_size: int = field(8, "rows per process per step")
    gradient_accumulation_steps: int = field(1, "micro-batches per optimizer step")
    max_length: int | None = field(1024, "longest tokenized row; longer rows are truncated at the end")
    lora: LoRAConfig = field(LoRAConfig(), LoRAConfig.__doc__)
    trl_args: dict[str, Any] = field({}, "extra keyword arguments of TRL's config class (e.g. lr_scheduler_type)")

    _trl_class = ""

    def validate(self) -> None:
        """Check ranges, and that ``trl_args`` names real TRL fields the workbench does not own."""
        if self.learning_rate <= 0 or self.num_train_epochs <= 0:
            raise ConfigError("learning_rate and num_train_epochs: must be > 0")
        if self.per_device_train_batch_size < 1 or self.gradient_accumulation_steps < 1:
            raise ConfigError("per_device_train_batch_size and gradient_accumulation_steps: must be >= 1")
        if self.trl_args:  # import TRL only when there is something to check (it takes seconds)
            self.trl_config_kwargs()

    def trl_config_class(self) -> type:
        """TRL's config class this section extends."""
        import trl

        return getattr(trl, self._trl_class)

    def trl_config_kwargs(self) -> dict[str, Any]:
        """The workbench fields that are TRL fields, plus ``trl_args``, checked for unknown or owned keys."""
        names = {f.name for f in dataclasses.fields(self.trl_config_class())}
        own = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name in names}
        for key in self.trl_args:
            if key not in names:
                raise ConfigError(f"trl_args.{key}: not a field of trl.{self._trl_class}")
            if key in own or key in _RESERVED:
                raise ConfigError(f"trl_args.{key}: set by the workbench"
                                  + (f"; use the section's field {key}" if key in own else ""))
        return {**own, **self.trl_args}


@dataclass
class SFTConfig(_TrainerSection):
    """Supervised fine-tuning (TRL SFTTrainer), loss on the assistant's tokens only."""

    _trl_class = "SFTConfig"

    init_from: str = field("base", "model SFT starts from: base (the pretrained model, as in Llama 3), "
                                   "policy (the previous round's) or a model folder")
    packing: bool = field(True, "pack each batch's conversations into shared rows with document masks "
                                "(same steps and loss, no padding)")


@dataclass
class DPOConfig(_TrainerSection):
    """The modified DPO of Llama 3 (TRL DPOTrainer + formatting-token masking + NLL term)."""

    _trl_class = "DPOConfig"

    learning_rate: float = field(1e-4, "peak learning rate")
    num_train_epochs: float = field(1.0, "epochs over the preference pairs")
    beta: float = field(0.1, "DPO temperature (Llama 3: 0.1)")
    nll_coef: float = field(0.2, "weight of the per-sequence NLL term on the chosen response (Llama 3: 0.2)")
    mask_formatting_tokens: bool = field(True, "leave the formatting tokens out of every loss term (Llama 3: its five)")
    formatting_tokens: list[str] | None = field(None, "the tokens masked; null: derived from the model's chat template "
                                                      "(the special tokens around the messages, BOS, EOS, stops), "
                                                      "e.g. ['<|im_start|>', '<|im_end|>'] for ChatML")
    levels: list[str] = field(list(STRONG_LEVELS), "preference strengths trained on (Llama 3: the two strongest)")
    precompute_ref_log_probs: bool = field(False, "compute the reference log-probs once before training "
                                                  "(saves a forward per step; frees the reference model)")

    def validate(self) -> None:
        """Check ranges and level names."""
        super().validate()
        if self.beta <= 0 or self.nll_coef < 0:
            raise ConfigError("beta: must be > 0; nll_coef: must be >= 0")
        if self.formatting_tokens is not None and not all(isinstance(t, str) and t for t in self.formatting_tokens):
            raise ConfigError("formatting_tokens: expected null or a list of token strings, e.g. ['<|im_end|>']")
        unknown = [lv for lv in self.levels if lv not in LEVELS]
        if unknown or not self.levels:
            raise ConfigError(f"levels: {unknown or 'empty'}; expected a non-empty subset of {list(LEVELS)}")


@dataclass
class AveragingConfig:
    """Model averaging of stage variants (RM, SFT or DPO checkpoints of one architecture)."""

    method: Literal["linear"] = field("linear", "linear: mergekit's weighted mean of the variants' weights")
    weights: list[float] | None = field(None, "one weight per model (normalised to sum 1); null: uniform")
