"""Fixtures of the sampling tests: backends on the session's tiny model and a tiny reward model."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_reward_dir(tmp_path_factory, tiny_model_dir):
    """A reward model made and saved as `workbench reward train` does: the tiny base with a seeded random head."""
    from transformers import set_seed

    from reward.train import load_reward_base, save_reward_model

    set_seed(1)
    return save_reward_model(*load_reward_base(tiny_model_dir), tmp_path_factory.mktemp("tiny_reward"))


@pytest.fixture(scope="session")
def stopping_policy_dir(tmp_path_factory, tiny_model_dir):
    """The tiny model with its stop tokens' embeddings doubled: about half its 12-token samples end their turn.

    The random tiny model's samples almost never stop, and a sample cut off at max_new_tokens is never
    chosen, so selection needs a policy whose samples sometimes stop.
    """
    import torch
    from transformers import AutoModelForCausalLM

    from sampling.backends import stop_token_ids
    from workbench.modeling import save_model
    from workbench.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    with torch.no_grad():
        model.get_input_embeddings().weight[stop_token_ids(tokenizer)] *= 2.0  # tied: their logits double too
    return save_model(model, tokenizer, tmp_path_factory.mktemp("stopping_policy"))


@pytest.fixture(scope="session")
def stopping_backend(stopping_policy_dir):
    """The transformers backend on the stopping policy."""
    from sampling.backends import TransformersBackend

    with TransformersBackend(stopping_policy_dir, device="cpu", batch_size=4) as backend:
        yield backend


@pytest.fixture(scope="session")
def hf_backend(tiny_model_dir):
    """The transformers backend on the tiny model, shared by the session."""
    from sampling.backends import TransformersBackend

    with TransformersBackend(tiny_model_dir, device="cpu", batch_size=4) as backend:
        yield backend


@pytest.fixture(scope="session")
def vllm_backend(tiny_model_dir, vllm_engine):
    """The vLLM backend wrapping the session's one engine (closing it leaves the engine running)."""
    from sampling.backends import VLLMBackend

    with VLLMBackend(tiny_model_dir, llm=vllm_engine) as backend:
        yield backend
