"""Configs of the bootstrap policy and the round orchestrator (`workbench rounds`)."""

from dataclasses import dataclass

from workbench.config_base import field


@dataclass
class BootstrapConfig:
    """The first chat policy: SFT of the base on curated task-world demonstrations."""

    num_examples: int = field(400, "curated demonstrations (task-world reference solutions)")


@dataclass
class RoundsConfig:
    """The six rounds of post-training."""

    num_rounds: int = field(6, "rounds to run (Llama 3: 6)")
    prompts_per_round: int = field(200, "prompts per round for preferences and rejection sampling")
