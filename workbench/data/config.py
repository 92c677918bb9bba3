"""Config of `workbench data build`."""

from dataclasses import dataclass

from workbench.config_base import ConfigError, field

DOMAINS = ("general", "math", "code", "multilingual")


@dataclass
class DataConfig:
    """The generated pretraining corpus and its cleaning pipeline (Llama 3, section 3.1).

    ``num_documents`` clean documents are generated from the task world, then noise is planted at
    the ``*_rate`` fractions of that number (ground truth in a sidecar, never in the text). The
    stages run in order: URL dedup, MinHash dedup, line dedup, heuristic filters, quality
    classifier, domain classifier, mix sampling to ``mix`` (shares of characters).
    """

    num_documents: int = field(6000, "clean documents generated before noise is planted")
    heldout_per_domain: int = field(40, "clean held-out documents per domain (heldout.jsonl, never in train)")
    anneal_fraction: float = field(0.1, "share of the final train documents, best quality first, copied to anneal.jsonl")
    seed: int = field(0, "seed of generation, noise, classifiers and sampling")
    min_doc_chars: int = field(300, "a generated document grows until it has at least this many characters")
    max_doc_chars: int = field(1200, "... and at most about this many")
    # planted noise, as fractions of num_documents
    exact_dup_rate: float = field(0.04, "exact copies of clean documents (under another URL)")
    near_dup_rate: float = field(0.06, "near copies of clean documents (word 5-gram Jaccard >= near_dup_jaccard)")
    near_dup_jaccard: float = field(0.8, "planted near duplicates have at least this Jaccard similarity")
    old_version_rate: float = field(0.05, "older versions of a clean document's URL (timestamp earlier)")
    boilerplate_rate: float = field(0.25, "clean documents given site navigation / cookie-notice lines")
    low_quality_rate: float = field(0.08, "low-quality documents: repeated n-grams, log spam, dirty words, garbage runs")
    # document dedup (datasketch MinHash LSH, candidates verified by exact Jaccard)
    minhash_num_perm: int = field(128, "MinHash permutations")
    minhash_ngram: int = field(5, "word n-gram size of the shingles")
    minhash_lsh_threshold: float = field(0.5, "LSH candidate threshold (below dedup_jaccard, for recall)")
    dedup_jaccard: float = field(0.8, "candidates with shingle Jaccard at least this are duplicates (earliest kept)")
    # line dedup (Llama 3: lines seen more than 6 times in a bucket of documents)
    line_max_count: int = field(6, "a line in more than this many documents of a bucket is removed")
    line_bucket_docs: int = field(250, "documents per line-dedup bucket")
    line_min_words: int = field(4, "lines with fewer words of 2+ characters (answers, keywords, spelled words) and code lines are never removed")
    # heuristic filters (datatrove filters)
    dup_ngram_char_frac: dict[int, float] = field(
        {5: 0.35, 7: 0.32, 10: 0.3},
        "Gopher repetition: largest share of characters in duplicated word n-grams, per n (Gopher: "
        "0.15 at 5 to 0.10 at 10; raised because task-world pages repeat their templates)",
    )
    max_dirty_words: int = field(2, "documents with more dirty words than this are removed")
    max_kl: float = field(4.5, "token-distribution KL divergence (nats) of a document vs the corpus above which it is removed")
    # classifiers (hashed word n-gram linear models, fastText-like, trained here)
    classifier_seed_docs: int = field(400, "trusted clean documents generated as the classifiers' seed set")
    classifier_buckets: int = field(1 << 16, "hash buckets of the word uni+bigram features")
    classifier_steps: int = field(300, "full-batch Adam steps of each classifier")
    quality_threshold: float = field(0.5, "documents with a quality score below this are removed")
    mix: dict[str, float] = field(
        {"general": 0.5, "math": 0.25, "code": 0.17, "multilingual": 0.08},
        "target share of characters per domain in train.jsonl (Llama 3: 50/25/17/8)",
    )

    def validate(self) -> None:
        """Check ranges and the mix."""
        if self.num_documents < 40:
            raise ConfigError("num_documents: must be at least 40")
        for name in ("exact_dup_rate", "near_dup_rate", "old_version_rate", "boilerplate_rate",
                     "low_quality_rate", "anneal_fraction"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name}: must be in [0, 1)")
        for name in ("near_dup_jaccard", "minhash_lsh_threshold", "dedup_jaccard", "quality_threshold"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ConfigError(f"{name}: must be in (0, 1)")
        if self.min_doc_chars >= self.max_doc_chars:
            raise ConfigError("min_doc_chars: must be below max_doc_chars")
        if set(self.mix) != set(DOMAINS):
            raise ConfigError(f"mix: expected exactly the domains {list(DOMAINS)}, got {sorted(self.mix)}")
        if any(v <= 0 for v in self.mix.values()) or abs(sum(self.mix.values()) - 1.0) > 1e-6:
            raise ConfigError(f"mix: shares must be positive and sum to 1, got {self.mix}")
