"""Multi-response rows for TRL's RewardTrainer: block mask, collator, and a loss over every ranked pair.

A packed row is ``prompt | response_a | response_b [| response_c]``. Each response attends only
to the prompt and to itself (a 4D block mask; position ids alone do not isolate segments in
transformers 5.19), its positions continue from the prompt's end, and its score is read at its
last token, so a response scores exactly as it does alone. The mask is the workbench's additive
document mask with the prompt as a shared segment (:func:`workbench.masking.attention_inputs`),
which sdpa and eager both honour; flash-attention cannot express it and is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from reward.data import PACKED_COLUMNS
from workbench.masking import attention_inputs
from workbench.trl_private import RewardTrainerHooks, pad


def bradley_terry_terms(better: torch.Tensor, worse: torch.Tensor, margin: torch.Tensor | None = None) -> torch.Tensor:
    """-log sigmoid(r_better - r_worse - margin) per pair (margin: Llama 2, none: Llama 3)."""
    diff = better - worse
    if margin is not None:
        diff = diff - margin
    return -F.logsigmoid(diff)


def bradley_terry_loss(better: torch.Tensor, worse: torch.Tensor, margin: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of -log sigmoid(r_better - r_worse - margin) over pairs."""
    return bradley_terry_terms(better, worse, margin).mean()


def response_scores(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor,
                    ends: torch.Tensor) -> torch.Tensor:
    """Scores [batch, K] read at token positions ``ends`` [batch, K] (entries < 0 give 0 and are ignored).

    Goes through the model's own forward (so wrappers such as DDP see the call) and applies its
    ``score`` head to the final hidden states at the requested positions.
    """
    outputs = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                    output_hidden_states=True, use_cache=False)
    hidden = outputs.hidden_states[-1]  # the final-norm output (transformers ties it to last_hidden_state)
    rows = torch.arange(hidden.shape[0], device=hidden.device)[:, None]
    picked = hidden[rows, ends.clamp(min=0)]  # [batch, K, hidden]
    head = getattr(model, "module", model).score
    return head(picked).squeeze(-1).masked_fill(ends < 0, 0.0)


@dataclass
class RankedRowsCollator:
    """Pads packed rows on the right and lists every ranked pair of each row as flat (better, worse) indices."""

    pad_token_id: int

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Batch of packed rows -> padded tensors plus ``pairs`` [N, 2] into the flattened [batch*K] scores."""
        k = max(len(ex["ends"]) for ex in examples)
        pairs, margins = [], []
        for b, ex in enumerate(examples):
            ranks = ex["ranks"]
            for i, ri in enumerate(ranks):
                for j, rj in enumerate(ranks):
                    if ri < rj:
                        pairs.append((b * k + i, b * k + j))
                        margins.append(ex["margin"])
        tensor = lambda key: [torch.tensor(ex[key], dtype=torch.long) for ex in examples]  # noqa: E731
        return {
            "input_ids": pad(tensor("input_ids"), padding_value=self.pad_token_id, padding_side="right"),
            "position_ids": pad(tensor("position_ids"), padding_value=0, padding_side="right"),
            "segment_ids": pad(tensor("segment_ids"), padding_value=-1, padding_side="right"),
            "ends": pad(tensor("ends"), padding_value=-1, padding_side="right"),
            "pairs": torch.tensor(pairs, dtype=torch.long).reshape(-1, 2),
            "margin": torch.tensor(margins, dtype=torch.float),
        }


class RankedRowsRewardTrainer(RewardTrainerHooks):
    """TRL's RewardTrainer on packed multi-response rows (Llama 3): one forward per prompt, loss over all pairs.

    Takes the dataset of :func:`reward.data.packed_rows` and :class:`RankedRowsCollator`; logs
    the same metrics as RewardTrainer (accuracy, margin, rewards, tokens) over every pair.
    """

    input_columns = tuple(PACKED_COLUMNS)  # rows come tokenized and length-filtered from reward.data.packed_rows

    def __init__(self, *args, use_margin: bool = False, **kwargs):
        self.use_margin = use_margin
        super().__init__(*args, **kwargs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """Bradley-Terry loss over every ranked pair of every row in the batch."""
        mode = "train" if self.model.training else "eval"
        mask = attention_inputs(model, inputs["segment_ids"], shared_segment=0)["attention_mask"]
        scores = response_scores(model, inputs["input_ids"], mask, inputs["position_ids"], inputs["ends"])
        flat = scores.reshape(-1)
        better, worse = flat[inputs["pairs"][:, 0]], flat[inputs["pairs"][:, 1]]
        loss = self.mean_over_processes(bradley_terry_terms(better, worse, inputs["margin"] if self.use_margin else None))
        if self.args.center_rewards_coefficient is not None:
            valid = flat[inputs["ends"].reshape(-1) >= 0]
            loss = loss + self.args.center_rewards_coefficient * self.mean_over_processes(valid**2)
        self._log_metrics(mode, inputs, flat[inputs["ends"].reshape(-1) >= 0], better, worse)
        return (loss, {"scores": scores}) if return_outputs else loss

    def mean_over_processes(self, values: torch.Tensor) -> torch.Tensor:
        """The mean of ``values`` over every process's batch, in the form DDP's gradient average needs.

        Rows hold 2 or 3 responses, so processes hold different numbers of pairs: each process's sum
        is divided by the global count (times the processes, which DDP's average divides out again),
        so 2 processes train exactly as 1 with the same global batch.
        """
        processes = self.accelerator.num_processes
        if processes == 1:
            return values.mean()
        count = self.accelerator.reduce(torch.tensor(float(values.numel()), device=values.device), reduction="sum")
        return values.sum() * processes / count

    def _log_metrics(self, mode: str, inputs, rewards, better, worse) -> None:
        if mode == "train":
            self.count_train_tokens(self.accelerator.gather((inputs["segment_ids"] >= 0).sum()).sum().item())
        self.log_metric(mode, "num_tokens", self.train_tokens, replace=True)
        # Processes hold different numbers of responses: gather fixed-size reductions, never the ragged
        # tensors themselves (gloo aborts on an all_gather of unequal shapes).
        gather = self.accelerator.gather
        with torch.no_grad():
            self.log_metric(mode, "min_reward", gather(rewards.min()).min().item())
            self.log_metric(mode, "max_reward", gather(rewards.max()).max().item())
            total, count = gather(rewards.sum()).sum(), gather(torch.tensor(float(rewards.numel()), device=rewards.device)).sum()
            self.log_metric(mode, "mean_reward", (total / count).item())
            self.log_metric(mode, "accuracy", gather((better > worse).float().mean()).mean().item())
            self.log_metric(mode, "margin", gather((better - worse).mean()).mean().item())
