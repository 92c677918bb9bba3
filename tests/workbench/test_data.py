"""Data pipeline stages on small hand-made inputs: dedup, filters, classifiers, mix, noise, generator."""

import random

import pytest
from datatrove.data import Document

from workbench.config_base import ConfigError, build
from workbench.data.classify import HashedNgramClassifier
from workbench.data.config import DataConfig
from workbench.data.corpus import Doc
from workbench.data.dedup import jaccard, line_dedup, minhash_dedup, shingles, url_dedup
from workbench.data.filters import DirtyWordFilter, TokenKLFilter, repetition_filter
from workbench.data.generate import code_file, code_of, generate_documents
from workbench.data.mix import domain_shares, sample_mix
from workbench.data.noise import near_copy, plant_noise
from workbench.tasks import generate

WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma "
         "tau upsilon phi chi psi omega red blue green black white cat dog horse bird fish").split()


def _prose(seed: int, n: int = 80) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) + str(rng.randint(0, 50)) for _ in range(n))


def _doc(i, text, url=None, ts="2024-01-01T00:00:00", domain=None) -> Doc:
    return Doc(id=str(i), text=text, url=url or f"https://x.example/{i}", timestamp=ts, domain=domain)


def test_url_dedup_keeps_the_newest_version():
    docs = [_doc(1, "old", "https://a.example/p", "2023-01-01T00:00:00"),
            _doc(2, "newest", "https://a.example/p", "2024-06-01T00:00:00"),
            _doc(3, "middle", "https://a.example/p", "2024-01-01T00:00:00"),
            _doc(4, "other", "https://b.example/p")]
    kept, removed = url_dedup(docs)
    assert [d.id for d in kept] == ["2", "4"]
    assert sorted(removed) == ["1", "3"]


def test_minhash_dedup_finds_near_and_exact_duplicates_and_keeps_the_earliest():
    base = _prose(0)
    words = base.split()
    words[40] = "changed"
    near = " ".join(words)
    assert jaccard(shingles(base), shingles(near)) >= 0.8
    docs = [_doc("late-copy", near, ts="2024-05-01T00:00:00"), _doc("orig", base, ts="2024-01-01T00:00:00"),
            _doc("exact", base, ts="2024-02-01T00:00:00"), _doc("other", _prose(1))]
    kept, removed = minhash_dedup(docs, threshold=0.8)
    assert [d.id for d in kept] == ["orig", "other"]
    assert removed == {"late-copy": "orig", "exact": "orig"}


def test_minhash_dedup_keeps_documents_below_the_threshold():
    base = _prose(2)
    words = base.split()
    for k in range(0, 80, 8):  # ten edits spread out: Jaccard well below 0.8
        words[k] = "edit"
    kept, removed = minhash_dedup([_doc("a", base), _doc("b", " ".join(words))], threshold=0.8)
    assert len(kept) == 2 and not removed


def test_line_dedup_removes_lines_seen_in_more_than_max_count_documents_of_a_bucket():
    nav = "Home | About | Blog | Contact | Sign in"
    rare = "This footer line appears in a few pages only"
    docs = [_doc(i, "\n".join([nav] * (i < 7) + [rare] * (i < 6) + [_prose(i, 10), "Answer: 4",
                                                                     "```python", "def f(xs):",
                                                                     "    return sum(x for x in xs)", "```"]))
            for i in range(10)]
    out, removed = line_dedup(docs, max_count=6, bucket_docs=10, min_words=4)
    assert all(nav not in d.text for d in out)  # in 7 documents > 6: removed
    assert sum(rare in d.text for d in out) == 6  # in 6 documents: kept
    assert all("Answer: 4" in d.text and "    return sum(x for x in xs)" in d.text for d in out)
    assert set(removed) == {str(i) for i in range(7)}
    # the same documents split into two buckets: no line reaches 7 in either
    out, removed = line_dedup(docs, max_count=6, bucket_docs=5, min_words=4)
    assert not removed


def test_repetition_filter_drops_duplicated_ngram_spam_and_keeps_varied_text():
    flt = repetition_filter({5: 0.35, 7: 0.32, 10: 0.3})
    spam = "buy now best price " * 40
    assert flt.filter(Document(text=_prose(3), id="a")) is True
    ok, reason = flt.filter(Document(text=_prose(4, 20) + "\n" + spam, id="b"))
    assert not ok and "n_grams" in reason


def test_dirty_word_filter_counts_against_the_limit():
    flt = DirtyWordFilter(max_count=2)
    assert flt.filter(Document(text="a casino near the river, a casino", id="a")) is True
    assert flt.filter(Document(text="casino porn xxx everywhere", id="b")) == (False, "dirty_words")


