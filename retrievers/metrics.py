"""Retrieval metrics against gold passages, per question and overall (binary relevance).

* recall@k: the share of a question's gold passages in its top k (as trec_eval's `recall_k`);
* hit@k: 1 if any gold passage is in the top k (ranx's `hit_rate@k`);
* MRR@10: 1 / rank of the first gold passage in the top 10, else 0;
* nDCG@10: DCG of the top 10 (gain 1 / log2(rank + 1) for a gold passage) over the ideal DCG.

A question with no gold passage has no value (None): it is counted as undetermined, not as a miss.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from retrievers.types import Hit


def question_metrics(ranked: Sequence[str], gold: Iterable[str], ks: Sequence[int] = (1, 3, 5, 10)) -> dict:
    gold = set(gold)
    names = [f"recall@{k}" for k in ks] + [f"hit@{k}" for k in ks] + ["mrr@10", "ndcg@10"]
    if not gold:
        return dict.fromkeys(names)
    out: dict[str, float | None] = {}
    for k in ks:
        found = len(gold.intersection(ranked[:k]))
        out[f"recall@{k}"] = found / len(gold)
        out[f"hit@{k}"] = float(found > 0)
    first = next((i for i, pid in enumerate(ranked[:10], 1) if pid in gold), None)
    out["mrr@10"] = 1.0 / first if first else 0.0
    dcg = sum(1.0 / math.log2(i + 1) for i, pid in enumerate(ranked[:10], 1) if pid in gold)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(gold), 10) + 1))
    out["ndcg@10"] = dcg / ideal
    return out


def evaluate(
    hits: Sequence[Sequence[Hit]], golds: Sequence[Iterable[str]], ks: Sequence[int] = (1, 3, 5, 10)
) -> tuple[list[dict], dict]:
    """(per-question metrics, overall means over questions that have gold passages)."""
    per_question = [question_metrics([h.passage_id for h in hs], g, ks) for hs, g in zip(hits, golds)]
    overall: dict[str, float | None] = {}
    for name in per_question[0] if per_question else []:
        values = [q[name] for q in per_question if q[name] is not None]
        overall[name] = sum(values) / len(values) if values else None
    overall["n"] = sum(1 for q in per_question if q["mrr@10"] is not None)
    overall["undetermined"] = len(per_question) - overall["n"]
    return per_question, overall
