"""Train the workbench's byte-level BPE tokenizer and save it as a PreTrainedTokenizerFast."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoConfig, AutoTokenizer, PreTrainedTokenizerFast

from workbench import chat

logger = logging.getLogger(__name__)

# Llama 3's pre-tokenization: newline runs are pieces of their own, so the "\n\n" that ends a
# generation prompt is the same token as inside a full conversation (GPT-2's pattern splits
# "\n\n```" as "\n" + "\n```", and the model then learns a different first token than it is
# prompted with); digits in groups of at most three.
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def train_tokenizer(texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE (GPT-2 / Llama 3 style) with the chat format's special tokens."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    # ByteLevel post-processing only fixes offsets; BOS is added by the chat template, not here.
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(chat.SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return wrap(tok)


def wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    """Wrap a raw `tokenizers` object with the workbench's special tokens and chat template."""
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=chat.BOS,
        eos_token=chat.EOT,
        pad_token=chat.PAD,
        additional_special_tokens=[chat.EOS, chat.START_HEADER, chat.END_HEADER],
        clean_up_tokenization_spaces=False,
        model_max_length=8192,
    )
    fast.chat_template = chat.CHAT_TEMPLATE
    return fast


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, path: str | Path) -> Path:
    """Save in the Hugging Face format (tokenizer.json, tokenizer_config.json with the chat template)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(path)
    return path


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    """Load the tokenizer of a tokenizer or model folder, refusing one the workbench cannot use.

    Refused, naming the folder: no tokenizer, no chat template (or one that cannot render a
    user/assistant exchange), a model whose vocabulary is smaller than the tokenizer's ids. A
    tokenizer without a pad token gets one (:func:`workbench.chat.choose_pad`), said in a log line and
    in ``chat_format(tokenizer).pad_choice`` for the manifest.
    """
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: no tokenizer can be loaded from the folder ({exc})") from None
    if not tokenizer.chat_template:
        raise ValueError(f"{path}: tokenizer has no chat template; the workbench needs one (copy the model's "
                         "tokenizer_config.json / chat_template.jinja, or save the tokenizer with "
                         "`workbench tokenizer train`)")
    check_fits_model(tokenizer, path)
    fmt = chat.ChatFormat.from_tokenizer(tokenizer)  # errors name the folder (the tokenizer's name_or_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = fmt.pad_token
        tokenizer.workbench_pad_choice = fmt.pad_choice
        logger.info("%s: %s", path, fmt.pad_choice)
    return tokenizer


def check_fits_model(tokenizer, model_dir: str | Path) -> None:
    """Refuse a tokenizer whose ids run past the vocabulary in ``model_dir``'s config.json (weights are not read)."""
    config_path = Path(model_dir) / "config.json"
    if not config_path.is_file():
        return  # a tokenizer folder, not a model folder
    try:
        vocab_size = AutoConfig.from_pretrained(str(model_dir)).get_text_config().vocab_size
    except (OSError, ValueError) as exc:
        raise ValueError(f"{config_path}: cannot be read as a model config ({exc})") from None
    needed = max(tokenizer.get_vocab().values()) + 1
    if needed > vocab_size:
        raise ValueError(f"{model_dir}: the tokenizer has ids up to {needed - 1} but the model's vocabulary has "
                         f"{vocab_size} entries (config.json vocab_size); the folder's tokenizer is not the one "
                         "the model was built with: copy that tokenizer into the folder")
