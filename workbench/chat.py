"""The Llama 3 chat format: special tokens, the chat template, and the formatting-token ids.

A turn is ``<|start_header_id|>{role}<|end_header_id|>\\n\\n{content}<|eot_id|>`` and a conversation
starts with ``<|begin_of_text|>`` (TASKS.md). The five tokens below are the formatting tokens that
the modified DPO masks; :func:`formatting_token_ids` finds them from any tokenizer that has them,
so a user's own Llama 3 tokenizer works as well as the workbench's.
"""

from __future__ import annotations

BOS = "<|begin_of_text|>"
EOS = "<|end_of_text|>"
START_HEADER = "<|start_header_id|>"
END_HEADER = "<|end_header_id|>"
EOT = "<|eot_id|>"
PAD = "<|finetune_right_pad_id|>"

FORMATTING_TOKENS = (BOS, EOS, START_HEADER, END_HEADER, EOT)
SPECIAL_TOKENS = (*FORMATTING_TOKENS, PAD)
ROLES = ("system", "user", "assistant")

# `{% generation %}` marks the assistant's content for transformers' `return_assistant_tokens_mask`
# (TRL's `assistant_only_loss`); it renders nothing itself.
CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}"
    "{%- if message['role'] == 'assistant' %}"
    "{%- generation %}{{- message['content'] + '<|eot_id|>' }}{%- endgeneration %}"
    "{%- else %}"
    "{{- message['content'] + '<|eot_id|>' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{%- endif %}"
)


def render(messages: list[dict], add_generation_prompt: bool = False) -> str:
    """Render messages in the Llama 3 format without a tokenizer (the reference the template matches)."""
    parts = [BOS]
    for message in messages:
        role, content = message["role"], message["content"]
        if role not in ROLES:
            raise ValueError(f"message role {role!r}: expected one of {ROLES}")
        parts.append(f"{START_HEADER}{role}{END_HEADER}\n\n{content}{EOT}")
    if add_generation_prompt:
        parts.append(f"{START_HEADER}assistant{END_HEADER}\n\n")
    return "".join(parts)


def formatting_token_ids(tokenizer) -> list[int]:
    """Ids of the five formatting tokens in ``tokenizer``; a clear error if any is missing."""
    vocab = tokenizer.get_vocab()
    missing = [t for t in FORMATTING_TOKENS if t not in vocab]
    if missing:
        raise ValueError(
            f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} lacks the Llama 3 formatting "
            f"tokens {missing}; the workbench's chat format needs all of {list(FORMATTING_TOKENS)}"
        )
    return sorted(vocab[t] for t in FORMATTING_TOKENS)


def user_prompt(text: str, system: str | None = None) -> list[dict]:
    """A single-turn conversation asking ``text`` (with an optional system prompt)."""
    messages = [{"role": "system", "content": system}] if system else []
    return messages + [{"role": "user", "content": text}]
