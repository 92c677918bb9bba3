"""Session fixtures shared by the suite: a tiny tokenizer and model built here, one vLLM engine."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRACKIO_SHOW", "0")

# The chat families' tiny tokenizers (ChatML, Mistral, Gemma, Phi-3): ``family_tokenizer(family)`` and
# ``family_tokenizer_dir(family)`` for every test.
from chat_families import family_tokenizer, family_tokenizer_dir  # noqa: E402,F401


def _process_state() -> dict:
    """The process-wide state a test can change behind the next one's back."""
    state = {"recursion limit": sys.getrecursionlimit(), "working directory": os.getcwd(),
             "environment": {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}}
    torch = sys.modules.get("torch")  # never imported just for this
    if torch is not None:
        state["torch threads"] = torch.get_num_threads()
        state["torch default dtype"] = torch.get_default_dtype()
    return state


def _restore(state: dict) -> None:
    sys.setrecursionlimit(state["recursion limit"])
    os.chdir(state["working directory"])
    for key in [k for k in os.environ if not k.startswith("PYTEST_") and k not in state["environment"]]:
        del os.environ[key]
    os.environ.update(state["environment"])
    torch = sys.modules.get("torch")
    if torch is not None and "torch threads" in state:
        torch.set_num_threads(state["torch threads"])
        torch.set_default_dtype(state["torch default dtype"])


LEAKS: list[str] = []


@pytest.fixture(autouse=True)
def isolate_process_state(request):
    """Give every test the process state it started with: what one test changes, the next never sees.

    Changes are undone and listed at the end of the run (libraries change some on purpose:
    torch.compile raises the recursion limit, vLLM sets its environment variables).
    """
    before = _process_state()
    yield
    after = _process_state()
    changed = sorted(key for key in before if before[key] != after.get(key, before[key]))
    if changed:
        env_keys = sorted(k for k in before["environment"].keys() | after["environment"].keys()
                          if before["environment"].get(k) != after["environment"].get(k))
        detail = ", ".join(f"environment ({', '.join(env_keys)})" if key == "environment" else key for key in changed)
        LEAKS.append(f"{request.node.nodeid}: {detail}")
        _restore(before)


def pytest_terminal_summary(terminalreporter):
    """List the tests that changed process state (and had it undone)."""
    if LEAKS:
        terminalreporter.section("process state changed by tests (undone after each)")
        for line in LEAKS:
            terminalreporter.write_line(line)


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
    # without chunked prefill the CPU engine honours per-request seeds (sampling.backends.start_engine does the same)
    engine = vllm.LLM(model=str(tiny_model_dir), dtype="float32", max_model_len=512, seed=0,
                      enable_chunked_prefill=False, enforce_eager=True, disable_log_stats=True)
    yield engine
    del engine
