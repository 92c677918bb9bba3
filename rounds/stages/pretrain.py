"""Before the rounds, pretrain: the base model pretrained from scratch into ``base/``.

The recipe is the core's (``workbench.pretrain.stage.STAGE``): `workbench pretrain` and the
capability experts' continued pretraining run it too. Under ``distributed`` it trains on several
processes.
"""

from workbench.pretrain.stage import STAGE

__all__ = ["STAGE"]
