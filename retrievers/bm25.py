"""BM25 over a list of passages, through rank-bm25's `BM25Okapi` (the reference) or bm25s.

Both use the same tokenisation (lower-cased `\\w+` tokens, as in ../shared/data/README.md).

* ``rank-bm25``: Okapi BM25, idf = ln((N - n + 0.5) / (n + 0.5)) with rank-bm25's floor for
  negative idf, scored query by query in Python.
* ``bm25s``: Lucene's BM25, idf = ln(1 + (N - n + 0.5) / (n + 0.5)), scored from a sparse
  matrix precomputed at indexing. It ranks the same way for almost every query, and is faster by
  two orders of magnitude at 35k chunks (bench/retrievers.py measures it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from retrievers.types import Hit
from suites.schema import Passage

_TOKEN = re.compile(r"\w+")
BACKENDS = ("rank-bm25", "bm25s")


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens: the reference tokenisation of ../shared/data/README.md."""
    return _TOKEN.findall(text.lower())


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indexes of the k best scores, best first; ties broken by corpus order (deterministic)."""
    k = min(k, scores.size)
    if k < scores.size:
        part = np.argpartition(-scores, k - 1)[:k]
        cut = scores[part].min()
        part = np.flatnonzero(scores >= cut)  # keep every tie at the cut, then order stably
    else:
        part = np.arange(scores.size)
    order = np.lexsort((part, -scores[part]))
    return part[order][:k]


class BM25Retriever:
    """`search(queries, k)` returns, per query, the top-k passages by BM25 score, best first."""

    name = "bm25"

    def __init__(
        self, passages: Sequence[Passage], *, k1: float = 1.5, b: float = 0.75, backend: str = "rank-bm25"
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown BM25 backend {backend!r} (one of {BACKENDS})")
        self.ids = [p.id for p in passages]
        self.backend = backend
        corpus = [tokenize(p.text) for p in passages]
        if backend == "rank-bm25":
            from rank_bm25 import BM25Okapi

            self.index = BM25Okapi(corpus, k1=k1, b=b)
        else:
            import bm25s

            self.index = bm25s.BM25(k1=k1, b=b, method="lucene")
            self.index.index(corpus, show_progress=False)
            self.vocab = self.index.vocab_dict

    def scores(self, query: str) -> np.ndarray:
        """The BM25 score of every passage for `query`, in corpus order."""
        tokens = tokenize(query)
        if self.backend == "rank-bm25":
            return np.asarray(self.index.get_scores(tokens), dtype=np.float64)
        ids = [self.vocab[t] for t in tokens if t in self.vocab]
        if not ids:
            return np.zeros(len(self.ids))
        return np.asarray(self.index.get_scores(ids), dtype=np.float64)

    def search(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        out = []
        for query in queries:
            s = self.scores(query)
            out.append([Hit(self.ids[i], float(s[i])) for i in _top(s, k)])
        return out
