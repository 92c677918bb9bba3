"""Every use of TRL's private API, in one place, for the TRL release it was written against (checked here).

TRL's trainers expose no public hook for two things the workbench needs: changing a dataset after
TRL has tokenized it (DPO drops pairs with nothing left to train on; the reward model brings its
own packed rows) and wrapping a step's loss (DPO adds its per-sequence NLL term). The classes here
turn those private steps into public hooks, so the trainers in ``workbench.posttrain.dpo`` and
``reward.trainer`` override only names of their own. The helpers TRL keeps outside its top-level
exports are re-exported from here too. Moving to another TRL means reading the overridden methods
in its source, and the SFTTrainer behaviour ``workbench.posttrain.sft_packing`` relies on (its
docstring lists it), and updating :data:`TRL_VERSION`.
"""

from __future__ import annotations

import trl
from trl import DPOTrainer, RewardTrainer
from trl.trainer.dpo_trainer import DataCollatorForPreference
from trl.trainer.reward_trainer import suppress_seqcls_warning
from trl.trainer.utils import pad

TRL_VERSION = "1.16."  # the release whose private methods and attributes are used below
if not trl.__version__.startswith(TRL_VERSION):
    raise ImportError(f"workbench.trl_private: written for trl {TRL_VERSION}x, found {trl.__version__}; check the "
                      "overridden private methods (_prepare_dataset, _compute_loss, _set_signature_columns_if_needed, "
                      "_metrics, _total_train_tokens) against this TRL and update TRL_VERSION")

__all__ = ["DPOTrainerHooks", "DataCollatorForPreference", "RewardTrainerHooks", "pad", "suppress_seqcls_warning"]


class _MetricsLogging:
    """Public access to the per-mode metrics TRL's trainers average at each log (their ``_metrics``)."""

    def log_metric(self, mode: str, name: str, value: float, *, replace: bool = False) -> None:
        """Record ``value`` for ``name`` in mode ``train`` or ``eval`` (``replace`` keeps only it)."""
        if replace:
            self._metrics[mode][name] = [value]
        else:
            self._metrics[mode][name].append(value)


class DPOTrainerHooks(_MetricsLogging, DPOTrainer):
    """DPOTrainer with public hooks over its private dataset preparation and loss."""

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        return self.filter_prepared(super()._prepare_dataset(dataset, processing_class, args, dataset_name),
                                    args, dataset_name)

    def filter_prepared(self, dataset, args, dataset_name: str):
        """The dataset after TRL tokenized it (rows with prompt_ids, chosen_ids, rejected_ids); override to filter."""
        return dataset

    def _compute_loss(self, model, inputs, return_outputs):
        return self.step_loss(model, inputs, return_outputs)

    def step_loss(self, model, inputs, return_outputs):
        """One step's loss (and outputs when asked); override to add terms around :meth:`trl_step_loss`."""
        return self.trl_step_loss(model, inputs, return_outputs)

    def trl_step_loss(self, model, inputs, return_outputs):
        """TRL's own DPO loss of one step."""
        return DPOTrainer._compute_loss(self, model, inputs, return_outputs)


class RewardTrainerHooks(_MetricsLogging, RewardTrainer):
    """RewardTrainer taking datasets as given, with set input columns and public metric logging."""

    input_columns: tuple[str, ...] = ()  # the collated batch's columns (TRL would infer them from forward())

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        return dataset  # the caller's rows come tokenized and filtered

    def _set_signature_columns_if_needed(self):
        if self._signature_columns is None:
            self._signature_columns = list(self.input_columns)

    def count_train_tokens(self, tokens: int) -> None:
        """Add ``tokens`` (already gathered over processes) to the run's trained-token count."""
        self._total_train_tokens += tokens

    @property
    def train_tokens(self) -> int:
        """Tokens trained on so far."""
        return self._total_train_tokens
