"""Any chat template: formatting tokens, end of turn, stops, pad, SFT spans, DPO masking, reward rows, generation.

Every expectation below is written out by hand from the family's template text (tests/chat_families.py),
not computed by the code under test.
"""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F

from chat_families import FAMILIES, build_tokenizer, conversation, save_tokenizer
from workbench import chat
from workbench.chat import ChatFormat

# The special tokens each template renders around the contents, plus the tokenizer's BOS/EOS and stops.
FORMATTING = {
    "chatml": {"<|im_start|>", "<|im_end|>"},
    "qwen2": {"<|im_start|>", "<|im_end|>"},
    "mistral": {"<s>", "</s>", "[INST]", "[/INST]"},
    "gemma": {"<bos>", "<start_of_turn>", "<end_of_turn>", "<eos>"},
    "phi3": {"<s>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>", "<|endoftext|>"},
}
# What each template renders after the last assistant message's content.
END_OF_TURN = {"chatml": "<|im_end|>\n", "qwen2": "<|im_end|>\n", "mistral": "</s> ", "gemma": "<end_of_turn>\n",
               "phi3": "<|end|>\n<|endoftext|>"}
# ... and after an assistant message another message follows (Phi-3 adds EOS only at the very end).
END_OF_MIDDLE_TURN = {**END_OF_TURN, "phi3": "<|end|>\n"}
STOPS = {"chatml": ["<|im_end|>"], "qwen2": ["<|im_end|>"], "mistral": ["</s>"], "gemma": ["<end_of_turn>", "<eos>"],
         "phi3": ["<|end|>", "<|endoftext|>"]}
SPANS = {"chatml": "rendered prefixes", "qwen2": "rendered prefixes", "mistral": "rendered prefixes",
         "gemma": "rendered prefixes", "phi3": "TRL training template"}


def tokens(tokenizer, ids) -> list[str]:
    return tokenizer.convert_ids_to_tokens(list(ids))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_formatting_tokens_end_of_turn_and_stops_come_from_the_template(family, family_tokenizer):
    tokenizer = family_tokenizer(family)
    fmt = ChatFormat.from_tokenizer(tokenizer)
    assert set(fmt.formatting_tokens) == FORMATTING[family]
    assert set(tokens(tokenizer, fmt.formatting_ids)) == FORMATTING[family]
    assert fmt.end_of_turn == END_OF_TURN[family]
    assert list(fmt.stop_tokens) == STOPS[family]
    assert fmt.formatting_source == "template"


def test_llama3_gives_exactly_its_five(tiny_tokenizer, tiny_model_dir):
    from workbench.tokenizer import load_tokenizer

    five = {"<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"}
    for tokenizer in (tiny_tokenizer, load_tokenizer(tiny_model_dir)):
        fmt = ChatFormat.from_tokenizer(tokenizer)
        assert set(fmt.formatting_tokens) == five
        assert (fmt.end_of_turn, list(fmt.stop_tokens)) == ("<|eot_id|>", ["<|eot_id|>", "<|end_of_text|>"])
        assert fmt.assistant_masking[0] == "generation markers"


def test_role_names_in_ordinary_tokens_are_not_formatting_tokens(family_tokenizer):
    tokenizer = family_tokenizer("chatml")
    user_ids = set(tokenizer("user\nassistant\nsystem", add_special_tokens=False)["input_ids"])
    assert not user_ids & set(ChatFormat.from_tokenizer(tokenizer).formatting_ids)


def test_override_replaces_the_derived_tokens_and_unknown_ones_are_all_named(family_tokenizer):
    tokenizer = family_tokenizer("chatml")
    fmt = ChatFormat.from_tokenizer(tokenizer, override=["<|im_end|>"])
    assert (fmt.formatting_tokens, fmt.formatting_source) == (("<|im_end|>",), "config")
    with pytest.raises(ValueError, match=r"dpo.formatting_tokens: \['<\|eot_id\|>', '\[INST\]'\] are not tokens"):
        ChatFormat.from_tokenizer(tokenizer, override=["<|im_end|>", "<|eot_id|>", "[INST]"])


