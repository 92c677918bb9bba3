"""Training end to end on the tiny model: the loss falls, the model reloads, the manifest has the metrics."""

import json

import pytest
import torch

from reward.cli import read_score_input
from reward.scoring import RewardScorer
from reward.trainer import bradley_terry_loss
from reward.train import load_reward_base, train_reward_model
from rounds.main import main
from workbench.preferences import Preference, write_jsonl


def easy_preferences(n, offset=0):
    """The chosen answers, the rejected refuses: learnable by a random tiny model in a few steps."""
    return [Preference(id=f"e{i}", prompt=[{"role": "user", "content": f"What is {i} + {i + 1}?"}],
                       chosen=f"{i} + {i + 1} = {2 * i + 1}\nAnswer: {2 * i + 1}", rejected="I do not know.",
                       edited=f"Answer: {2 * i + 1}" if i % 2 else None,
                       level="significantly_better" if i % 3 else "slightly_better")
            for i in range(offset, offset + n)]


def mean_loss(scorer, records):
    chosen = scorer.score([r.prompt for r in records], [r.chosen for r in records])
    rejected = scorer.score([r.prompt for r in records], [r.rejected for r in records])
    return bradley_terry_loss(torch.tensor(chosen), torch.tensor(rejected)).item()


@pytest.mark.slow
def test_cli_train_lowers_the_loss_saves_a_loadable_model_and_a_manifest(tiny_model_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification, set_seed

    train, held = easy_preferences(24), easy_preferences(8, offset=50)
    write_jsonl(train, tmp_path / "train.jsonl")
    write_jsonl(held, tmp_path / "held.jsonl")
    out = tmp_path / "rm"
    code = main(["reward", "train", "--config", "configs/smoke.yaml", "--set", "tracking.backend=none",
                 "--set", "device=cpu", "--set", "reward.num_train_epochs=3", "--set", "reward.batch_size=4",
                 "--base", str(tiny_model_dir), "--prefs", str(tmp_path / "train.jsonl"),
                 "--heldout", str(tmp_path / "held.jsonl"), "--out", str(out), "--seed", "0"])
    assert code == 0

    set_seed(0)  # the same head initialisation the training started from
    before = mean_loss(RewardScorer.from_model(*load_reward_base(tiny_model_dir)), train)
    after = mean_loss(RewardScorer(out), train)
    assert after < before

    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert type(model).__name__ == "LlamaForSequenceClassification" and model.config.num_labels == 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "done"
    assert manifest["metrics"]["train_pairs"] == 24 + 2 * 12  # 12 edits give 3 pairs each
    assert manifest["metrics"]["heldout_pairs"] == 8
    assert "heldout_accuracy/significantly_better" in manifest["metrics"]
    assert manifest["outputs"] == {"model": "."} and set(manifest["inputs"]) == {"base", "prefs_0", "heldout_0"}
    # the same command again: the done folder is kept as it is (--force trains again)
    assert main(["reward", "train", "--config", "configs/smoke.yaml", "--set", "tracking.backend=none",
                 "--base", str(tiny_model_dir), "--prefs", str(tmp_path / "train.jsonl"), "--out", str(out)]) == 0
    assert json.loads((out / "manifest.json").read_text()) == manifest

    (tmp_path / "in.jsonl").write_text(
        json.dumps({"prompt": "What is 1 + 2?", "response": "Answer: 3"}) + "\n"
        + json.dumps({"prompt": held[0].prompt, "response": held[0].rejected}) + "\n")
    assert main(["reward", "score", "--model", str(out), "--input", str(tmp_path / "in.jsonl"),
                 "--out", str(tmp_path / "scored.jsonl")]) == 0
    scored = [json.loads(line) for line in (tmp_path / "scored.jsonl").read_text().splitlines()]
    expected = RewardScorer(out).score([r["prompt"] for r in read_score_input(tmp_path / "in.jsonl")],
                                       [r["response"] for r in scored])
    assert [r["score"] for r in scored] == pytest.approx(expected, abs=1e-6)


@pytest.mark.slow
def test_pair_rows_with_margins_train(tiny_model_dir, tmp_path):
    from rounds.full_config import WorkbenchConfig
    from workbench.config import TrackingConfig

    cfg = WorkbenchConfig(tracking=TrackingConfig(backend="none"), device="cpu")
    cfg.reward.row_format, cfg.reward.margins, cfg.reward.num_train_epochs = "pair", {"significantly_better": 1.0}, 1.0
    metrics = train_reward_model(cfg, easy_preferences(12), tiny_model_dir, tmp_path / "rm", seed=1,
                                 heldout=easy_preferences(4, offset=50))
    assert metrics["train_rows"] == metrics["train_pairs"] == 12 + 2 * 6  # one pair a row: 12 pairs + 2 per edit
    assert (tmp_path / "rm" / "model.safetensors").exists()
