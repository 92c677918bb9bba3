"""Chat formats: the workbench's own (Llama 3) and what any tokenizer's chat template puts around messages.

The workbench's tokenizer speaks Llama 3: a turn is
``<|start_header_id|>{role}<|end_header_id|>\\n\\n{content}<|eot_id|>`` and a conversation starts with
``<|begin_of_text|>`` (TASKS.md). A user's model brings its own template; :class:`ChatFormat` derives
from it, by rendering probe conversations with marker contents, what the recipe needs:

- the formatting tokens DPO masks: the special tokens the template renders around the contents (role
  headers, begin/end of turn, BOS), the tokenizer's BOS and EOS, and the stop tokens. Role names
  spelled in ordinary tokens (ChatML's ``user``) are not formatting tokens, as Llama 3 masks only
  special tokens. Llama 3 gets its five: four rendered, and ``<|end_of_text|>``, its second stop token,
  which no template renders (kept by name for templates that end turns with ``<|eot_id|>``);
- the end of an assistant turn (``<|im_end|>\\n``, ``</s> ``, ``<end_of_turn>\\n``) and the stop tokens
  (the special tokens in it, EOS, and the stops of a generation_config.json next to the tokenizer);
- how SFT finds the assistant's tokens: the template's ``{% generation %}`` markers, else the
  difference of rendered prefixes (checked to tokenize as a prefix of the whole conversation), else
  TRL's training version of a template it knows (:attr:`ChatFormat.assistant_masking`);
- a pad token when the tokenizer has none (a dedicated pad token, else EOS, else the end of turn).
"""

from __future__ import annotations

import json
import re
import weakref
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

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


# Llama 3 ends a turn with <|eot_id|> and a text with <|end_of_text|>; its generation config stops at both,
# so a Llama 3 template keeps the pair as stop (and formatting) tokens although it never renders the second.
_LLAMA3_STOP_PAIR = (EOT, EOS)
_MARKERS = ("wbqsys", "wbquser", "wbqreply", "wbqnext", "wbqlast")  # probe contents: plain text in any tokenizer
_GENERATION_MARKERS = re.compile(r"\{%-?\s*generation\s*-?%\}")


def _name(tokenizer) -> str:
    return getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__


def render_template(tokenizer, messages: list[dict], add_generation_prompt: bool = False,
                    chat_template: str | None = None) -> str:
    """``messages`` rendered by the tokenizer's chat template (or ``chat_template``), as text."""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt,
                                         chat_template=chat_template)


def template_ids(tokenizer, messages: list[dict], add_generation_prompt: bool = False) -> list[int]:
    """Token ids of ``messages`` as the chat template renders and tokenizes them."""
    out = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=add_generation_prompt,
                                        return_dict=True)
    return list(out["input_ids"])


def special_token_ids(tokenizer) -> set[int]:
    """Ids of the tokenizer's special tokens (bos/eos/pad/unk, additional ones, added tokens marked special)."""
    ids = set(tokenizer.all_special_ids)
    ids |= {i for i, token in tokenizer.added_tokens_decoder.items() if token.special}
    return ids


def _probe(tokenizer) -> list[dict]:
    """A system/user/assistant/user/assistant conversation of marker contents the template accepts."""
    user, reply, nxt, last = ({"role": role, "content": text} for role, text in
                              zip(("user", "assistant", "user", "assistant"), _MARKERS[1:]))
    errors = []
    for messages in ([{"role": "system", "content": _MARKERS[0]}, user, reply, nxt, last], [user, reply, nxt, last]):
        try:
            render_template(tokenizer, messages)
            render_template(tokenizer, messages[:-1], add_generation_prompt=True)
            return messages
        except Exception as exc:  # noqa: BLE001 - a template refuses with whatever its raise_exception raises
            errors.append(str(exc))
    raise ValueError(f"{_name(tokenizer)}: the chat template cannot render a user/assistant conversation "
                     f"({'; '.join(errors)})")


def _generation_stop_ids(tokenizer) -> list[int]:
    """The eos_token_id of a generation_config.json in the folder the tokenizer was loaded from (none if absent)."""
    path = Path(str(getattr(tokenizer, "name_or_path", "") or "")) / "generation_config.json"
    if not path.is_file():
        return []
    eos = json.loads(path.read_text(encoding="utf-8")).get("eos_token_id")
    return [eos] if isinstance(eos, int) else list(eos or [])


def _unique(ids) -> tuple[int, ...]:
    return tuple(dict.fromkeys(ids))


