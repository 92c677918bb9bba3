"""Tiny random causal LMs of the architectures users bring (Llama, Qwen2/3, Mistral, Gemma, Phi-3), built offline.

Each model is transformers' own ``*ForCausalLM`` from its own config class at about 0.35M parameters
(2 layers, hidden size 128, two heads of 64 so vLLM's CPU attention accepts them), sized to a given
tokenizer (vocabulary, bos/eos/pad ids) and saved in HF format with the tokenizer and a generation
config that stops at the template's end of turn. Weights are drawn wide (std 0.2) so greedy outputs
differ from prompt to prompt, and the end of turn is made likely enough that some of them stop. Each architecture comes with the chat family its models ship
(:data:`CHAT_FAMILY`, tokenizers from :mod:`chat_families`; Llama with the workbench's own). Phi-3
unties its embeddings as Phi-3-mini does. Tests import the builders and fixtures from here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

FAMILIES = ("llama", "qwen2", "qwen3", "mistral", "gemma", "gemma2", "phi3")
# The chat family (tests/chat_families.py) each architecture's models ship with; None: the workbench's Llama 3 format.
CHAT_FAMILY = {"llama": None, "qwen2": "qwen2", "qwen3": "chatml", "mistral": "mistral", "gemma": "gemma",
               "gemma2": "gemma", "phi3": "phi3"}
# The end of turn's output row is scaled up so that greedy replies to some prompts end within tens of tokens
# (not enough for Gemma 2, whose logits go through a soft cap at 30).
END_OF_TURN_SCALE = 2.0
HIDDEN, LAYERS, HEADS, KV_HEADS, HEAD_DIM, INTERMEDIATE, MAX_POSITIONS = 128, 2, 2, 1, 64, 256, 512


def _config_class(family: str):
    import transformers

    names = {"llama": "LlamaConfig", "qwen2": "Qwen2Config", "qwen3": "Qwen3Config", "mistral": "MistralConfig",
             "gemma": "GemmaConfig", "gemma2": "Gemma2Config", "phi3": "Phi3Config"}
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

    from workbench.chat import chat_format
    from workbench.modeling import generation_config

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(family_config(family, tokenizer, **overrides), dtype=torch.float32)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.2)
        model.get_output_embeddings().weight[chat_format(tokenizer).stop_ids[0]] *= END_OF_TURN_SCALE
    model.generation_config = generation_config(tokenizer)
    return model.eval()


def save_family_model(family: str, tokenizer, path: str | Path, seed: int = 0, **overrides) -> Path:
    """Build a ``family`` model for ``tokenizer`` and save it (weights, tokenizer, generation config) at ``path``."""
    from workbench.modeling import save_model

    return save_model(build_model(family, tokenizer, seed, **overrides), tokenizer, path)


def qwen2_pretokenized(tokenizer):
    """``tokenizer`` with Qwen2's own normalizer and pre-tokenizer.

    transformers 5 rebuilds the tokenizer of a folder whose model type is qwen2 as ``Qwen2Tokenizer``
    (from tokenizer.json's vocabulary and merges), which imposes these two; a tokenizer shipped with a
    Qwen2 model must already have them to tokenize the same after the reload.
    """
    from tokenizers import Regex, normalizers, pre_tokenizers
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    backend = tokenizer.backend_tokenizer
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    return tokenizer


@pytest.fixture(scope="session")
def family_tokenizer_for(tmp_path_factory, tiny_tokenizer_dir):
    """``family_tokenizer_for(family)``: the tokenizer an architecture's models ship with, loaded by the workbench."""
    from chat_families import build_tokenizer, save_tokenizer

    from workbench.tokenizer import load_tokenizer

    loaded: dict[str, object] = {}

    def get(family: str):
        if family not in loaded:
            if CHAT_FAMILY[family] is None:
                folder = tiny_tokenizer_dir
            else:
                tokenizer = build_tokenizer(CHAT_FAMILY[family])
                if family == "qwen2":
                    tokenizer = qwen2_pretokenized(tokenizer)
                folder = save_tokenizer(tokenizer, tmp_path_factory.mktemp(f"{family}_tokenizer"))
            loaded[family] = load_tokenizer(folder)
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
