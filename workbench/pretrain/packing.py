"""Documents packed into fixed-length rows with document masking.

Each document becomes ``<|begin_of_text|> text <|end_of_text|>``. Documents are concatenated into an
endless stream (a fresh seeded order each epoch) and rows of ``seq_len`` tokens are cut from it; a
document that does not fit continues in the next row. Inside a row every document is a separate
segment: positions restart at 0, attention is block-causal (a token sees only earlier tokens of its
own segment, through :func:`workbench.masking.attention_inputs`), and no target crosses a boundary. The stream's only state is its cursor, so a checkpoint resumes the data exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from workbench import chat
from workbench.jsonl import read_jsonl

IGNORE = -100  # target of tokens whose next token belongs to another document


def read_documents(path: str | Path) -> list[dict]:
    """The documents of a JSONL file ({"id", "text", "domain", ...} per line)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: corpus file not found; run `workbench data build` first")
    docs = read_jsonl(path)
    for n, doc in enumerate(docs, 1):
        if not isinstance(doc.get("text"), str) or "domain" not in doc:
            raise ValueError(f"{path}: document {n} needs a string 'text' and a 'domain'")
    if not docs:
        raise ValueError(f"{path}: no documents")
    return docs


@dataclass
class Corpus:
    """Tokenized documents, each with BOS and EOS, and the index of its domain."""

    documents: list[np.ndarray]
    domains: np.ndarray
    domain_names: tuple[str, ...]

    @property
    def num_tokens(self) -> int:
        """Tokens in one pass over the corpus."""
        return int(sum(len(d) for d in self.documents))

    def by_domain(self) -> dict[str, "Corpus"]:
        """One corpus per domain present (same domain indices)."""
        return {name: Corpus([d for d, k in zip(self.documents, self.domains) if k == i],
                             self.domains[self.domains == i], self.domain_names)
                for i, name in enumerate(self.domain_names) if (self.domains == i).any()}


def tokenize_corpus(docs: list[dict], tokenizer, domain_names: tuple[str, ...]) -> Corpus:
    """Tokenize documents as BOS + text + EOS; domains become indices into ``domain_names``."""
    bos, eos = tokenizer.convert_tokens_to_ids(chat.BOS), tokenizer.convert_tokens_to_ids(chat.EOS)
    ids = tokenizer([d["text"] for d in docs], add_special_tokens=False)["input_ids"]
    documents = [np.array([bos, *x, eos], dtype=np.int64) for x in ids]
    domains = np.array([domain_names.index(d["domain"]) for d in docs], dtype=np.int64)
    return Corpus(documents, domains, domain_names)