@dataclass(frozen=True)
class ChatFormat:
    """What a tokenizer's chat template puts around messages (see the module docstring for the rules)."""

    formatting_ids: tuple[int, ...]
    formatting_tokens: tuple[str, ...]
    formatting_source: str  # "template" (derived) or "config" (an override list)
    end_of_turn: str  # the text the template renders after the last assistant message's content
    stop_ids: tuple[int, ...]
    stop_tokens: tuple[str, ...]
    pad_token: str  # the tokenizer's own, or the one :func:`choose_pad` picks
    pad_choice: str  # how the pad token was chosen
    tokenizer: object = field(repr=False, compare=False, default=None)

    @classmethod
    def from_tokenizer(cls, tokenizer, override: list[str] | None = None) -> "ChatFormat":
        """Derive the format from ``tokenizer``'s chat template; ``override`` replaces the formatting tokens."""
        name = _name(tokenizer)
        template = tokenizer.chat_template
        if not template:
            raise ValueError(f"{name}: the tokenizer has no chat template (tokenizer_config.json chat_template or "
                             "chat_template.jinja); copy the model's, or add one")
        probe = _probe(tokenizer)
        prompt_text = render_template(tokenizer, probe[:-1], add_generation_prompt=True)
        full_text = render_template(tokenizer, probe)
        if not full_text.startswith(prompt_text):
            raise ValueError(f"{name}: the chat template renders a prompt with its generation prompt as "
                             f"{prompt_text!r}, but a conversation continuing it as {full_text!r}: the reply "
                             "cannot be told apart from the prompt; the template must render a prompt with "
                             "add_generation_prompt as the beginning of the conversation that answers it")
        tail = full_text[len(prompt_text):]
        if _MARKERS[-1] not in tail:
            raise ValueError(f"{name}: the chat template does not render an assistant message's content after "
                             f"its generation prompt (rendered reply: {tail!r})")
        end_of_turn = tail[tail.index(_MARKERS[-1]) + len(_MARKERS[-1]):]
        specials = special_token_ids(tokenizer)
        encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
        emitted = [i for text in (full_text, prompt_text) for i in encode(text) if i in specials]
        vocab = tokenizer.get_vocab()
        stops = [i for i in encode(end_of_turn) if i in specials]
        if tokenizer.eos_token_id is not None:
            stops.append(tokenizer.eos_token_id)
        if vocab.get(_LLAMA3_STOP_PAIR[0]) in stops and _LLAMA3_STOP_PAIR[1] in vocab:
            stops.append(vocab[_LLAMA3_STOP_PAIR[1]])
        stops = list(_unique(stops + _generation_stop_ids(tokenizer)))
        if not stops:
            raise ValueError(f"{name}: the chat template ends an assistant turn with {end_of_turn!r}, which holds no "
                             "special token, and the tokenizer has no eos_token: nothing tells generation to stop")
        if override is None:
            ends = [i for i in (tokenizer.bos_token_id, tokenizer.eos_token_id) if i is not None]
            formatting, source = sorted(set(emitted + ends + stops)), "template"
        else:
            formatting, source = _override_ids(tokenizer, override), "config"
        pad_token, pad_choice = choose_pad(tokenizer, tokenizer.convert_ids_to_tokens(stops[0]))
        return cls(tuple(formatting), tuple(tokenizer.convert_ids_to_tokens(formatting)), source, end_of_turn,
                   tuple(stops), tuple(tokenizer.convert_ids_to_tokens(stops)), pad_token,
                   getattr(tokenizer, "workbench_pad_choice", None) or pad_choice, tokenizer)

    def record(self) -> dict:
        """What a manifest records about the format."""
        return {"formatting_tokens": list(self.formatting_tokens), "formatting_source": self.formatting_source,
                "end_of_turn": self.end_of_turn, "stop_tokens": list(self.stop_tokens),
                "pad_token": self.pad_token, "pad_choice": self.pad_choice}

    # -- replies (reward rows, scoring) ---------------------------------------------------------

    def strip_stop(self, response: str) -> str:
        """``response`` without a trailing stop token (a generation keeps the token it stopped at)."""
        for token in self.stop_tokens:
            if response.endswith(token):
                return response[: -len(token)]
        return response

    def reply_text(self, response: str) -> str:
        """What the template renders for ``response`` as an assistant's last message, after the generation prompt.

        That is the content (as the template writes it: Gemma trims it) and the end of turn.
        """
        prompt = [{"role": "user", "content": _MARKERS[1]}]
        before = render_template(self.tokenizer, prompt, add_generation_prompt=True)
        after = render_template(self.tokenizer, prompt + [{"role": "assistant", "content": self.strip_stop(response)}])
        if not after.startswith(before):
            raise ValueError(f"{_name(self.tokenizer)}: the chat template renders the reply {response!r} so that the "
                             f"prompt {before!r} is not a prefix of the conversation {after!r}")
        return after[len(before):]

    def reply_ids(self, response: str) -> list[int]:
        """Token ids of :meth:`reply_text`: what follows the prompt's tokens when a policy answers ``response``."""
        return self.tokenizer(self.reply_text(response), add_special_tokens=False)["input_ids"]

    # -- assistant spans (SFT) ------------------------------------------------------------------

    @cached_property
    def assistant_masking(self) -> tuple[str, str | None]:
        """How SFT finds the assistant's tokens: ``(method, training template or None)``; a ValueError if no way works.

        ``generation markers``: the template's own. ``rendered prefixes``: the difference of
        ``messages[:i]`` rendered with the generation prompt and ``messages[:i+1]``, when both tokenize as
        prefixes of the conversation: the assistant's content and end of turn, exactly the tokens a
        policy generates after the generation prompt (DPO's and the reward model's completion too).
        ``TRL training template``: TRL's training version of a template it knows, for templates whose
        prefixes differ (Phi-3 appends EOS to a conversation that ends with a reply); preferred after
        prefixes because some of TRL's (Qwen2.5) count the header's newline as the assistant's.
        """
        if _GENERATION_MARKERS.search(self.tokenizer.chat_template):
            return "generation markers", None
        try:
            self.assistant_mask(_probe(self.tokenizer), method="rendered prefixes", where="a probe conversation")
            return "rendered prefixes", None
        except ValueError as exc:
            problem = exc
        from trl.chat_template_utils import get_training_chat_template

        try:
            training = get_training_chat_template(self.tokenizer)
        except ValueError:
            training = None
        if not training:
            raise problem
        return "TRL training template", training

    def assistant_mask(self, messages: list[dict], method: str | None = None, where: str = "conversation"
                       ) -> tuple[list[int], list[int]]:
        """``(input_ids, mask)`` of ``messages``: mask 1 on each assistant message's content and end of turn."""
        from jinja2 import TemplateError

        try:
            return self._assistant_mask(messages, method, where)
        except TemplateError as exc:
            raise ValueError(f"{where}: the chat template of {_name(self.tokenizer)} refuses the conversation: "
                             f"{exc}") from None

    def _assistant_mask(self, messages: list[dict], method: str | None, where: str) -> tuple[list[int], list[int]]:
        method, training = (method, None) if method else self.assistant_masking
        if method != "rendered prefixes":
            out = self.tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                                     return_assistant_tokens_mask=True, chat_template=training)
            return list(out["input_ids"]), list(out["assistant_masks"])
        full = template_ids(self.tokenizer, messages)
        mask = [0] * len(full)
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            before = template_ids(self.tokenizer, messages[:i], add_generation_prompt=True) if i else []
            upto = template_ids(self.tokenizer, messages[: i + 1])
            for part, ids in ((f"messages[:{i}] with the generation prompt", before), (f"messages[:{i + 1}]", upto)):
                if full[: len(ids)] != ids:
                    raise ValueError(
                        f"{_name(self.tokenizer)}: {where}: the chat template's {part} does not tokenize as a prefix "
                        "of the whole conversation, so the assistant's tokens cannot be found from rendered "
                        "prefixes; the template has no {% generation %} markers and TRL has no training version "
                        "of it: add {% generation %}...{% endgeneration %} around each assistant message's "
                        "content and end of turn in the tokenizer's chat_template")
            mask[len(before): len(upto)] = [1] * (len(upto) - len(before))
        return full, mask


