"""Averaging every architecture a user brings: mergekit's mean equals torch's, identity on itself, clear refusals."""

from __future__ import annotations

import json

import pytest
import torch
from model_families import FAMILIES, family_model_dir, family_tokenizer_for, save_family_model  # noqa: F401 (fixtures)
from safetensors.torch import load_file

from workbench.modeling import save_model
from workbench.posttrain.averaging import AveragingError, average_models

OTHERS = [f for f in FAMILIES if f != "llama"]  # Llama: tests/workbench/posttrain/test_averaging.py


def weights(path):
    return load_file(str(path / "model.safetensors"))


@pytest.mark.parametrize("family", OTHERS)
def test_the_average_of_two_is_the_mean_of_their_tensors(family, family_tokenizer_for, tmp_path):
    from transformers import AutoModelForCausalLM

    tokenizer = family_tokenizer_for(family)
    a, b = (save_family_model(family, tokenizer, tmp_path / f"m{seed}", seed=seed) for seed in (1, 2))
    out = average_models([a, b], tmp_path / "avg", weights=[3.0, 1.0])
    wa, wb, avg = weights(a), weights(b), weights(out)
    assert set(avg) == set(wa)  # nothing invented (no lm_head for tied embeddings), nothing lost
    for name, tensor in avg.items():
        assert torch.allclose(tensor, 0.75 * wa[name] + 0.25 * wb[name], atol=1e-6), name
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == json.loads((a / "config.json").read_text())["architectures"]
    model = AutoModelForCausalLM.from_pretrained(out)  # the average loads as the same architecture
    assert type(model).__name__ == config["architectures"][0]


@pytest.mark.parametrize("family", OTHERS)
def test_the_average_of_a_model_with_itself_is_the_model(family, family_model_dir, tmp_path):
    original = weights(family_model_dir(family))
    avg = weights(average_models([family_model_dir(family)] * 2, tmp_path / "same"))
    assert set(avg) == set(original) and all(torch.equal(original[k], avg[k]) for k in original)


@pytest.mark.parametrize("family", ["qwen2", "gemma", "phi3"])
def test_reward_models_of_other_architectures_average_with_their_score_head(family, family_model_dir,
                                                                            family_tokenizer_for, tmp_path):
    from transformers import AutoModelForSequenceClassification

    dirs = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        model = AutoModelForSequenceClassification.from_pretrained(family_model_dir(family), num_labels=1)
        dirs.append(save_model(model, family_tokenizer_for(family), tmp_path / f"rm{seed}"))
    a, b = weights(dirs[0]), weights(dirs[1])
    avg = weights(average_models(dirs, tmp_path / "rm"))
    assert set(avg) == set(a)
    for name in a:
        assert torch.allclose(avg[name], (a[name] + b[name]) / 2, atol=1e-6), name
    assert not torch.equal(a["score.weight"], b["score.weight"])  # the heads differ, so the mean is a real check


def test_a_tied_phi3_is_refused_naming_the_tensor_mergekit_requires(family_tokenizer_for, tmp_path):
    tokenizer = family_tokenizer_for("phi3")
    dirs = [save_family_model("phi3", tokenizer, tmp_path / f"tied{s}", seed=s, tie_word_embeddings=True) for s in (1, 2)]
    with pytest.raises(AveragingError, match=rf"{dirs[0]}: mergekit's definition of Phi3ForCausalLM requires the "
                                             r"tensor 'lm_head.weight'.*tie_word_embeddings is true"):
        average_models(dirs, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_checkpoints_of_different_architectures_are_refused(family_tokenizer_for, tmp_path):
    tokenizer = family_tokenizer_for("qwen3")
    qwen3 = save_family_model("qwen3", tokenizer, tmp_path / "qwen3")
    mistral = save_family_model("mistral", tokenizer, tmp_path / "mistral")
    with pytest.raises(AveragingError, match=r"is \['Qwen3ForCausalLM'\] but .* is \['MistralForCausalLM'\]"):
        average_models([qwen3, mistral], tmp_path / "bad")
