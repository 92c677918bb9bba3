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