def test_dpo_config_takes_a_formatting_token_list(tmp_path):
    from workbench.config_base import ConfigError
    from workbench.posttrain.config import DPOConfig

    assert DPOConfig(formatting_tokens=["<|im_end|>"]).formatting_tokens == ["<|im_end|>"]
    with pytest.raises(ConfigError, match="formatting_tokens: expected null or a list of token strings"):
        DPOConfig(formatting_tokens=["<|im_end|>", ""]).validate()


# -- loading: pad choice and refusals ----------------------------------------------------------------

@pytest.mark.parametrize("family, pad, how", [
    ("chatml", "<|im_end|>", "no pad token: pads with the eos token '<|im_end|>'"),
    ("mistral", "</s>", "no pad token: pads with the eos token '</s>'"),
    ("qwen2", "<|endoftext|>", "the tokenizer's pad token"),
])
def test_a_missing_pad_token_is_chosen_and_said(family, pad, how, family_tokenizer_dir, caplog):
    from workbench.tokenizer import load_tokenizer

    with caplog.at_level(logging.INFO, logger="workbench.tokenizer"):
        tokenizer = load_tokenizer(family_tokenizer_dir(family))
    assert tokenizer.pad_token == pad
    assert chat.chat_format(tokenizer).record()["pad_choice"] == how
    assert (how in caplog.text) == how.startswith("no pad token")


def test_a_dedicated_pad_token_is_preferred_to_eos(tmp_path):
    from workbench.tokenizer import load_tokenizer

    tokenizer = build_tokenizer("gemma")
    tokenizer.pad_token = None  # <pad> stays in the vocabulary as an added special token
    loaded = load_tokenizer(save_tokenizer(tokenizer, tmp_path / "gemma"))
    assert loaded.pad_token == "<pad>"
    assert chat.chat_format(loaded).pad_choice == "no pad token: pads with the dedicated pad token '<pad>'"


def test_a_tokenizer_without_chat_template_is_refused_naming_the_folder(tmp_path):
    from workbench.tokenizer import load_tokenizer

    tokenizer = build_tokenizer("chatml")
    tokenizer.chat_template = None
    path = save_tokenizer(tokenizer, tmp_path / "plain")
    with pytest.raises(ValueError, match=f"^{path}: tokenizer has no chat template"):
        load_tokenizer(path)


def test_a_model_with_a_smaller_vocabulary_is_refused_naming_the_folder(tmp_path):
    from transformers import Qwen2Config

    from workbench.tokenizer import load_tokenizer

    tokenizer = build_tokenizer("qwen2")
    path = save_tokenizer(tokenizer, tmp_path / "model")
    Qwen2Config(vocab_size=len(tokenizer) - 5).save_pretrained(path)
    with pytest.raises(ValueError, match=f"^{path}: the tokenizer has ids up to {len(tokenizer) - 1} but the "
                                         f"model's vocabulary has {len(tokenizer) - 5} entries"):
        load_tokenizer(path)


def test_a_template_that_cannot_render_a_conversation_is_refused(tmp_path):
    tokenizer = build_tokenizer("chatml")
    tokenizer.chat_template = "{{ raise_exception('no chats here') }}"
    with pytest.raises(ValueError, match="the chat template cannot render a user/assistant conversation .*no chats"):
        ChatFormat.from_tokenizer(tokenizer)


# -- SFT spans ---------------------------------------------------------------------------------------

def expected_assistant_ids(family: str, tokenizer, messages: list[dict]) -> list[int]:
    """The assistant's content and end of turn of every assistant message, tokenized alone (by hand)."""
    replies = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    ids = []
    for i in replies:
        end = END_OF_TURN[family] if i == len(messages) - 1 else END_OF_MIDDLE_TURN[family]
        ids += tokenizer(messages[i]["content"] + end, add_special_tokens=False)["input_ids"]
    return ids


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_assistant_mask_covers_exactly_the_replies_and_their_end_of_turn(family, family_tokenizer):
    tokenizer = family_tokenizer(family)
    fmt = ChatFormat.from_tokenizer(tokenizer)
    assert fmt.assistant_masking[0] == SPANS[family]
    ids, mask = fmt.assistant_mask(conversation(family))
    assert ids == tokenizer.apply_chat_template(conversation(family), return_dict=True)["input_ids"]
    assert [t for t, m in zip(ids, mask) if m] == expected_assistant_ids(family, tokenizer, conversation(family))


