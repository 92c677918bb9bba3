"""Before the rounds, experts: each enabled capability expert (code, multilingual, math) in ``experts/<domain>/``.

The recipe is :func:`experts.train.expert_stage` (one per domain): the domain-heavy corpus and the
continued pretraining of the base (sub-stages of ``experts/_cpt/<domain>/``, each skipped when done),
then SFT on checked demonstrations, under ``distributed`` like every training stage. The orchestrator
runs it for ``experts.enabled`` before round 1; `workbench experts train DOMAIN` runs one. Sampling
never trains an expert: the round's samples stage refuses an untrained one.
"""

from experts.train import expert_stage, train_expert

__all__ = ["expert_stage", "train_expert"]
