"""Configs of the bootstrap policy and the round orchestrator (`workbench rounds`)."""

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from workbench.config_base import ConfigError, field
from workbench.preferences import LEVELS
from workbench.tasks.world import weight_problems

VARIANT_STAGES = ("reward", "sft", "dpo")


@dataclass
class BootstrapConfig:
    """The first chat policy: SFT of the base on curated task-world demonstrations."""

    num_examples: int = field(400, "curated demonstrations (task-world reference solutions); 0 with no "
                                   "rounds.sft_data: the base (a user's chat model) is the first policy as it is")
    learning_rate: float | None = field(None, "peak learning rate of the bootstrap SFT (null: sft.learning_rate)")
    num_train_epochs: float | None = field(None, "epochs of the bootstrap SFT (null: sft.num_train_epochs)")

    def validate(self) -> None:
        """Check ranges."""
        if self.num_examples < 0:
            raise ConfigError("num_examples: must be at least 0 (0: no task-world demonstrations)")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ConfigError("learning_rate: must be positive (or null: sft.learning_rate)")
        if self.num_train_epochs is not None and not self.num_train_epochs > 0:
            raise ConfigError("num_train_epochs: must be positive (or null: sft.num_train_epochs)")

    def sft_config(self, sft):
        """``sft`` (the rounds' SFT config) with this bootstrap's learning rate and epochs where they are set."""
        changes = {name: value for name in ("learning_rate", "num_train_epochs")
                   if (value := getattr(self, name)) is not None}
        return dataclasses.replace(sft, **changes) if changes else sft


@dataclass
class RoundsConfig:
    """The six rounds of post-training."""

    num_rounds: int = field(6, "rounds to run (Llama 3: 6)")
    prompts_per_round: int = field(200, "prompts per round sent for annotation (two responses each)")
    rs_prompts_per_round: int = field(200, "prompts per round for rejection sampling")
    preference_temperature: float = field(0.8, "sampling temperature of the two responses to compare")
    generation_backend: Literal["vllm", "transformers"] = field(
        "transformers", "backend for preference responses and evaluation (rejection sampling uses sampling.backend)")
    curated_share: float = field(0.25, "share of curated demonstrations in every round's SFT mix")
    dpo: bool = field(True, "run DPO after SFT; false keeps the SFT model as the round's policy (an ablation)")
    dpo_preferences: Literal["newest", "all"] = field("newest", "DPO trains on the newest round's preferences (Llama 3) or all so far")
    variants: dict[str, int] = field(
        {"reward": 1, "sft": 1, "dpo": 1},
        "models trained per stage with different seeds and averaged (model averaging); 1 = no averaging")
    annotation_wait: bool = field(False, "in human mode, poll until the quota is met instead of stopping")
    prompts: list[str] = field(
        [], "the user's prompt files (JSONL, parquet or a datasets folder; workbench.formats) for preference "
        "collection and rejection sampling, drawn without repetition across rounds while they last")
    prompt_source: Literal["task_world", "user", "mix"] = field(
        "task_world", "where a round's prompts come from: the task world, rounds.prompts, or both")
    user_prompt_share: float = field(0.5, "with prompt_source mix, the share of a round's prompts from rounds.prompts")
    family_weights: dict[str, float] = field(
        {}, "share of each task family among a round's task-world prompts (preference and rejection sampling), "
        "e.g. {math: 0.3, code: 0.1, multilingual: 0.2, general: 0.4}; families left out get none; {}: uniform")
    preference_data: list[str] = field(
        [], "the user's preference files (workbench schema, TRL explicit or implicit prompt, rated completions), "
        "read by the reward and DPO stages beside the rounds' own preferences")
    preference_data_rounds: Literal["all", "first"] = field(
        "all", "rounds whose reward and DPO stages read preference_data: every round, or round 1 only")
    preference_level: Literal[LEVELS] = field(
        "better", "the level given to a user preference that has none (every format but the workbench's)")
    sft_data: list[str] = field(
        [], "the user's SFT files (messages or TRL prompt/completion rows), mixed into the bootstrap's "
        "and every round's SFT data")

    def validate(self) -> None:
        """Check ranges and names."""
        if not 1 <= self.num_rounds <= 99:
            raise ConfigError("num_rounds: must be in 1..99")
        if self.prompts_per_round < 2 or self.rs_prompts_per_round < 1:
            raise ConfigError("prompts_per_round: must be at least 2 (and rs_prompts_per_round at least 1)")
        if not 0 <= self.curated_share < 1:
            raise ConfigError("curated_share: must be in [0, 1)")
        if self.prompt_source != "task_world" and not self.prompts:
            raise ConfigError(f"prompts: prompt_source {self.prompt_source} needs at least one prompt file")
        if not 0 < self.user_prompt_share < 1:
            raise ConfigError("user_prompt_share: must be in (0, 1)")
        if problems := weight_problems(self.family_weights):
            raise ConfigError("family_weights: " + "; ".join(problems))
        for name in ("prompts", "preference_data", "sft_data"):
            for i, path in enumerate(getattr(self, name)):
                if not Path(path).exists():
                    raise ConfigError(f"{name}[{i}]: {path} not found (relative paths are read from the "
                                      "working directory)")
        for stage, count in self.variants.items():
            if stage not in VARIANT_STAGES:
                raise ConfigError(f"variants.{stage}: expected one of {VARIANT_STAGES}")
            if count < 1:
                raise ConfigError(f"variants.{stage}: must be at least 1")
