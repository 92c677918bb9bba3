"""Batch scoring of (prompt, response) pairs with a trained reward model, and held-out pairwise accuracy.

Contract used by rejection sampling::

    scorer = RewardScorer("runs/demo/rounds/round_01/reward")
    scores = scorer.score(prompts, responses)   # prompts: list of chat-message lists
    scorer.close()

Sequences are tokenized by :func:`reward.data.encode` (the same tokens training saw), sorted by
length, right-padded, and each score is read at its own last token, so a batch gives the same
scores as scoring one by one.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import torch

from reward.data import encode
from reward.trainer import response_scores
from workbench.preferences import LEVELS, Preference


class RewardScorer:
    """A reward model loaded for scoring; ``score`` is batched and order-preserving."""

    def __init__(self, model_dir: str | Path, device: str = "cpu", batch_size: int = 32):
        from transformers import AutoModelForSequenceClassification

        from workbench.tokenizer import load_tokenizer

        tokenizer = load_tokenizer(model_dir)  # refuses a tokenizer that does not fit, before the weights load
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), dtype=dtype).to(device)
        if model.config.num_labels != 1:
            raise ValueError(f"{model_dir}: not a reward model (num_labels={model.config.num_labels}, expected 1); "
                             "train one with `workbench reward train`")
        self._setup(model, tokenizer, device, batch_size)

    @classmethod
    def from_model(cls, model, tokenizer, batch_size: int = 32) -> "RewardScorer":
        """Wrap an in-memory sequence-classification model (used for held-out evaluation during training)."""
        scorer = cls.__new__(cls)
        scorer._setup(model, tokenizer, str(next(model.parameters()).device), batch_size)
        return scorer

    def _setup(self, model, tokenizer, device: str, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size {batch_size}: must be at least 1")
        self.model, self.tokenizer, self.device, self.batch_size = model, tokenizer, device, batch_size
        self.max_length = getattr(model.config, "max_position_embeddings", None)
        self.pad_token_id = tokenizer.pad_token_id

    @torch.no_grad()
    def score(self, prompts: list[list[dict]], responses: list[str]) -> list[float]:
        """One scalar reward per (prompt, response), in input order."""
        if len(prompts) != len(responses):
            raise ValueError(f"score: {len(prompts)} prompts but {len(responses)} responses")
        if self.model is None:
            raise RuntimeError("score: the scorer was closed")
        sequences = [self._truncate(encode(self.tokenizer, p, r)) for p, r in zip(prompts, responses)]
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        scores = [0.0] * len(sequences)
        was_training = self.model.training
        self.model.eval()
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            for i, value in zip(batch, self._score_batch([sequences[i] for i in batch])):
                scores[i] = value
        self.model.train(was_training)
        return scores

    def _truncate(self, ids: list[int]) -> list[int]:
        # Keep the end: the score is read at the response's last token.
        return ids[-self.max_length:] if self.max_length and len(ids) > self.max_length else ids

    def _score_batch(self, sequences: list[list[int]]) -> list[float]:
        longest = max(len(s) for s in sequences)
        input_ids = torch.full((len(sequences), longest), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(input_ids)
        for row, ids in enumerate(sequences):
            input_ids[row, :len(ids)] = torch.tensor(ids)
            mask[row, :len(ids)] = 1
        positions = torch.arange(longest).expand_as(input_ids)
        ends = torch.tensor([[len(s) - 1] for s in sequences])
        device = lambda t: t.to(self.device)  # noqa: E731
        scores = response_scores(self.model, device(input_ids), device(mask), device(positions), device(ends))
        return scores[:, 0].float().tolist()

    def close(self) -> None:
        """Free the model (the scorer cannot score afterwards)."""
        self.model = None
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()


def pairwise_accuracy(scorer: RewardScorer, records: list[Preference]) -> dict[str, float]:
    """Share of held-out preferences whose chosen outscores the rejected, overall and per level (ties count wrong)."""
    if not records:
        return {}
    chosen = scorer.score([r.prompt for r in records], [r.chosen for r in records])
    rejected = scorer.score([r.prompt for r in records], [r.rejected for r in records])
    by_level: dict[str, list[bool]] = defaultdict(list)
    for record, c, r in zip(records, chosen, rejected):
        by_level[record.level].append(c > r)
    metrics = {"heldout_accuracy": sum(map(sum, by_level.values())) / len(records), "heldout_pairs": len(records)}
    for level in LEVELS:
        if by_level[level]:
            metrics[f"heldout_accuracy/{level}"] = sum(by_level[level]) / len(by_level[level])
            metrics[f"heldout_pairs/{level}"] = len(by_level[level])
    return metrics