def test_a_template_with_no_way_to_find_the_replies_says_what_to_add():
    from chat_families import PHI3_TEMPLATE

    tokenizer = build_tokenizer("phi3")
    # Phi-3's template (EOS after a conversation ending with a reply: no prefix of a longer one) in a copy TRL
    # does not recognise, so it has no training version
    tokenizer.chat_template = PHI3_TEMPLATE + "{# a local copy #}"
    fmt = ChatFormat.from_tokenizer(tokenizer)
    assert fmt.end_of_turn == "<|end|>\n<|endoftext|>"
    with pytest.raises(ValueError, match=r"messages\[:3\] does not tokenize as a prefix .* add \{% generation %\}"
                                         r"...\{% endgeneration %\} around each assistant message's content"):
        fmt.assistant_masking


def test_a_template_whose_prompt_is_no_prefix_of_the_conversation_is_refused():
    tokenizer = build_tokenizer("chatml")
    # each rendering numbers the turns it holds, so the prompt is never the beginning of the answered conversation
    tokenizer.chat_template = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + (messages|length|string) "
                               "+ '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
                               "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
    with pytest.raises(ValueError, match="the reply cannot be told apart from the prompt; the template must render"):
        ChatFormat.from_tokenizer(tokenizer)


def tiny_model_dir(family: str, tokenizer, path):
    """A tiny random Llama-architecture model for ``tokenizer``, saved with it (the template is what matters here)."""
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    fmt = ChatFormat.from_tokenizer(tokenizer)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=32, max_position_embeddings=512,
                         tie_word_embeddings=False, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=list(fmt.stop_ids), pad_token_id=tokenizer.pad_token_id)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.2)
    model.generation_config = GenerationConfig(eos_token_id=list(fmt.stop_ids), pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def family_model(tmp_path_factory, family_tokenizer_dir):
    """``family_model(family)``: (folder, tokenizer loaded by the workbench) of a tiny model with that tokenizer."""
    from workbench.tokenizer import load_tokenizer

    built = {}

    def get(family: str):
        if family not in built:
            tokenizer = load_tokenizer(family_tokenizer_dir(family))
            path = tiny_model_dir(family, tokenizer, tmp_path_factory.mktemp(f"{family}_chat_model"))
            built[family] = (path, load_tokenizer(path))
        return built[family]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_sft_labels_are_exactly_the_assistant_tokens(family, family_model, tmp_path):
    from workbench.posttrain.config import SFTConfig
    from workbench.posttrain.sft import build_trainer

    path, tokenizer = family_model(family)
    rows = [{"messages": conversation(family)}, {"messages": conversation(family)[-2:]}]
    trainer = build_trainer(SFTConfig(max_length=512), rows, path, tmp_path / "out", seed=0)
    assert trainer.assistant_spans == SPANS[family]
    for row, prepared in zip(rows, trainer.train_dataset):
        labelled = [t for t in prepared["labels"] if t != -100]
        assert labelled == expected_assistant_ids(family, tokenizer, row["messages"])


# -- DPO ---------------------------------------------------------------------------------------------

BETA, NLL_COEF = 0.1, 0.2


def _response_logps(model, tokenizer, prompt, response, skip_ids):
    """Sum and count of log p(token) over the response's rendered tokens that are not in skip_ids, from raw logits."""
    prompt_ids = list(tokenizer.apply_chat_template(prompt, add_generation_prompt=True)["input_ids"])
    full = list(tokenizer.apply_chat_template(prompt + [{"role": "assistant", "content": response}])["input_ids"])
    assert full[: len(prompt_ids)] == prompt_ids
    with torch.no_grad():
        logprobs = torch.log_softmax(model(torch.tensor([full])).logits[0].float(), dim=-1)
    positions = [t for t in range(len(prompt_ids), len(full)) if full[t] not in skip_ids]
    return sum(logprobs[t - 1, full[t]] for t in positions), len(positions)


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_dpo_masks_the_templates_tokens_and_its_loss_equals_the_formula(family, family_model, tmp_path):
    from transformers import AutoModelForCausalLM

    from workbench.posttrain.config import DPOConfig
    from workbench.posttrain.dpo import build_trainer

    path, tokenizer = family_model(family)
    policy = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    ref = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.05 * torch.randn_like(p))
    rows = [{"prompt": [{"role": "user", "content": f"What is {i} + 3?"}],
             "chosen": [{"role": "assistant", "content": f"{i} + 3 = {i + 3}\nAnswer: {i + 3}"}],
             "rejected": [{"role": "assistant", "content": f"Answer: {i + 4}"}]} for i in (0, 7)]
    config = DPOConfig(per_device_train_batch_size=len(rows), max_length=256, beta=BETA, nll_coef=NLL_COEF)
    trainer = build_trainer(config, rows, policy, tokenizer, tmp_path / "out", seed=0, ref_model=ref)
    assert set(trainer.masked_tokens) == FORMATTING[family]
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(rows))])
    completion = batch["input_ids"][batch["completion_mask"].bool()]
    assert not set(tokenizer.convert_ids_to_tokens(completion.tolist())) & FORMATTING[family]
    skip = set(tokenizer.convert_tokens_to_ids(sorted(FORMATTING[family])))
    losses = []
    for row in rows:
        chosen, rejected = row["chosen"][0]["content"], row["rejected"][0]["content"]
        pi_c, n_c = _response_logps(policy, tokenizer, row["prompt"], chosen, skip)
        pi_r, _ = _response_logps(policy, tokenizer, row["prompt"], rejected, skip)
        ref_c, _ = _response_logps(ref, tokenizer, row["prompt"], chosen, skip)
        ref_r, _ = _response_logps(ref, tokenizer, row["prompt"], rejected, skip)
        losses.append(-F.logsigmoid(BETA * ((pi_c - ref_c) - (pi_r - ref_r))) + NLL_COEF * (-pi_c / n_c))
    loss = trainer.compute_loss(trainer.model, batch)
    assert abs(loss.item() - torch.stack(losses).mean().item()) < 1e-5


