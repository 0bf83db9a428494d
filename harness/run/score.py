"""Answer scorers (judges.SCORERS with source "answer") over the plan, every score a store row keyed by
its generation, the scorer and its version, and the gold answers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from core.cache import digest
from harness.run.plan import Item
from harness.store import Store
from judges import SCORERS, Answer

if TYPE_CHECKING:
    from suites.schema import Passage


def score_key(p: Item, metric: str) -> str:
    return digest(
        {
            "generation": p.key,
            "metric": metric,
            "scorer": SCORERS[metric].version,
            "gold": p.question.answers,
        },
        32,
    )


def score(
    store: Store,
    plan: list[Item],
    generations: dict[str, dict[str, Any]],
    metrics: Sequence[str],
    passages: dict[str, Passage],
) -> tuple[dict[str, dict[str, Any]], int]:
    """Every (item, metric) score from the store, computing and committing the missing ones; returns
    ({score key: score}, how many were computed)."""
    keys = {(p.key, p.question.id, m): score_key(p, m) for p in plan for m in metrics}
    found = store.scores(keys.values())
    new: dict[str, dict[str, Any]] = {}
    for p in plan:
        for m in metrics:
            k = keys[p.key, p.question.id, m]
            if k in found or k in new:
                continue
            q = p.question
            answer = Answer(
                question=q.text,
                answer=generations[p.key]["answer"],
                golds=tuple(q.answers),
                passages=None if p.hits is None else tuple(passages[h.passage_id].text for h in p.hits),
                gold_passages=tuple(passages[i].text for i in q.gold_passage_ids if i in passages),
            )
            scorer = SCORERS[m]
            if scorer.score is None:  # never: a config's `metrics` are answer scorers (checked at load)
                raise ValueError(f"{m} is not scored from the answer")
            s = scorer.score(answer)
            value, reason = s.value, s.reason
            if scorer.corpus_level:  # no per-question value: the row keeps what the corpus score reads
                value, reason = (
                    None,
                    f"{reason}; {m} is a score of the whole set of answers (see the summary)",
                )
            new[k] = {"value": value, "reason": reason} | ({"label": s.label} if s.label is not None else {})
    if new:
        store.put_scores(new.items())
    return found | new, len(new)
