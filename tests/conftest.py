"""Session fixtures shared by the suite: a tiny tokenizer and model built here, one vLLM engine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRACKIO_SHOW", "0")

TINY_TEXTS = [
    "What is 12 + 30?\nAnswer: 42",
    "What is 97 - 45?\n97 - 45 = 52\nAnswer: 52",
    "Ana has 3 apples and buys 4 more. How many apples does Ana have now?\n3 + 4 = 7\nAnswer: 7",
    "Translate into French: cat\nAnswer: chat",
    "How do you write 21 in Spanish?\nAnswer: veintiuno",
    "Translate into German: white\nAnswer: weiß",
    "Write a Python function total(xs) that returns the sum of the numbers in xs.\n"
    "```python\ndef total(xs):\n    return sum(xs)\n```",
    "Reverse the order of these words: red green blue\nAnswer: blue green red",
    "Write the word house in capital letters.\nAnswer: HOUSE",
]


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory) -> Path:
    """A byte-level BPE tokenizer with the Llama 3 chat format, trained here in a second."""
    from workbench.tokenizer import save_tokenizer, train_tokenizer

    tokenizer = train_tokenizer(TINY_TEXTS * 20, vocab_size=400)
    return save_tokenizer(tokenizer, tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_tokenizer_dir):
    """The tiny tokenizer, loaded."""
    from workbench.tokenizer import load_tokenizer

    return load_tokenizer(tiny_tokenizer_dir)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    """A ~1M-parameter workbench model (random weights, wide init so greedy outputs vary), HF format."""
    import torch

    from workbench.modeling import create_model, save_model

    model = create_model("tiny", tiny_tokenizer, seed=0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.2)
    return save_model(model, tiny_tokenizer, tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def vllm_engine(tiny_model_dir):
    """One vLLM engine on the tiny model for the whole session (start-up costs ~30 s on the CPU)."""
    vllm = pytest.importorskip("vllm")
    engine = vllm.LLM(model=str(tiny_model_dir), dtype="float32", max_model_len=512, seed=0,
                      enforce_eager=True, disable_log_stats=True)
    yield engine
    del engine