# -- reward rows and generation ------------------------------------------------------------------------

@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_reward_rows_end_with_the_templates_end_of_turn(family, family_tokenizer):
    from reward.data import encode, encode_prompt

    tokenizer = family_tokenizer(family)
    prompt = [{"role": "user", "content": "What is 12 + 30?"}]
    ids = encode(tokenizer, prompt, "Answer: 42")
    reply = tokenizer("Answer: 42" + END_OF_TURN[family], add_special_tokens=False)["input_ids"]
    assert ids == encode_prompt(tokenizer, prompt) + reply
    assert ids == tokenizer.apply_chat_template(prompt + [{"role": "assistant", "content": "Answer: 42"}],
                                                return_dict=True)["input_ids"]
    stop = STOPS[family][0]  # a generation that kept the stop token scores the same
    assert encode(tokenizer, prompt, "Answer: 42" + stop) == ids


def test_gemma_reward_rows_trim_the_reply_as_its_template_does(family_tokenizer):
    from reward.data import encode_response

    tokenizer = family_tokenizer("gemma")
    assert encode_response(tokenizer, "  Answer: 42 \n") == tokenizer("Answer: 42<end_of_turn>\n",
                                                                      add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_sampling_stops_at_the_templates_end_of_turn(family, family_tokenizer):
    from sampling.backends import stop_token_ids

    tokenizer = family_tokenizer(family)
    assert tokens(tokenizer, stop_token_ids(tokenizer)) == STOPS[family]


@pytest.mark.slow
@pytest.mark.parametrize("family", ["chatml", "gemma", "mistral", "phi3"])
def test_transformers_generation_stops_at_the_end_of_turn(family, family_model, tmp_path):
    """A model made to emit the end-of-turn token where it would emit its third token stops there, keeping it."""
    from transformers import AutoModelForCausalLM

    from sampling.backends import TransformersBackend

    path, tokenizer = family_model(family)
    prompt = [{"role": "user", "content": "What is 12 + 30?"}]
    prompt_ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_tensors="pt",
                                               return_dict=True)["input_ids"]
    model = AutoModelForCausalLM.from_pretrained(str(path))
    with torch.no_grad():
        free = model.generate(prompt_ids, max_new_tokens=3, do_sample=False, eos_token_id=None)[0, -3:].tolist()
        stop = tokenizer.convert_tokens_to_ids(STOPS[family][0])
        model.lm_head.weight[stop] = 10 * model.lm_head.weight[free[2]]
    model.save_pretrained(tmp_path / "stopping")
    tokenizer.save_pretrained(tmp_path / "stopping")
    with TransformersBackend(tmp_path / "stopping", device="cpu", batch_size=1) as backend:
        [[generation]] = backend.generate([prompt], n=1, temperature=0.0, top_p=1.0, max_new_tokens=8, seed=0)
    assert generation.finish_reason == "stop"
    assert generation.token_ids[-1] == stop and len(generation.token_ids) <= 3
    assert generation.token_ids[:-1] == free[: len(generation.token_ids) - 1]


