"""Heuristic document filters (Llama 3, section 3.1.1), as datatrove filters.

- duplicated n-gram coverage: datatrove's ``GopherRepetitionFilter`` (the Gopher rules), given a
  regex word splitter so it needs no spaCy model and treats French, Spanish and German alike;
- dirty-word count: ``DirtyWordFilter``, a count against a local list (datatrove's
  ``C4BadWordsFilter`` downloads its list at run time, and drops a document on a single hit);
- token-distribution KL divergence: ``TokenKLFilter``, KL(document || corpus) over word tokens,
  which flags documents made of tokens the rest of the corpus never uses (garbage runs, logs).

All are ``datatrove.pipeline.filters.base_filter.BaseFilter`` subclasses, so they also run inside a
datatrove pipeline on real data; here :func:`run_filters` calls ``filter`` directly in memory.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Iterable

from datatrove.data import Document
from datatrove.pipeline.filters import GopherRepetitionFilter
from datatrove.pipeline.filters.base_filter import BaseFilter, get_filter_result
from datatrove.utils.word_tokenizers import WordTokenizer

from workbench.data.corpus import Doc

_TOKEN = re.compile(r"\w+|[^\w\s]")

# Adult and spam vocabulary in the spirit of the LDNOOBW lists used by C4 and Llama 3.
DIRTY_WORDS = frozenset("""
porn porno xxx nude nudes naked sex sexy horny slut sluts milf fetish escort escorts camgirl
fuck fucking shit bitch bastard viagra cialis casino jackpot hookup onlyfans
""".split())


def tokens(text: str) -> list[str]:
    """Lower-cased word and punctuation tokens (language-agnostic)."""
    return _TOKEN.findall(text.lower())


class RegexWordTokenizer(WordTokenizer):
    """A datatrove word tokenizer splitting on a regex: no model download, any Latin-script language."""

    def word_tokenize(self, text: str) -> list[str]:
        """Word tokens (punctuation dropped, as Gopher's word counts expect)."""
        return re.findall(r"\w+", text)

    def sent_tokenize(self, text: str) -> list[str]:
        """Sentences split after . ! ? or a newline."""
        return [s for s in re.split(r"(?<=[.!?\n])\s+", text) if s]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the sentences."""
        return [m.span() for m in re.finditer(r"[^.!?\n]+[.!?]?", text)]


def repetition_filter(dup_ngram_char_frac: dict[int, float]) -> GopherRepetitionFilter:
    """Gopher's repetition filter reduced to duplicated n-gram coverage, with the config's thresholds.

    The duplicate-line and top-n-gram rules are off: a code page legitimately repeats its fences
    and ``return`` lines, a worked-solutions page "What is" in every question.
    """
    return GopherRepetitionFilter(
        dup_line_frac=None, dup_para_frac=None,
        dup_line_char_frac=None, dup_para_char_frac=None, top_n_grams=(),
        dup_n_grams=tuple(sorted(dup_ngram_char_frac.items())), language=RegexWordTokenizer(),
    )


class DirtyWordFilter(BaseFilter):
    """Drop documents with more than ``max_count`` words from :data:`DIRTY_WORDS`."""

    name = "dirty words"

    def __init__(self, max_count: int = 2, words: Iterable[str] = DIRTY_WORDS):
        super().__init__()
        self.max_count, self.words = max_count, frozenset(words)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        """Keep unless the dirty-word count exceeds the limit."""
        count = sum(1 for w in re.findall(r"\w+", doc.text.lower()) if w in self.words)
        return True if count <= self.max_count else (False, "dirty_words")


class TokenKLFilter(BaseFilter):
    """Drop documents whose token distribution diverges from the corpus by more than ``max_kl`` nats.

    Call :meth:`fit` on the corpus first; the corpus distribution is add-one smoothed so unseen
    and one-off tokens get a tiny probability and weigh heavily.
    """

    name = "token KL"

    def __init__(self, max_kl: float = 3.0):
        super().__init__()
        self.max_kl = max_kl
        self.counts: Counter = Counter()
        self.total = 0

    def fit(self, texts: Iterable[str]) -> "TokenKLFilter":
        """Count the corpus token distribution."""
        for text in texts:
            self.counts.update(tokens(text))
        self.total = sum(self.counts.values())
        return self

    def kl(self, text: str) -> float:
        """KL(document || corpus) in nats (0 for an empty document)."""
        doc = Counter(tokens(text))
        n = sum(doc.values())
        if not n:
            return 0.0
        denom = self.total + len(self.counts) + 1
        return sum(c / n * math.log((c / n) / ((self.counts[t] + 1) / denom)) for t, c in doc.items())

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        """Keep unless the divergence exceeds the limit."""
        return True if self.kl(doc.text) <= self.max_kl else (False, "token_kl")


def run_filters(docs: list[Doc], filters: list[tuple[str, BaseFilter]]) -> tuple[list[Doc], dict[str, str]]:
    """Apply named filters in order; returns (kept, {removed id: "filter name: reason"})."""
    kept, removed = [], {}
    for doc in docs:
        item = Document(text=doc.text, id=doc.id)
        for name, flt in filters:
            ok, reason = get_filter_result(flt.filter(item))
            if not ok:
                removed[doc.id] = f"{name}: {reason or 'dropped'}"
                break
        else:
            kept.append(doc)
    return kept, removed
