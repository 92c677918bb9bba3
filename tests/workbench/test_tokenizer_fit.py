"""A model folder whose tokenizer does not fit the model is refused, naming the folder, before any weights load."""

from __future__ import annotations

import re

import pytest
from transformers import LlamaForCausalLM

from rounds.main import main
from workbench.modeling import llama_config, load_causal_lm, save_model


def save_with_vocab(tokenizer, path, vocab_size: int):
    """A tiny model with ``vocab_size`` embedding rows saved beside ``tokenizer``."""
    config = llama_config("tiny", tokenizer)
    config.vocab_size = vocab_size
    return save_model(LlamaForCausalLM(config), tokenizer, path)


def break_weights(path) -> None:
    """Garbage weights: loading them fails, so an error about the tokenizer proves they were never read."""
    (path / "model.safetensors").write_bytes(b"not safetensors")


def test_a_model_that_fits_its_tokenizer_loads(tmp_path, tiny_tokenizer):
    model, tokenizer = load_causal_lm(save_with_vocab(tiny_tokenizer, tmp_path / "m", len(tiny_tokenizer)))
    assert model.config.vocab_size == len(tokenizer)


def test_a_tokenizer_larger_than_the_model_is_refused_before_the_weights_load(tmp_path, tiny_tokenizer):
    small = len(tiny_tokenizer) - 40
    path = save_with_vocab(tiny_tokenizer, tmp_path / "m", small)
    break_weights(path)
    message = (f"{path}: the tokenizer has ids up to {len(tiny_tokenizer) - 1} but the model's vocabulary has "
               f"{small} entries")
    with pytest.raises(ValueError, match=re.escape(message)):
        load_causal_lm(path)


def test_a_tokenizer_without_chat_template_is_refused_before_the_weights_load(tmp_path, tiny_tokenizer):
    path = save_with_vocab(tiny_tokenizer, tmp_path / "m", len(tiny_tokenizer))
    (path / "chat_template.jinja").unlink()
    break_weights(path)
    with pytest.raises(ValueError, match=re.escape(f"{path}: tokenizer has no chat template")):
        load_causal_lm(path)


def test_eval_checks_the_tokenizer_before_loading_weights(tmp_path, tiny_tokenizer, capsys):
    path = save_with_vocab(tiny_tokenizer, tmp_path / "m", len(tiny_tokenizer) - 40)
    break_weights(path)
    assert main(["eval", "--model", str(path), "--run-dir", str(tmp_path / "run"), "--n", "1"]) == 2
    err = capsys.readouterr().err
    assert f"workbench eval: error: {path}: the tokenizer has ids up to" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "eval").exists()


def test_the_reward_scorer_checks_the_tokenizer_before_loading_weights(tmp_path, tiny_tokenizer):
    from reward.scoring import RewardScorer

    path = save_with_vocab(tiny_tokenizer, tmp_path / "m", len(tiny_tokenizer) - 40)
    break_weights(path)
    with pytest.raises(ValueError, match=re.escape(f"{path}: the tokenizer has ids up to")):
        RewardScorer(path)