def test_a_conversation_the_template_refuses_is_named():
    tokenizer = build_tokenizer("mistral")
    messages = [{"role": "system", "content": "Be brief."}] + conversation("mistral")
    with pytest.raises(ValueError, match="sft row 3: the chat template of .* refuses the conversation: Conversation "
                                         "roles must alternate"):
        ChatFormat.from_tokenizer(tokenizer).assistant_mask(messages, where="sft row 3")


@pytest.mark.slow
def test_sft_then_dpo_on_a_chatml_model_without_pad_say_what_they_used(tmp_path):
    from workbench.posttrain.config import DPOConfig, SFTConfig
    from workbench.posttrain.dpo import train_dpo
    from workbench.posttrain.sft import train_sft
    from workbench.preferences import Preference

    tokenizer = build_tokenizer("chatml")  # no pad token, as SmolLM2's has none here
    model = tiny_model_dir("chatml", tokenizer, tmp_path / "base")
    sft = train_sft(SFTConfig(num_train_epochs=1, per_device_train_batch_size=2, max_length=256),
                    [{"messages": conversation("chatml")}] * 2, model, tmp_path / "sft", seed=0)
    assert (sft["assistant_spans"], sft["pad_choice"]) == ("rendered prefixes",
                                                           "no pad token: pads with the eos token '<|im_end|>'")
    prefs = [Preference(id=f"p{i}", prompt=[{"role": "user", "content": f"What is {i} + 3?"}],
                        chosen=f"Answer: {i + 3}", rejected=f"Answer: {i + 4}", level="better") for i in range(2)]
    dpo = train_dpo(DPOConfig(per_device_train_batch_size=2, max_length=256), prefs, tmp_path / "sft",
                    tmp_path / "dpo", seed=0)
    assert sorted(dpo["masked_tokens"]) == sorted(FORMATTING["chatml"])
    assert dpo["pad_choice"] == "the tokenizer's pad token"  # SFT saved the tokenizer with the pad it chose
    assert dpo["pairs_used"] == 2 and dpo["loss"] > 0


@pytest.mark.slow
def test_dpo_config_override_is_what_dpo_masks(family_model, tmp_path):
    from transformers import AutoModelForCausalLM

    from workbench.posttrain.config import DPOConfig
    from workbench.posttrain.dpo import build_trainer

    path, tokenizer = family_model("chatml")
    rows = [{"prompt": [{"role": "user", "content": "What is 1 + 3?"}],
             "chosen": [{"role": "assistant", "content": "Answer: 4"}],
             "rejected": [{"role": "assistant", "content": "Answer: 5"}]}]
    policy = AutoModelForCausalLM.from_pretrained(str(path))
    trainer = build_trainer(DPOConfig(formatting_tokens=["Answer"], max_length=512), rows, policy, tokenizer,
                            tmp_path / "out", seed=0)
    assert trainer.masked_tokens == ["Answer"]
    batch = trainer.data_collator([trainer.train_dataset[0]])
    kept = tokenizer.convert_ids_to_tokens(batch["input_ids"][batch["completion_mask"].bool()].tolist())
    assert "Answer" not in kept and "<|im_end|>" in kept
