"""Model averaging: weighted mean of tensors, identity on identical models, clear errors on mismatches."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from workbench.modeling import ModelSize, create_model, save_model
from workbench.posttrain.averaging import AveragingError, average_models


@pytest.fixture(scope="module")
def policies(tmp_path_factory, tiny_tokenizer):
    root = tmp_path_factory.mktemp("policies")
    return [save_model(create_model("tiny", tiny_tokenizer, seed=s), tiny_tokenizer, root / f"m{s}") for s in (1, 2, 3)]


def _weights(path):
    return load_file(str(path / "model.safetensors"))


def test_the_averaged_tensors_are_the_weighted_mean_and_the_tokenizer_comes_along(tmp_path, policies):
    from workbench.tokenizer import load_tokenizer

    out = average_models(policies, tmp_path / "avg", weights=[2.0, 1.0, 1.0])
    inputs, avg = [_weights(p) for p in policies], _weights(out)
    assert set(avg) == set(inputs[0])  # tied embeddings stay tied: no lm_head appears
    for name, tensor in avg.items():
        expected = 0.5 * inputs[0][name] + 0.25 * inputs[1][name] + 0.25 * inputs[2][name]
        assert torch.allclose(tensor, expected, atol=1e-6), name
    assert load_tokenizer(out).chat_template == load_tokenizer(policies[0]).chat_template
    assert json.loads((out / "generation_config.json").read_text()) == json.loads(
        (policies[0] / "generation_config.json").read_text())


def test_averaging_identical_models_is_the_identity(tmp_path, policies):
    import shutil

    copy = shutil.copytree(policies[0], tmp_path / "copy")
    original = _weights(policies[0])
    for i, dirs in enumerate([[policies[0], copy], [policies[0], policies[0]]]):
        avg = _weights(average_models(dirs, tmp_path / f"same{i}"))
        assert all(torch.equal(original[k], avg[k]) for k in original)


def test_reward_models_average_including_the_score_head(tmp_path, tiny_tokenizer):
    from transformers import LlamaForSequenceClassification

    config = create_model("tiny", tiny_tokenizer).config
    config.num_labels = 1
    dirs = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        dirs.append(save_model(LlamaForSequenceClassification(config), tiny_tokenizer, tmp_path / f"rm{seed}"))
    avg, a, b = _weights(average_models(dirs, tmp_path / "rm")), _weights(dirs[0]), _weights(dirs[1])
    assert torch.allclose(avg["score.weight"], (a["score.weight"] + b["score.weight"]) / 2, atol=1e-7)


def test_mismatched_shapes_name_both_checkpoints_and_write_nothing(tmp_path, policies, tiny_tokenizer):
    other = save_model(create_model(ModelSize(128, 2, 2, 1, 256), tiny_tokenizer), tiny_tokenizer, tmp_path / "two")
    with pytest.raises(AveragingError, match=f"{policies[0]} and {other}"):
        average_models([policies[0], other], tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_different_tokenizers_are_refused(tmp_path, policies, tiny_tokenizer):
    from workbench.tokenizer import save_tokenizer

    other = tmp_path / "retok"
    save_model(create_model("tiny", tiny_tokenizer, seed=1), tiny_tokenizer, other)
    tok = tiny_tokenizer.__class__.from_pretrained(str(other))
    tok.chat_template = tok.chat_template.replace("'assistant'", "'model'")  # another template, still valid
    save_tokenizer(tok, other)
    with pytest.raises(AveragingError, match="different tokenizers"):
        average_models([policies[0], other], tmp_path / "bad")


def test_weights_must_match_the_models(tmp_path, policies):
    with pytest.raises(AveragingError, match="expected 3 non-negative"):
        average_models(policies, tmp_path / "bad", weights=[1.0, 1.0])


def test_the_average_command_writes_a_done_manifest(tmp_path, policies):
    from rounds.main import main
    from workbench.rundir import read_manifest

    out = tmp_path / "cli"
    assert main(["average", "--out", str(out), str(policies[0]), str(policies[1]),
                 "--set", "tracking.backend=none", "--run-dir", str(tmp_path / "run")]) == 0
    manifest = read_manifest(out)
    assert manifest["status"] == "done" and manifest["weights"] == [1.0, 1.0]
    assert (out / "model.safetensors").is_file()
