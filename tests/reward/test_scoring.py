"""The scoring contract: batched scores equal one-by-one scores, in input order."""

import pytest

from reward.scoring import RewardScorer, pairwise_accuracy
from workbench.preferences import Preference


@pytest.fixture(scope="module")
def reward_model_dir(tiny_model_dir, tmp_path_factory):
    """An untrained reward model (the tiny base with a seeded random head), saved."""
    from transformers import set_seed

    from reward.train import load_reward_base, save_reward_model

    set_seed(0)
    return save_reward_model(*load_reward_base(tiny_model_dir), tmp_path_factory.mktemp("rm"))


@pytest.fixture(scope="module")
def scorer(reward_model_dir):
    scorer = RewardScorer(reward_model_dir, batch_size=3)
    yield scorer
    scorer.close()


PROMPTS = [[{"role": "user", "content": f"What is {a} + {a}?"}] for a in (1, 23, 456, 7, 89)]
RESPONSES = ["Answer: 2", "23 + 23 = 46\nAnswer: 46", "Answer: 912", "I am not sure.\nAnswer: 15", "Answer: 178"]


def test_batched_scores_equal_one_by_one(scorer):
    batched = scorer.score(PROMPTS, RESPONSES)
    alone = [scorer.score([p], [r])[0] for p, r in zip(PROMPTS, RESPONSES)]
    assert batched == pytest.approx(alone, abs=1e-5)
    assert len(set(round(s, 4) for s in batched)) > 1  # the scores do depend on the text


def test_a_causal_lm_is_refused(tiny_model_dir):
    with pytest.raises(ValueError, match="not a reward model"):
        RewardScorer(tiny_model_dir)


def test_score_rejects_mismatched_lengths(scorer):
    with pytest.raises(ValueError, match="2 prompts but 1 responses"):
        scorer.score(PROMPTS[:2], RESPONSES[:1])


def test_pairwise_accuracy_per_level(scorer):
    a, b = RESPONSES[0], RESPONSES[3]
    s_a, s_b = scorer.score([PROMPTS[0]] * 2, [a, b])
    better, worse = (a, b) if s_a > s_b else (b, a)
    records = [Preference(id="x", prompt=PROMPTS[0], chosen=better, rejected=worse, level="better"),
               Preference(id="y", prompt=PROMPTS[0], chosen=worse, rejected=better, level="slightly_better")]
    metrics = pairwise_accuracy(scorer, records)
    assert metrics["heldout_accuracy"] == 0.5
    assert metrics["heldout_accuracy/better"] == 1.0 and metrics["heldout_accuracy/slightly_better"] == 0.0
