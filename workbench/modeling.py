"""Model factory, saving and loading: Llama decoders made here, any HF causal LM brought by a user.

The factory's models (pretraining, the recipe) are transformers' own ``LlamaForCausalLM`` (RMSNorm,
SwiGLU, RoPE with theta 500000, grouped-query attention), with ``head_dim`` 64 so that vLLM's
attention kernels accept them. Saving and loading are architecture-neutral (the Auto classes): a
saved model is a plain Hugging Face folder that transformers, TRL, PEFT and vLLM load, with a
generation config that stops at its chat template's end of turn.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

from workbench import chat


@dataclass(frozen=True)
class ModelSize:
    """The shape of one named size."""

    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    max_position_embeddings: int = 2048


HEAD_DIM = 64

# Named sizes. The first three train on the 2-core CPU; the rest are meant for GPUs
# (llama-1b has the shape of Llama 3.2 1B at the tokenizer's vocabulary size).
SIZES: dict[str, ModelSize] = {
    "tiny": ModelSize(128, 4, 2, 1, 384),  # ~1M parameters at a 2k vocabulary
    "small": ModelSize(256, 6, 4, 2, 768),  # ~5M
    "base": ModelSize(384, 8, 6, 2, 1024),  # ~14M
    "125m": ModelSize(768, 12, 12, 4, 2048, 4096),
    "1b": ModelSize(2048, 16, 32, 8, 8192, 8192),
    "8b": ModelSize(4096, 32, 64, 8, 14336, 8192),
}


def llama_config(size: str | ModelSize, tokenizer, *, rope_theta: float = 500000.0,
                 tie_word_embeddings: bool = True) -> LlamaConfig:
    """A LlamaConfig of a named size (or explicit shape) for ``tokenizer``'s vocabulary."""
    if isinstance(size, str):
        if size not in SIZES:
            raise ValueError(f"model size {size!r}: expected one of {sorted(SIZES)}")
        size = SIZES[size]
    if size.hidden_size != size.num_heads * HEAD_DIM:
        raise ValueError(f"hidden_size {size.hidden_size} must equal num_heads x {HEAD_DIM}")
    if size.num_heads % size.num_kv_heads:
        raise ValueError(f"num_heads {size.num_heads} must be a multiple of num_kv_heads {size.num_kv_heads}")
    generation = generation_config(tokenizer)
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=size.hidden_size,
        intermediate_size=size.intermediate_size,
        num_hidden_layers=size.num_layers,
        num_attention_heads=size.num_heads,
        num_key_value_heads=size.num_kv_heads,
        head_dim=HEAD_DIM,
        hidden_act="silu",
        max_position_embeddings=size.max_position_embeddings,
        rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": rope_theta},
        tie_word_embeddings=tie_word_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=generation.eos_token_id,
        pad_token_id=generation.pad_token_id,
        attention_bias=False,
        mlp_bias=False,
        initializer_range=0.02,
        dtype="float32",
    )


def create_model(size: str | ModelSize, tokenizer, seed: int = 0, **kwargs) -> LlamaForCausalLM:
    """A freshly initialised LlamaForCausalLM of ``size`` (float32), seeded."""
    config = llama_config(size, tokenizer, **kwargs)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = generation_config(tokenizer)
    return model


def generation_config(tokenizer) -> GenerationConfig:
    """Greedy; stop at the chat template's stop tokens (end of turn, EOS); pad with the (chosen) pad token."""
    fmt = chat.chat_format(tokenizer)
    return GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=list(fmt.stop_ids),
        pad_token_id=tokenizer.convert_tokens_to_ids(fmt.pad_token),
        do_sample=False,
    )


def stop_at_end_of_turn(generation: GenerationConfig, tokenizer) -> GenerationConfig:
    """A copy of ``generation`` that also stops at the template's stop tokens and pads where it had no pad token.

    A base model's own config often stops only at its end-of-text token; after SFT on the chat
    template the policy ends its turns with the template's end of turn, where generation must stop.
    """
    wanted = generation_config(tokenizer)
    eos = generation.eos_token_id
    eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
    updated = copy.deepcopy(generation)
    updated.eos_token_id = list(dict.fromkeys(eos + wanted.eos_token_id))
    if updated.pad_token_id is None:
        updated.pad_token_id = wanted.pad_token_id
    return updated


def resolve_device(device: str) -> str:
    """``auto`` picks cuda when available; anything else is returned as given."""
    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def count_parameters(model: torch.nn.Module) -> int:
    """Unique parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def save_model(model, tokenizer, path: str | Path) -> Path:
    """Save any HF model and its tokenizer (safetensors); a causal LM's generation config also stops at the end of turn."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    generation = getattr(model, "generation_config", None)  # None for sequence-classification models
    if generation is not None:
        model.generation_config = stop_at_end_of_turn(generation, tokenizer)
    try:
        model.save_pretrained(path, safe_serialization=True)
    finally:
        if generation is not None:
            model.generation_config = generation
    tokenizer.save_pretrained(path)
    return path


def check_causal_lm(path: str | Path, tokenizer_dir: str | Path | None = None) -> str:
    """The architecture of the HF causal LM in ``path``, refused (naming the folder) if it cannot serve the recipe.

    It must be a causal LM transformers knows, with a sequence-classification class for the reward
    model and a tokenizer (its own, or the one in ``tokenizer_dir``) that fits it; no weights are
    read, so this runs before any work starts.
    """
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                                                        MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES)

    from workbench.tokenizer import check_fits_model, load_tokenizer

    path = Path(path)
    if not (path / "config.json").is_file():
        raise ValueError(f"{path}: no config.json; model.path must be a Hugging Face model folder")
    try:
        config = AutoConfig.from_pretrained(str(path))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}/config.json: transformers cannot read it ({str(exc).splitlines()[0]})") from None
    problems = []
    if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        problems.append(f"model type {config.model_type!r} has no causal-LM class in transformers")
    if config.model_type not in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES:
        problems.append(f"model type {config.model_type!r} has no sequence-classification class for the reward model")
    if not list(path.glob("*.safetensors")) and not list(path.glob("*.bin")):
        problems.append("no weights (*.safetensors or *.bin)")
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    check_fits_model(load_tokenizer(tokenizer_dir or path), path)
    return MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[config.model_type]


def load_causal_lm(path: str | Path, device: str = "cpu"):
    """Load a causal LM in float32 on the CPU (bfloat16 on CUDA) with its tokenizer, checked first."""
    from transformers import AutoModelForCausalLM

    from workbench.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(path)  # a tokenizer that does not fit the model is refused before the weights load
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype).to(device)
    return model, tokenizer