class TokenStream:
    """An endless token stream over a corpus, reshuffled every epoch; ``cursor`` tokens were consumed."""

    def __init__(self, corpus: Corpus, seed: int, shuffle: bool = True):
        self.corpus, self.seed, self.shuffle = corpus, seed, shuffle
        self.epoch_len = corpus.num_tokens
        self.cursor = 0
        self._cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def _epoch(self, e: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Tokens, document ids (unique over epochs) and domains of epoch ``e``."""
        if e not in self._cache:
            n = len(self.corpus.documents)
            order = np.random.default_rng([self.seed, e]).permutation(n) if self.shuffle else np.arange(n)
            lengths = np.array([len(self.corpus.documents[i]) for i in order])
            tokens = np.concatenate([self.corpus.documents[i] for i in order])
            doc_ids = np.repeat(e * n + np.arange(n), lengths)
            domains = np.repeat(self.corpus.domains[order], lengths)
            self._cache = {k: v for k, v in self._cache.items() if k == e - 1}  # keep at most two epochs
            self._cache[e] = (tokens, doc_ids, domains)
        return self._cache[e]

    def read(self, start: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``n`` tokens from position ``start`` (across epoch boundaries) without moving the cursor."""
        parts = []
        while n > 0:
            e, offset = divmod(start, self.epoch_len)
            tokens, doc_ids, domains = self._epoch(e)
            take = min(n, self.epoch_len - offset)
            parts.append((tokens[offset:offset + take], doc_ids[offset:offset + take], domains[offset:offset + take]))
            start, n = start + take, n - take
        return tuple(np.concatenate(p) for p in zip(*parts))

    def next_window(self, seq_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The next ``seq_len + 1`` tokens (inputs plus the last target); the cursor moves ``seq_len``."""
        window = self.read(self.cursor, seq_len + 1)
        self.cursor += seq_len
        return window


@dataclass
class Batch:
    """Packed rows: inputs, targets (IGNORE across boundaries), positions, segments, target domains."""

    input_ids: torch.Tensor  # [B, T]
    targets: torch.Tensor  # [B, T], the next token of the same document, else IGNORE
    position_ids: torch.Tensor  # [B, T], restarting at 0 for each segment
    segment_ids: torch.Tensor  # [B, T], distinct per document inside a row
    domains: torch.Tensor  # [B, T], domain index of each target

    def rows(self, start: int, stop: int) -> "Batch":
        """The rows ``start:stop`` (a process's shard or a micro-batch)."""
        return Batch(*(t[start:stop] for t in self._tensors()))

    def to(self, device) -> "Batch":
        """The batch on ``device``."""
        return Batch(*(t.to(device) for t in self._tensors()))

    def _tensors(self) -> tuple[torch.Tensor, ...]:
        return self.input_ids, self.targets, self.position_ids, self.segment_ids, self.domains

    @property
    def num_targets(self) -> int:
        """Tokens that carry a target (the loss is their mean)."""
        return int((self.targets != IGNORE).sum())


def pack_windows(windows: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> Batch:
    """Rows from windows of ``T + 1`` (tokens, document ids, domains): inputs are the first T tokens."""
    tokens, doc_ids, domains = (np.stack(a) for a in zip(*windows))
    inputs, docs = tokens[:, :-1], doc_ids[:, :-1]
    same_doc_next = (doc_ids[:, 1:] == docs) & (docs >= 0)  # negative ids are padding
    targets = np.where(same_doc_next, tokens[:, 1:], IGNORE)
    # A segment starts at column 0 and wherever the document changes.
    starts = np.ones_like(docs, dtype=bool)
    starts[:, 1:] = docs[:, 1:] != docs[:, :-1]
    columns = np.broadcast_to(np.arange(docs.shape[1]), docs.shape)
    positions = columns - np.maximum.accumulate(np.where(starts, columns, 0), axis=1)
    segments = np.cumsum(starts, axis=1)
    return Batch(*(torch.from_numpy(np.ascontiguousarray(a)) for a in
                   (inputs, targets, positions, segments, domains[:, :-1])))


def next_batch(streams: list[TokenStream], weights: list[float], batch_size: int, seq_len: int,
               rng: np.random.Generator) -> Batch:
    """A global batch of ``batch_size`` rows, each row cut from a stream drawn with ``weights``."""
    choice = rng.choice(len(streams), size=batch_size, p=np.asarray(weights) / sum(weights))
    return pack_windows([streams[k].next_window(seq_len) for k in choice])


def eval_batches(corpus: Corpus, seq_len: int, max_tokens: int, batch_size: int) -> list[Batch]:
    """The first ``max_tokens`` tokens of ``corpus`` in file order, as padded batches of rows."""
    stream = TokenStream(corpus, seed=0, shuffle=False)
    n = min(stream.epoch_len, max_tokens)
    tokens, doc_ids, domains = stream.read(0, n)
    rows = -(-(n - 1) // seq_len)
    pad = rows * seq_len + 1 - n
    tokens = np.concatenate([tokens, np.zeros(pad, dtype=tokens.dtype)])
    doc_ids = np.concatenate([doc_ids, np.full(pad, -1, dtype=doc_ids.dtype)])  # padding: its own segment
    domains = np.concatenate([domains, np.zeros(pad, dtype=domains.dtype)])
    windows = [(tokens[i:i + seq_len + 1], doc_ids[i:i + seq_len + 1], domains[i:i + seq_len + 1])
               for i in range(0, rows * seq_len, seq_len)]
    return [pack_windows(windows[i:i + batch_size]) for i in range(0, len(windows), batch_size)]
