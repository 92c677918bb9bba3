"""Configs of `workbench sft`, `workbench dpo` and `workbench average`."""

from dataclasses import dataclass

from workbench.config_base import field


@dataclass
class SFTConfig:
    """Supervised fine-tuning (TRL SFTTrainer), loss on the assistant's tokens only."""

    num_train_epochs: float = field(2.0, "epochs over the SFT mix")
    learning_rate: float = field(1e-3, "peak learning rate")


@dataclass
class DPOConfig:
    """The modified DPO of Llama 3 (TRL DPOTrainer)."""

    beta: float = field(0.1, "DPO temperature (Llama 3: 0.1)")
    nll_coef: float = field(0.2, "weight of the NLL term on the chosen response (Llama 3: 0.2)")
    learning_rate: float = field(1e-4, "peak learning rate")


@dataclass
class AveragingConfig:
    """Model averaging of stage variants."""

    method: str = field("linear", "linear (mergekit) averaging of the variants' weights")
