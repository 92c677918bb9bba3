"""Configs of the bootstrap policy and the round orchestrator (`workbench rounds`)."""

from dataclasses import dataclass
from typing import Literal

from workbench.config_base import ConfigError, field

VARIANT_STAGES = ("reward", "sft", "dpo")


@dataclass
class BootstrapConfig:
    """The first chat policy: SFT of the base on curated task-world demonstrations."""

    num_examples: int = field(400, "curated demonstrations (task-world reference solutions)")

    def validate(self) -> None:
        """Check ranges."""
        if self.num_examples < 1:
            raise ConfigError("num_examples: must be at least 1")


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
    dpo_preferences: Literal["newest", "all"] = field("newest", "DPO trains on the newest round's preferences (Llama 3) or all so far")
    variants: dict[str, int] = field(
        {"reward": 1, "sft": 1, "dpo": 1},
        "models trained per stage with different seeds and averaged (model averaging); 1 = no averaging")
    annotation_wait: bool = field(False, "in human mode, poll until the quota is met instead of stopping")

    def validate(self) -> None:
        """Check ranges and names."""
        if not 1 <= self.num_rounds <= 99:
            raise ConfigError("num_rounds: must be in 1..99")
        if self.prompts_per_round < 2 or self.rs_prompts_per_round < 1:
            raise ConfigError("prompts_per_round: must be at least 2 (and rs_prompts_per_round at least 1)")
        if not 0 <= self.curated_share < 1:
            raise ConfigError("curated_share: must be in [0, 1)")
        for stage, count in self.variants.items():
            if stage not in VARIANT_STAGES:
                raise ConfigError(f"variants.{stage}: expected one of {VARIANT_STAGES}")
            if count < 1:
                raise ConfigError(f"variants.{stage}: must be at least 1")
