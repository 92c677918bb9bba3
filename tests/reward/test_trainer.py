"""Packed multi-response rows: the loss, the pairs of a row, and scores equal to scoring alone."""

import math

import pytest
import torch

from model_families import CHAT_FAMILY, FAMILIES, family_model_dir, family_tokenizer_for  # noqa: F401 (fixtures)
from reward.data import packed_rows
from reward.trainer import RankedRowsCollator, bradley_terry_loss, response_scores
from workbench.masking import attention_inputs
from workbench.preferences import Preference


def test_bradley_terry_loss_matches_hand_computation():
    better, worse = torch.tensor([2.0, 0.5]), torch.tensor([1.0, 1.5])
    hand = (math.log(1 + math.exp(-1.0)) + math.log(1 + math.exp(1.0))) / 2
    assert bradley_terry_loss(better, worse).item() == pytest.approx(hand, abs=1e-6)


def test_margin_is_subtracted_from_the_score_difference():
    better, worse, margin = torch.tensor([2.0]), torch.tensor([1.0]), torch.tensor([3.0])
    hand = math.log(1 + math.exp(-(2.0 - 1.0 - 3.0)))
    assert bradley_terry_loss(better, worse, margin).item() == pytest.approx(hand, abs=1e-6)
    assert bradley_terry_loss(better, worse, margin) > bradley_terry_loss(better, worse)


def three_response_preference(i=0):
    return Preference(id=f"p{i}", prompt=[{"role": "user", "content": f"What is {i} + 3?"}],
                      chosen=f"Answer: {i + 3}", rejected="Answer: 1", edited=f"{i} + 3 = {i + 3}\nAnswer: {i + 3}",
                      level="significantly_better")


def test_a_three_response_row_gives_its_three_ranked_pairs(tiny_tokenizer):
    rows = packed_rows([three_response_preference()], tiny_tokenizer, 512, {"significantly_better": 2.0}, seed=3)
    batch = RankedRowsCollator(tiny_tokenizer.pad_token_id)([rows.dataset[0]])
    ranks = rows.dataset[0]["ranks"]
    pairs = {(ranks[i], ranks[j]) for i, j in batch["pairs"].tolist()}
    assert pairs == {(0, 1), (0, 2), (1, 2)}
    assert batch["margin"].tolist() == [2.0, 2.0, 2.0]


# What each chat family's template renders after an assistant's content, read off the template texts by hand.
END_OF_TURN = {None: "<|eot_id|>", "qwen2": "<|im_end|>\n", "chatml": "<|im_end|>\n", "mistral": "</s> ",
               "gemma": "<end_of_turn>\n", "phi3": "<|end|>\n<|endoftext|>"}


def alone_ids(tokenizer, prompt: list[dict], response: str, end_of_turn: str = END_OF_TURN[None]) -> list[int]:
    """One (prompt, response) tokenized straight from the tokenizer: its chat template, then the response's turn."""
    head = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True)["input_ids"]
    return list(head) + tokenizer(response + end_of_turn, add_special_tokens=False)["input_ids"]


def plain_logit(model, ids: list[int]) -> float:
    """The sequence-classification model's own score of one unpadded sequence: its logit at the last token.

    Without a pad id the model reads the last position; with one it would skip a final token equal
    to the pad token (Phi-3 pads with the EOS its template ends a conversation with).
    """
    pad, model.config.pad_token_id = model.config.pad_token_id, None
    try:
        with torch.no_grad():
            return model(input_ids=torch.tensor([ids])).logits[0, 0].item()
    finally:
        model.config.pad_token_id = pad


def reward_model(model_dir, tokenizer, attn: str = "sdpa"):
    """A tiny base with a seeded random one-label head, in eval mode."""
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1, attn_implementation=attn)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model.eval()


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_scores_equal_scores_alone(family_model_dir, family_tokenizer_for, family, attn):
    tokenizer = family_tokenizer_for(family)
    model = reward_model(family_model_dir(family), tokenizer, attn)
    records = [three_response_preference(i) for i in (1, 22)]
    rows = packed_rows(records, tokenizer, 512, {}, seed=0)
    batch = RankedRowsCollator(tokenizer.pad_token_id)([rows.dataset[0], rows.dataset[1]])
    with torch.no_grad():
        mask = attention_inputs(model, batch["segment_ids"], shared_segment=0)["attention_mask"]
        packed = response_scores(model, batch["input_ids"], mask, batch["position_ids"], batch["ends"])
    alone_scores = set()
    for b, record in enumerate(records):
        row = rows.dataset[b]
        for k, rank in enumerate(row["ranks"]):
            ids = alone_ids(tokenizer, record.prompt, record.ranked()[rank], END_OF_TURN[CHAT_FAMILY[family]])
            segment = [t for t, s in zip(row["input_ids"], row["segment_ids"]) if s in (0, k + 1)]
            assert segment == ids  # the row holds exactly the tokens the response has alone
            alone = plain_logit(model, ids)
            assert packed[b, k].item() == pytest.approx(alone, abs=1e-5)
            alone_scores.add(round(alone, 4))
    assert len(alone_scores) == 6  # every response scores differently, so a swapped read would show


@pytest.mark.parametrize("margins", [{}, {"significantly_better": 0.7, "better": 0.3}])
def test_trainer_loss_is_the_bradley_terry_loss_of_the_plain_models_scores(tiny_model_dir, tiny_tokenizer, tmp_path,
                                                                           margins):
    from reward.train import build_trainer
    from rounds.full_config import WorkbenchConfig
    from workbench.config import TrackingConfig

    cfg = WorkbenchConfig(tracking=TrackingConfig(backend="none"), device="cpu")
    cfg.reward.margins, cfg.reward.center_rewards_coefficient = margins, 0.05
    records = [three_response_preference(1),
               Preference(id="two", prompt=[{"role": "user", "content": "Say hi."}], chosen="hi", rejected="Answer: 9",
                          level="better")]
    model = reward_model(tiny_model_dir, tiny_tokenizer)
    trainer, counts = build_trainer(cfg, model, tiny_tokenizer, records, tmp_path, seed=0)
    assert counts["train_pairs"] == 3 + 1
    batch = trainer.data_collator([trainer.train_dataset[0], trainer.train_dataset[1]])
    with torch.no_grad():
        loss = trainer.compute_loss(model, batch).item()

    terms, scores = [], []
    for record in records:
        ranked = [plain_logit(model, alone_ids(tiny_tokenizer, record.prompt, r)) for r in record.ranked()]
        scores += ranked
        margin = margins.get(record.level, 0.0)
        terms += [-math.log(1 / (1 + math.exp(-(ranked[i] - ranked[j] - margin))))
                  for i in range(len(ranked)) for j in range(i + 1, len(ranked))]
    expected = sum(terms) / len(terms) + 0.05 * sum(s * s for s in scores) / len(scores)
    assert loss == pytest.approx(expected, abs=1e-5)
