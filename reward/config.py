"""Config of `workbench reward`."""

from dataclasses import dataclass

from workbench.config_base import field


@dataclass
class RewardConfig:
    """Reward-model training and scoring."""

    learning_rate: float = field(1e-3, "peak learning rate")
    num_train_epochs: float = field(2.0, "epochs over the preference data")
