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

from core.values import determined
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


def prompt_metrics(ranked: Sequence[str], k: int, gold: Iterable[str]) -> dict:
    """One retrieval-augmented answer's retrieval metrics: at `k`, the passages its prompt read (the
    first k of `ranked`), and at 10, and whether a gold passage was in the prompt."""
    gold = set(gold)
    m = question_metrics(ranked, gold, ks=(k, 10))
    return {
        "k": k,
        "recall@k": m[f"recall@{k}"],
        "hit@k": m[f"hit@{k}"],
        "recall@10": m["recall@10"],
        "hit@10": m["hit@10"],
        "mrr@10": m["mrr@10"],
        "ndcg@10": m["ndcg@10"],
        "gold_in_prompt": bool(gold.intersection(ranked[:k])),
    }


def means(per_question: Sequence[dict], skip: Iterable[str] = ()) -> dict[str, float | None]:
    """The mean of every metric over the questions that have a value for it (None values are
    undetermined, not zero); names in `skip` are left out."""
    skip = set(skip)
    names = [n for n in (per_question[0] if per_question else {}) if n not in skip]
    out: dict[str, float | None] = {}
    for name in names:
        values = [q[name] for q in per_question if determined(q.get(name))]
        out[name] = sum(values) / len(values) if values else None
    return out


def evaluate(
    hits: Sequence[Sequence[Hit]], golds: Sequence[Iterable[str]], ks: Sequence[int] = (1, 3, 5, 10)
) -> tuple[list[dict], dict]:
    """(per-question metrics, overall means over questions that have gold passages)."""
    per_question = [
        question_metrics([h.passage_id for h in hs], g, ks) for hs, g in zip(hits, golds, strict=False)
    ]
    overall: dict = means(per_question)
    overall["n"] = sum(1 for q in per_question if q["mrr@10"] is not None)
    overall["undetermined"] = len(per_question) - overall["n"]
    return per_question, overall
