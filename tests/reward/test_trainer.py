"""Packed multi-response rows: the loss, the pairs of a row, and scores equal to scoring alone."""

import math

import pytest
import torch

from reward.data import packed_rows
from reward.scoring import RewardScorer
from reward.trainer import RankedRowsCollator, block_mask, bradley_terry_loss, response_scores
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


def test_block_mask_isolates_responses():
    segments = torch.tensor([[0, 0, 1, 1, 2, 2, -1]])
    allowed = block_mask(segments)[0, 0] == 0
    assert allowed[3].tolist() == [True, True, True, True, False, False, False]  # prompt + itself
    assert allowed[5].tolist() == [True, True, False, False, True, True, False]  # not response 1
    assert allowed[6].tolist() == [False] * 6 + [True]  # padding sees itself only


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_scores_equal_scores_alone(tiny_model_dir, tiny_tokenizer, attn):
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=1, attn_implementation=attn)
    model.config.pad_token_id = tiny_tokenizer.pad_token_id
    model.eval()
    records = [three_response_preference(i) for i in (1, 22)]
    rows = packed_rows(records, tiny_tokenizer, 512, {}, seed=0)
    batch = RankedRowsCollator(tiny_tokenizer.pad_token_id)([rows.dataset[0], rows.dataset[1]])
    with torch.no_grad():
        packed = response_scores(model, batch["input_ids"], block_mask(batch["segment_ids"]),
                                 batch["position_ids"], batch["ends"])
    scorer = RewardScorer.from_model(model, tiny_tokenizer, batch_size=1)
    for b, record in enumerate(records):
        for k, rank in enumerate(rows.dataset[b]["ranks"]):
            alone = scorer.score([record.prompt], [record.ranked()[rank]])[0]
            assert packed[b, k].item() == pytest.approx(alone, abs=1e-5)
