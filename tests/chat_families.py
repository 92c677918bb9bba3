"""Tiny byte-level BPE tokenizers of the chat families users bring, each with its model's real chat template.

ChatML as SmolLM2-Instruct ships it (default system prompt, no BOS) and as Qwen2.5-Instruct does;
Mistral-7B-Instruct-v0.1 (``[INST]``, alternation check, ``</s>`` after the reply); Gemma (``<bos>``,
``<start_of_turn>``, role ``model``, ``| trim``, no system role); Phi-3 (``<|user|>``, ``<|end|>``,
EOS at the end of a conversation). The template texts are those of the models' tokenizer_config.json
(the Gemma, Phi-3 and Qwen2.5 ones byte for byte as TRL 1.16 stores them, so TRL recognises them).
The special tokens are the family's, with its bos/eos/pad/unk roles; ``[INST]``/``[/INST]`` are
special tokens here as in Mistral's v3 tokenizers (v0.1's SentencePiece spells them as text).
Each tokenizer is trained in about a second on a few texts; tests import the builders and fixtures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

MISTRAL_V01_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)

GEMMA_TEMPLATE = r"""{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '
' + message['content'] | trim + '<end_of_turn>
' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model
'}}{% endif %}"""

PHI3_TEMPLATE = r"""{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>
' + message['content'] + '<|end|>
'}}{% elif message['role'] == 'user' %}{{'<|user|>
' + message['content'] + '<|end|>
'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>
' + message['content'] + '<|end|>
'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>
' }}{% else %}{{ eos_token }}{% endif %}"""

QWEN2_5_TEMPLATE = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"""


@dataclass(frozen=True)
class Family:
    """A chat family's template and special tokens (in id order), with the roles the tokenizer gives them."""

    name: str
    template: str
    special_tokens: tuple[str, ...]
    bos: str | None
    eos: str
    pad: str | None
    unk: str | None = None
    add_bos: bool = False  # ``tokenizer(text)`` prepends BOS, as Llama-style SentencePiece tokenizers do
    system_role: bool = True  # the template accepts a system message


FAMILIES = {
    "chatml": Family("chatml", SMOLLM2_TEMPLATE, ("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
                     bos=None, eos="<|im_end|>", pad=None, unk="<|endoftext|>"),
    "qwen2": Family("qwen2", QWEN2_5_TEMPLATE, ("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
                    bos=None, eos="<|im_end|>", pad="<|endoftext|>"),
    "mistral": Family("mistral", MISTRAL_V01_TEMPLATE, ("<unk>", "<s>", "</s>", "[INST]", "[/INST]"),
                      bos="<s>", eos="</s>", pad=None, unk="<unk>", add_bos=True, system_role=False),
    "gemma": Family("gemma", GEMMA_TEMPLATE, ("<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"),
                    bos="<bos>", eos="<eos>", pad="<pad>", unk="<unk>", add_bos=True, system_role=False),
    "phi3": Family("phi3", PHI3_TEMPLATE, ("<unk>", "<s>", "</s>", "<|endoftext|>", "<|assistant|>", "<|end|>",
                                           "<|system|>", "<|user|>"),
                   bos="<s>", eos="<|endoftext|>", pad="<|endoftext|>", unk="<unk>"),
}

TEXTS = [
    "What is 12 + 30?\nAnswer: 42",
    "What is 97 - 45?\n97 - 45 = 52\nAnswer: 52",
    "Ana has 3 apples and buys 4 more. How many apples does Ana have now?\n3 + 4 = 7\nAnswer: 7",
    "Translate into French: cat\nAnswer: chat",
    "Write the word house in capital letters.\nAnswer: HOUSE",
    "You are a helpful assistant. Hello, who are you? I am a model.",
    "system user assistant model system user assistant model",
]


def build_tokenizer(family: str, vocab_size: int = 400):
    """A ``PreTrainedTokenizerFast`` of ``family``: byte-level BPE trained here, the family's specials and template."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    from workbench.tokenizer import LLAMA3_SPLIT

    if family not in FAMILIES:
        raise ValueError(f"chat family {family!r}: expected one of {sorted(FAMILIES)}")
    spec = FAMILIES[family]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(TEXTS * 20, trainer=trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=list(spec.special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    byte_level = processors.ByteLevel(trim_offsets=False)
    if spec.add_bos:
        bos = (spec.bos, tok.token_to_id(spec.bos))
        tok.post_processor = processors.Sequence([
            byte_level, processors.TemplateProcessing(single=f"{spec.bos} $A", pair=f"{spec.bos} $A {spec.bos} $B",
                                                      special_tokens=[bos])])
    else:
        tok.post_processor = byte_level
    roles = {"bos_token": spec.bos, "eos_token": spec.eos, "pad_token": spec.pad, "unk_token": spec.unk}
    roles = {k: v for k, v in roles.items() if v is not None}
    others = [t for t in spec.special_tokens if t not in roles.values()]
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **roles, additional_special_tokens=others,
                                   clean_up_tokenization_spaces=False, model_max_length=4096)
    fast.chat_template = spec.template
    return fast


def save_tokenizer(tokenizer, path: str | Path) -> Path:
    """Save in the Hugging Face format (tokenizer.json, tokenizer_config.json with the chat template)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(path)
    return path


def build_tokenizer_dir(family: str, path: str | Path) -> Path:
    """Build ``family``'s tokenizer and save it at ``path``."""
    return save_tokenizer(build_tokenizer(family), path)


def conversation(family: str) -> list[dict]:
    """A two-exchange conversation the family's template accepts (a system turn where it has a system role)."""
    system = [{"role": "system", "content": "Answer briefly."}] if FAMILIES[family].system_role else []
    return system + [
        {"role": "user", "content": "What is 12 + 30?"},
        {"role": "assistant", "content": "12 + 30 = 42\nAnswer: 42"},
        {"role": "user", "content": "Translate into French: cat"},
        {"role": "assistant", "content": "Answer: chat"},
    ]


@pytest.fixture(scope="session")
def family_tokenizer_dir(tmp_path_factory):
    """``family_tokenizer_dir(family)``: the folder of that family's tiny tokenizer (built once per session)."""
    built: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in built:
            built[family] = build_tokenizer_dir(family, tmp_path_factory.mktemp(f"{family}_tokenizer"))
        return built[family]

    return get


@pytest.fixture(scope="session")
def family_tokenizer(family_tokenizer_dir):
    """``family_tokenizer(family)``: that family's tiny tokenizer, loaded from its folder with AutoTokenizer."""
    from transformers import AutoTokenizer

    loaded: dict[str, object] = {}

    def get(family: str):
        if family not in loaded:
            loaded[family] = AutoTokenizer.from_pretrained(str(family_tokenizer_dir(family)))
        return loaded[family]

    return get
