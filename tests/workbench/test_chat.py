"""Chat format and tokenizer: the saved template renders exactly TASKS.md's format."""

import pytest

from workbench import chat
from workbench.tokenizer import load_tokenizer, save_tokenizer, train_tokenizer

MESSAGES = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "What is 1 + 2?"},
    {"role": "assistant", "content": "1 + 2 = 3\nAnswer: 3"},
]


def test_template_renders_the_llama3_format(tiny_tokenizer):
    text = tiny_tokenizer.apply_chat_template(MESSAGES, tokenize=False)
    assert text == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nAnswer briefly.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWhat is 1 + 2?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n1 + 2 = 3\nAnswer: 3<|eot_id|>"
    )
    assert text == chat.render(MESSAGES)


def test_generation_prompt_opens_an_assistant_turn(tiny_tokenizer):
    text = tiny_tokenizer.apply_chat_template(MESSAGES[1:2], tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")


def test_special_tokens_are_single_ids(tiny_tokenizer):
    for token in chat.SPECIAL_TOKENS:
        assert tiny_tokenizer(token, add_special_tokens=False)["input_ids"] == [tiny_tokenizer.convert_tokens_to_ids(token)]


def test_formatting_token_ids_come_from_the_tokenizer(tiny_tokenizer):
    ids = chat.formatting_token_ids(tiny_tokenizer)
    assert sorted(tiny_tokenizer.convert_ids_to_tokens(ids)) == sorted(chat.FORMATTING_TOKENS)


def test_tokenizer_without_a_chat_template_is_refused():
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    plain = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE()), name_or_path="plain")
    with pytest.raises(ValueError, match="plain: the tokenizer has no chat template"):
        chat.formatting_token_ids(plain)


def test_byte_level_round_trip_of_accents_and_code(tiny_tokenizer):
    text = "quatre-vingt-onze, dieciséis, weiß\n```python\ndef f(xs):\n    return xs[::-1]\n```"
    assert tiny_tokenizer.decode(tiny_tokenizer(text)["input_ids"]) == text


def test_assistant_mask_covers_the_reply_and_its_eot(tiny_tokenizer):
    out = tiny_tokenizer.apply_chat_template(MESSAGES, return_assistant_tokens_mask=True, return_dict=True)
    ids = [i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert tiny_tokenizer.decode(ids) == "1 + 2 = 3\nAnswer: 3<|eot_id|>"


def test_saved_tokenizer_reloads_with_template(tmp_path):
    tokenizer = train_tokenizer(["Answer: 42"] * 10, vocab_size=300)
    loaded = load_tokenizer(save_tokenizer(tokenizer, tmp_path))
    assert loaded.apply_chat_template(MESSAGES, tokenize=False) == chat.render(MESSAGES)
    assert loaded.pad_token == chat.PAD


@pytest.mark.parametrize("reply", ["```python\ndef f(xs):\n    return xs\n```", "12 + 30 = 42\nAnswer: 42", " leading space", "\nnewline first"])
def test_generation_prompt_tokens_are_a_prefix_of_the_conversation(tiny_tokenizer, reply):
    """What the model is prompted with at inference is exactly what preceded the reply in training."""
    prompt = [{"role": "user", "content": "Write it."}]
    prompted = tiny_tokenizer.apply_chat_template(prompt, add_generation_prompt=True)["input_ids"]
    full = tiny_tokenizer.apply_chat_template(prompt + [{"role": "assistant", "content": reply}])["input_ids"]
    assert full[:len(prompted)] == prompted


def test_digits_split_in_groups_of_at_most_three(tiny_tokenizer):
    pieces = [tiny_tokenizer.decode([i]) for i in tiny_tokenizer("12345", add_special_tokens=False)["input_ids"]]
    assert "".join(pieces) == "12345" and all(len(p) <= 3 for p in pieces)
