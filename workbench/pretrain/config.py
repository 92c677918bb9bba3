"""Config of `workbench pretrain`."""

from dataclasses import dataclass

from workbench.config_base import field


@dataclass
class PretrainConfig:
    """Pretraining of the base model from scratch."""

    max_steps: int = field(300, "optimizer steps before annealing")
    learning_rate: float = field(3e-3, "peak learning rate of the cosine schedule")
