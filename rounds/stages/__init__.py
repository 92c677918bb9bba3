"""The stages of a round, one file each, in the order the orchestrator runs them.

Each module defines ``STAGE`` (a :class:`workbench.stage.Stage`): the config section it owns, the
inputs it reads from the run folder, and ``run``, which writes the stage's one folder
(``runs/<name>/rounds/round_NN/<stage>/``) and returns its metrics. :func:`workbench.stage.run_stage`
writes every manifest.
"""

from rounds.stages import dpo, policy, preferences, reward, samples, sft

ROUND_STAGES = tuple(module.STAGE for module in (preferences, reward, samples, sft, dpo, policy))
