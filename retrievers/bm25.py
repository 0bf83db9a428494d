"""BM25 over a list of passages, through rank-bm25's `BM25Okapi`."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from rank_bm25 import BM25Okapi

from retrievers.types import Hit
from suites.schema import Passage

_TOKEN = re.compile(r"\w+")


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens: the reference tokenisation of ../shared/data/README.md."""
    return _TOKEN.findall(text.lower())


class BM25Retriever:
    """`search(queries, k)` returns, per query, the top-k passages by BM25 score, best first.

    Ties are broken by corpus order so that results are deterministic.
    """

    name = "bm25"

    def __init__(self, passages: Sequence[Passage], *, k1: float = 1.5, b: float = 0.75):
        self.ids = [p.id for p in passages]
        self.index = BM25Okapi([tokenize(p.text) for p in passages], k1=k1, b=b)

    def search(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        out = []
        for query in queries:
            scores = self.index.get_scores(tokenize(query))
            top = np.argsort(-scores, kind="stable")[:k]
            out.append([Hit(self.ids[i], float(scores[i])) for i in top])
        return out