def _override_ids(tokenizer, tokens: list[str]) -> list[int]:
    """Ids of the configured formatting tokens; every token the vocabulary lacks is named at once."""
    vocab = tokenizer.get_vocab()
    missing = [t for t in tokens if t not in vocab]
    if missing:
        raise ValueError(f"dpo.formatting_tokens: {missing} are not tokens of {_name(tokenizer)} "
                         "(each entry must be one token of the vocabulary, e.g. '<|im_end|>')")
    return sorted({vocab[t] for t in tokens})


def choose_pad(tokenizer, end_of_turn_token: str | None = None) -> tuple[str, str]:
    """``(pad token, how chosen)``: the tokenizer's own, else a dedicated pad token, else EOS, else the end of turn."""
    if tokenizer.pad_token is not None:
        return tokenizer.pad_token, "the tokenizer's pad token"
    dedicated = [t.content for _, t in sorted(tokenizer.added_tokens_decoder.items())
                 if t.special and "pad" in t.content.lower()]
    if dedicated:
        return dedicated[0], f"no pad token: pads with the dedicated pad token {dedicated[0]!r}"
    if tokenizer.eos_token is not None:
        return tokenizer.eos_token, f"no pad token: pads with the eos token {tokenizer.eos_token!r}"
    if end_of_turn_token is None:
        raise ValueError(f"{_name(tokenizer)}: the tokenizer has no pad, eos or end-of-turn token to pad with")
    return end_of_turn_token, f"no pad token: pads with the end-of-turn token {end_of_turn_token!r}"


_FORMATS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def chat_format(tokenizer) -> ChatFormat:
    """``ChatFormat.from_tokenizer(tokenizer)``, derived once per tokenizer (again if its template or pad changed)."""
    key = (tokenizer.chat_template, tokenizer.pad_token)
    cached = _FORMATS.get(tokenizer)
    if cached is None or cached[0] != key:
        cached = _FORMATS[tokenizer] = (key, ChatFormat.from_tokenizer(tokenizer))
    return cached[1]


def formatting_token_ids(tokenizer, override: list[str] | None = None) -> list[int]:
    """Ids of the formatting tokens DPO masks, derived from the tokenizer's chat template (or ``override``)."""
    return list(ChatFormat.from_tokenizer(tokenizer, override).formatting_ids)

def user_prompt(text: str, system: str | None = None) -> list[dict]:
    """A single-turn conversation asking ``text`` (with an optional system prompt)."""
    messages = [{"role": "system", "content": system}] if system else []
    return messages + [{"role": "user", "content": text}]
