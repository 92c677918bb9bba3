"""Every stage of a run, one file each, in the order the orchestrator runs them.

Before the rounds: ``data``, ``tokenizer``, ``pretrain`` (or ``base``, a user's model adopted),
``bootstrap``, ``experts`` (one per enabled domain). Each round: ``preferences``, ``reward``, ``samples``, ``sft``, ``dpo``, ``policy``.
Each module defines ``STAGE`` (a :class:`workbench.stage.Stage`): the config section it owns, the
inputs it reads from the run folder, and ``run``, which writes the stage's one folder and returns
its metrics; :func:`workbench.stage.run_stage` writes every manifest. The recipes of the core's own
stages (data, tokenizer, pretrain) live in the core, where their stage commands and the experts
use them too; their modules here point to them.
"""

from rounds.stages import (base, bootstrap, data, dpo, experts, policy, preferences, pretrain, reward, samples, sft,
                           tokenizer)

ROUND_STAGES = tuple(module.STAGE for module in (preferences, reward, samples, sft, dpo, policy))
__all__ = ["ROUND_STAGES", "base", "bootstrap", "data", "experts", "pretrain", "tokenizer"]
