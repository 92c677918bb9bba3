"""A fastText-like document classifier: hashed word uni- and bigrams, multinomial logistic regression.

Used twice by the build: a quality classifier (trusted clean seed documents vs documents the
heuristic filters flagged) and a domain classifier (general/math/code/multilingual, trained on the
seed documents' generator domains). scikit-learn is not in the stack; the model is a sparse
feature matrix (scipy) and an L2-regularised softmax fitted by full-batch Adam in numpy, deterministic and fast.
"""

from __future__ import annotations

import re
import zlib

import numpy as np
from scipy import sparse

_WORD = re.compile(r"\w+|[^\w\s]")


class HashedNgramClassifier:
    """Softmax regression over hashed, length-normalised word uni- and bigram counts."""

    def __init__(self, num_classes: int, buckets: int = 1 << 16, l2: float = 1e-3):
        self.num_classes, self.buckets, self.l2 = num_classes, buckets, l2
        self._hash: dict[str, int] = {}
        self.weight = np.zeros((buckets + 1, num_classes))  # last row: the bias

    def features(self, text: str) -> list[int]:
        """Bucket ids of the text's lower-cased unigrams and bigrams (stable across processes)."""
        ids = []
        for word in _WORD.findall(text.lower()):
            h = self._hash.get(word)
            if h is None:
                h = self._hash[word] = zlib.crc32(word.encode())
            ids.append(h)
        return [h % self.buckets for h in ids] + [(a * 1000003 ^ b) % self.buckets for a, b in zip(ids, ids[1:])]

    def matrix(self, texts: list[str]) -> sparse.csr_matrix:
        """Rows of L2-normalised feature counts, plus a constant bias column."""
        rows, cols = [], []
        for i, text in enumerate(texts):
            feats = self.features(text)
            rows += [i] * (len(feats) + 1)
            cols += feats + [self.buckets]
        x = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(texts), self.buckets + 1))
        x.sum_duplicates()
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1))).ravel()
        return sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ x

    def fit(self, texts: list[str], labels: list[int], steps: int = 300, lr: float = 0.1,
            balanced: bool = True) -> "HashedNgramClassifier":
        """Fit softmax regression (classes weighted equally when ``balanced``) by full-batch Adam."""
        x, y = self.matrix(texts), np.asarray(labels)
        used = np.unique(x.indices)  # unseen buckets keep weight 0 under L2: leave them out
        x = x[:, used]
        xt = x.T.tocsr()
        counts = np.maximum(np.bincount(y, minlength=self.num_classes), 1)
        class_w = len(y) / (self.num_classes * counts) if balanced else np.ones(self.num_classes)
        sample_w = (class_w[y] / len(y))[:, None]
        onehot = np.eye(self.num_classes)[y]
        w = np.zeros((len(used), self.num_classes))
        m, v = np.zeros_like(w), np.zeros_like(w)
        for t in range(1, steps + 1):
            grad = np.asarray(xt @ ((_softmax(np.asarray(x @ w)) - onehot) * sample_w))
            grad[:-1] += self.l2 * w[:-1]
            # Adam (beta1 0.9, beta2 0.999)
            m = 0.9 * m + 0.1 * grad
            v = 0.999 * v + 0.001 * grad ** 2
            w -= lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        self.weight[:] = 0.0
        self.weight[used] = w  # the bias column is the largest index, so w[-1] is the bias
        return self

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """Class probabilities, shape [len(texts), num_classes]."""
        if not texts:
            return np.zeros((0, self.num_classes))
        return _softmax(np.asarray(self.matrix(texts) @ self.weight))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)
