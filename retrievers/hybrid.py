"""Hybrid retrieval by reciprocal-rank fusion: score(p) = sum over retrievers of 1 / (k + rank),
with rank starting at 1 (Cormack, Clarke and Buettcher, 2009; k = 60 as there)."""

from __future__ import annotations

from collections.abc import Sequence

from retrievers.types import Hit, Retriever


def rrf(ranked_lists: Sequence[Sequence[Hit]], *, k: int = 60) -> list[Hit]:
    """Fuse ranked lists into one, best first; ties keep first-seen order."""
    scores: dict[str, float] = {}
    for hits in ranked_lists:
        for rank, h in enumerate(hits, 1):
            scores[h.passage_id] = scores.get(h.passage_id, 0.0) + 1.0 / (k + rank)
    order = sorted(scores, key=lambda pid: -scores[pid])  # sorted is stable: first seen wins ties
    return [Hit(pid, scores[pid]) for pid in order]


class HybridRetriever:
    """Fuses the top `depth` of each retriever with RRF and returns the top k."""

    name = "hybrid"

    def __init__(self, retrievers: Sequence[Retriever], *, rrf_k: int = 60, depth: int = 100) -> None:
        self.retrievers, self.rrf_k, self.depth = list(retrievers), rrf_k, depth

    def search(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        depth = max(k, self.depth)
        per_retriever = [r.search(queries, depth) for r in self.retrievers]
        return [rrf([lists[i] for lists in per_retriever], k=self.rrf_k)[:k] for i in range(len(queries))]
