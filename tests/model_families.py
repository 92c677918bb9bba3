"""Tiny random causal LMs of the architectures users bring (Llama, Qwen2/3, Mistral, Gemma, Phi-3), built offline.

Each model is transformers' own ``*ForCausalLM`` from its own config class at about 0.35M parameters
(2 layers, hidden size 128, two heads of 64 so vLLM's CPU attention accepts them), sized to a given
tokenizer (vocabulary, bos/eos/pad ids) and saved in HF format with the tokenizer and a generation
config that stops at the template's end of turn. Weights are drawn wide (std 0.2) so greedy outputs
differ from prompt to prompt. Each architecture comes with the chat family its models ship
(:data:`CHAT_FAMILY`, tokenizers from :mod:`chat_families`; Llama with the workbench's own). Phi-3
unties its embeddings as Phi-3-mini does. Tests import the builders and fixtures from here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

FAMILIES = ("llama", "qwen2", "qwen3", "mistral", "gemma", "phi3")
# The chat family (tests/chat_families.py) each architecture's models ship with; None: the workbench's Llama 3 format.
CHAT_FAMILY = {"llama": None, "qwen2": "qwen2", "qwen3": "chatml", "mistral": "mistral", "gemma": "gemma",
               "phi3": "phi3"}
HIDDEN, LAYERS, HEADS, KV_HEADS, HEAD_DIM, INTERMEDIATE, MAX_POSITIONS = 128, 2, 2, 1, 64, 256, 512


def _config_class(family: str):
    import transformers

    names = {"llama": "LlamaConfig", "qwen2": "Qwen2Config", "qwen3": "Qwen3Config", "mistral": "MistralConfig",
             "gemma": "GemmaConfig", "phi3": "Phi3Config"}
    if family not in names:
        raise ValueError(f"model family {family!r}: expected one of {list(FAMILIES)}")
    return getattr(transformers, names[family])


def family_config(family: str, tokenizer, **overrides):
    """The ``family``'s own transformers config at the tiny size, for ``tokenizer``'s vocabulary and special ids."""
    from workbench.modeling import generation_config

    shape = dict(vocab_size=len(tokenizer), hidden_size=HIDDEN, intermediate_size=INTERMEDIATE,
                 num_hidden_layers=LAYERS, num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
                 max_position_embeddings=MAX_POSITIONS, tie_word_embeddings=True, initializer_range=0.2)
    if family != "phi3":  # Phi-3 derives head_dim from hidden_size / num_attention_heads (= 64 here)
        shape["head_dim"] = HEAD_DIM
    if family == "mistral":
        shape["sliding_window"] = None
    if family == "phi3":
        shape.update(original_max_position_embeddings=MAX_POSITIONS, tie_word_embeddings=False)
    generation = generation_config(tokenizer)
    # Every id comes from the tokenizer: Phi3Config's defaults name Phi-3's own vocabulary (pad 32000).
    return _config_class(family)(**{**shape, **overrides}, bos_token_id=tokenizer.bos_token_id,
                                 eos_token_id=generation.eos_token_id, pad_token_id=generation.pad_token_id,
                                 dtype="float32")


def build_model(family: str, tokenizer, seed: int = 0, **overrides):
    """A seeded random ``*ForCausalLM`` of ``family`` for ``tokenizer``, with the workbench's generation config."""
    from transformers import AutoModelForCausalLM

    from workbench.modeling import generation_config

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(family_config(family, tokenizer, **overrides), dtype=torch.float32)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.2)
    model.generation_config = generation_config(tokenizer)
    return model.eval()


def save_family_model(family: str, tokenizer, path: str | Path, seed: int = 0, **overrides) -> Path:
    """Build a ``family`` model for ``tokenizer`` and save it (weights, tokenizer, generation config) at ``path``."""
    from workbench.modeling import save_model

    return save_model(build_model(family, tokenizer, seed, **overrides), tokenizer, path)


@pytest.fixture(scope="session")
def family_tokenizer_for(family_tokenizer_dir, tiny_tokenizer_dir):
    """``family_tokenizer_for(family)``: the tokenizer an architecture's models ship with, loaded by the workbench."""
    from workbench.tokenizer import load_tokenizer

    loaded: dict[str, object] = {}

    def get(family: str):
        if family not in loaded:
            chat_family = CHAT_FAMILY[family]
            loaded[family] = load_tokenizer(tiny_tokenizer_dir if chat_family is None else family_tokenizer_dir(chat_family))
        return loaded[family]

    return get


@pytest.fixture(scope="session")
def family_model_dir(tmp_path_factory, family_tokenizer_for):
    """``family_model_dir(family)``: the folder of that architecture's tiny model with its tokenizer (built once)."""
    built: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in built:
            built[family] = save_family_model(family, family_tokenizer_for(family),
                                              tmp_path_factory.mktemp(f"{family}_model"))
        return built[family]

    return get
