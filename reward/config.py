"""Config of `workbench reward`."""

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from workbench.config_base import ConfigError, field
from workbench.preferences import LEVELS


@dataclass
class RewardConfig:
    """Reward-model training and scoring (a sequence-classification head on the base, Bradley-Terry loss).

    row_format: ``packed`` puts the prompt and its 2-3 ranked responses in one row (Llama 3), each
    response attending only to the prompt and itself, the loss over every ranked pair of the row;
    ``pair`` is TRL's RewardTrainer as is, one (chosen, rejected) pair per row.
    margins: Llama 2's margin per preference level (level -> margin); empty means no margin (Llama 3).
    """

    row_format: Literal["packed", "pair"] = field(
        "packed", "packed: prompt + 2-3 ranked responses per row (Llama 3); pair: one pair per row (TRL)")
    near_duplicate_threshold: float = field(
        0.95, "drop a preference whose chosen and rejected have word-level similarity >= this (1.0: exact only)")
    margins: dict[str, float] = field(
        {}, "margin per preference level in the loss (Llama 2); empty: no margin (Llama 3)")
    learning_rate: float = field(1e-3, "peak learning rate")
    num_train_epochs: float = field(2.0, "epochs over the preference data")
    batch_size: int = field(8, "rows per optimizer step and process (packed rows, or pairs in pair mode)")
    max_length: int = field(512, "most tokens per row (packed: prompt + all its responses); longer rows are dropped")
    warmup_ratio: float = field(0.05, "fraction of the steps with linear warm-up")
    lr_scheduler_type: str = field("cosine", "transformers scheduler name (cosine, linear, constant, ...)")
    weight_decay: float = field(0.0, "AdamW weight decay")
    center_rewards_coefficient: float | None = field(
        None, "weight of a term pushing rewards towards mean zero (TRL; 0.01 is typical); null: off")
    heldout_fraction: float = field(
        0.1, "share of each round's prompts held out for pairwise accuracy when there is no fixed held-out set")
    heldout_pairs: int = field(
        1000, "size of the run's fixed held-out set (reward_heldout/), built once from the task world's evaluation "
        "items and scored by every round's reward model; 0: hold out heldout_fraction of each round's prompts")
    heldout_data: list[str] = field(
        [], "held-out preference files (any format workbench.formats reads) every round's reward model is scored "
        "on, in place of the task world's set (a run on the user's prompts); empty: none")
    logging_steps: int = field(10, "log the training loss every this many steps")
    score_batch_size: int = field(32, "sequences scored together by the scorer and the held-out evaluation")

    def validate(self) -> None:
        """Check ranges and margin levels."""
        if not 0.0 < self.near_duplicate_threshold <= 1.0:
            raise ConfigError("near_duplicate_threshold: must be in (0, 1]")
        unknown = sorted(set(self.margins) - set(LEVELS))
        if unknown:
            raise ConfigError(f"margins: unknown level {unknown[0]!r}, expected one of {list(LEVELS)}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError("warmup_ratio: must be in [0, 1)")
        if not 0.0 <= self.heldout_fraction < 1.0:
            raise ConfigError("heldout_fraction: must be in [0, 1)")
        if self.heldout_pairs < 0:
            raise ConfigError("heldout_pairs: must be at least 0 (0: no fixed held-out set)")
        for i, path in enumerate(self.heldout_data):
            if not Path(path).exists():
                raise ConfigError(f"heldout_data[{i}]: {path} not found (relative paths are read from the "
                                  "working directory)")
        for name in ("batch_size", "max_length", "logging_steps", "score_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1")
        if self.learning_rate <= 0 or self.num_train_epochs <= 0:
            raise ConfigError("learning_rate and num_train_epochs: must be positive")
