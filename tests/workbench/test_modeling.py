"""The model factory: shapes, parameter counts, and identical greedy decoding in transformers and vLLM."""

import pytest
import torch

from workbench.modeling import SIZES, count_parameters, create_model, llama_config


def test_tiny_size_is_about_one_million_parameters(tiny_tokenizer):
    model = create_model("tiny", tiny_tokenizer)
    assert 0.5e6 < count_parameters(model) < 1.5e6


def test_config_is_llama3_shaped(tiny_tokenizer):
    config = llama_config("small", tiny_tokenizer)
    assert config.head_dim == 64
    assert config.num_key_value_heads < config.num_attention_heads  # grouped-query attention
    assert config.rope_parameters["rope_theta"] == 500000.0
    assert config.hidden_act == "silu"  # SwiGLU


def test_every_named_size_is_consistent(tiny_tokenizer):
    for name in SIZES:
        config = llama_config(name, tiny_tokenizer)
        assert config.hidden_size == config.num_attention_heads * 64


def test_unknown_size_is_refused(tiny_tokenizer):
    with pytest.raises(ValueError, match="expected one of"):
        llama_config("huge", tiny_tokenizer)


def test_saved_model_reloads_identically(tiny_model_dir, tiny_tokenizer):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ids = torch.tensor([[1, 2, 3, 4]])
    again = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert torch.equal(model(ids).logits, again(ids).logits)
    assert model.config.rope_parameters["rope_theta"] == 500000.0


@pytest.mark.slow
def test_greedy_decoding_matches_between_transformers_and_vllm(tiny_model_dir, tiny_tokenizer, vllm_engine):
    from transformers import AutoModelForCausalLM
    from vllm import SamplingParams

    prompts = [
        [{"role": "user", "content": "What is 12 + 30?"}],
        [{"role": "user", "content": "Translate into French: cat"}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Write the word house in capital letters."}],
    ]
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    params = SamplingParams(temperature=0.0, max_tokens=24, ignore_eos=True)
    for messages in prompts:
        ids = tiny_tokenizer.apply_chat_template(messages, add_generation_prompt=True)["input_ids"]
        out = vllm_engine.generate([{"prompt_token_ids": ids}], params, use_tqdm=False)[0]
        vllm_tokens = list(out.outputs[0].token_ids)
        with torch.no_grad():
            hf = model.generate(torch.tensor([ids]), max_new_tokens=24, min_new_tokens=24, do_sample=False)
        hf_tokens = hf[0, len(ids):].tolist()
        assert len(set(hf_tokens)) > 1, "a degenerate model would make the comparison meaningless"
        assert vllm_tokens == hf_tokens