def test_token_kl_filter_flags_documents_of_outlier_tokens():
    rng = random.Random(0)
    corpus = [" ".join(rng.choice(WORDS) for _ in range(80)) for _ in range(200)]
    garbage = " ".join("".join(rng.choice("qxzjkvw#$%") for _ in range(8)) for _ in range(20))
    flt = TokenKLFilter(max_kl=4.5).fit(corpus + [garbage])
    assert flt.kl(corpus[0]) < 4.5 < flt.kl(garbage)
    assert flt.filter(Document(text=garbage, id="g")) == (False, "token_kl")


def test_hashed_ngram_classifier_separates_two_styles():
    good = [f"Question: What is {a} + {a + 1}?\nAnswer: {2 * a + 1}" for a in range(40)]
    bad = [f"INFO worker-{a} heartbeat ok latency={a}ms id={a * 13}" for a in range(40)]
    model = HashedNgramClassifier(2, buckets=4096).fit(good[:30] + bad[:30], [1] * 30 + [0] * 30)
    p = model.predict_proba(good[30:] + bad[30:])[:, 1]
    assert (p[:10] > 0.5).all() and (p[10:] < 0.5).all()


def test_sample_mix_matches_target_character_shares():
    rng = random.Random(0)
    docs = [_doc(f"{d}{i}", "x" * rng.randint(200, 800), domain=d)
            for d, n in (("general", 300), ("math", 300), ("code", 100), ("multilingual", 100)) for i in range(n)]
    target = {"general": 0.5, "math": 0.25, "code": 0.17, "multilingual": 0.08}
    shares = domain_shares(sample_mix(docs, target, seed=1))
    assert all(abs(shares[k] - v) <= 0.02 for k, v in target.items())


def test_near_copy_stays_above_the_jaccard_bound():
    rng = random.Random(0)
    text = "\n".join(_prose(i, 30) for i in range(4))
    for _ in range(20):
        out = near_copy(text, rng, 0.8, WORDS)
        assert out is not None
        copy, sim = out
        assert copy != text and 0.8 <= sim < 1.0 and sim == jaccard(shingles(text), shingles(copy))


def test_planted_labels_live_in_the_sidecar_only():
    clean = [(_doc(f"doc-{i}", _prose(i), f"https://c.example/doc/{i}"), "general") for i in range(100)]
    spare = [(_doc(f"old-{i}", _prose(1000 + i), f"https://o.example/{i}"), "general") for i in range(10)]
    rates = {"exact_dup": 0.05, "near_dup": 0.05, "old_version": 0.05, "boilerplate": 0.2, "low_quality": 0.08}
    planted = plant_noise(clean, spare, rates, seed=0)
    labels = [m["label"] for m in planted.labels.values()]
    assert labels.count("clean") == 100 and labels.count("exact_dup") == 5 and labels.count("low_quality") == 8
    assert all(d.id.startswith("raw-") and d.id in planted.labels for d in planted.docs)
    assert not any(word in d.text for d in planted.docs for word in ("near_dup", "exact_dup", "low_quality"))
    by_id = {d.id: d for d in planted.docs}
    for i, m in planted.labels.items():
        if m["label"] == "old_version":
            assert by_id[i].url == by_id[m["of"]].url and by_id[i].timestamp < by_id[m["of"]].timestamp
        if m["label"] == "exact_dup":
            assert by_id[i].text == by_id[m["of"]].text and by_id[i].url != by_id[m["of"]].url


def test_generated_documents_carry_task_formats_and_runnable_code():
    docs = generate_documents({"general": 3, "math": 3, "code": 3, "multilingual": 3}, seed=0)
    assert [g.domain for g in docs].count("code") == 3
    assert all(g.doc.url.startswith("https://") for g in docs)
    math_text = "\n".join(g.doc.text for g in docs if g.domain == "math")
    assert "Question: What is" in math_text and "\nAnswer: " in math_text
    assert any("def test_" in g.doc.text for g in docs if g.domain == "code")
    rng = random.Random(0)
    for task in generate("code", 8, seed=3):  # a code file's asserts hold for its reference function
        namespace: dict = {}
        exec(code_file(task, rng), namespace)
        namespace[f"test_{task.reference}"]()
    assert code_of("x\n```python\ndef f(xs):\n    return xs\n```\n") == "def f(xs):\n    return xs"


def test_config_rejects_a_bad_mix_naming_the_field():
    with pytest.raises(ConfigError, match="mix"):
        build(DataConfig, {"mix": {"general": 0.5, "math": 0.5}}, "x.yaml:")
    with pytest.raises(ConfigError, match="near_dup_rate"):
        build(DataConfig, {"near_dup_rate": 1.5}, "x.yaml:")
