"""Result rows (one per variant and question, as `results.jsonl` holds them) and the adapter check."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from harness.run.plan import Item
from harness.run.score import score_key
from reports.records import ResultRow
from retrievers.metrics import prompt_metrics

if TYPE_CHECKING:
    from harness.config import BenchConfig
    from suites.schema import Passage


def make_row(
    p: Item,
    g: dict[str, Any],
    scores: dict[str, Any],
    passages: dict[str, Passage],
    metrics: Sequence[str],
    *,
    leaked: bool,
) -> ResultRow:
    """The row of item `p`: its generation `g`, its scores (by score key), and whether its question
    leaked into the training data."""
    q = p.question
    retrieval = None
    if p.ranked is not None and p.hits is not None and q.gold_passage_ids:  # hits: the ranked top k
        retrieval = prompt_metrics([h.passage_id for h in p.ranked], len(p.hits), q.gold_passage_ids)
    return {
        "variant": p.variant,
        "question_id": q.id,
        "question": q.text,
        "category": q.category,
        "slice": q.slice,
        "gold_answers": list(q.answers),
        "gold_passage_ids": list(q.gold_passage_ids),
        # their texts (None: not in the corpus), so a run folder alone is enough to review (`ragvft review`)
        "gold_passage_text": [passages[i].text if i in passages else None for i in q.gold_passage_ids],
        "prompt": p.prompt,
        "answer": g["answer"],
        "retrieved": None if p.hits is None else [{"id": h.passage_id, "score": h.score} for h in p.hits],
        "retrieved_text": None if p.hits is None else [passages[h.passage_id].text for h in p.hits],
        "retrieval": retrieval,
        "scores": {m: scores[score_key(p, m)] for m in metrics},
        "tokens_in": g["tokens_in"],
        "tokens_out": g["tokens_out"],
        "latency_s": g["latency_s"],
        "adapter": p.adapter,
        "seed": p.seed,
        "generation_key": p.key,
        "leaked": leaked,
    }


def adapter_checks(rows: list[ResultRow], config: BenchConfig) -> dict[str, dict[str, Any] | None]:
    """For each adapter variant, compare its answers with those of the variant that has the same
    retrieval and no adapter: identical on every question means the adapter did nothing (one that
    silently failed to load, or a no-op). Flagged in the report. With several training seeds, each
    seed's adapter is checked and the most identical one is reported."""
    answers: dict[tuple[str, int | None], dict[str, str]] = {}
    for r in rows:
        answers.setdefault((r["variant"], r.get("seed")), {})[r["question_id"]] = r["answer"]
    plain = {
        (v.retriever, v.k if v.retriever else None): v.name for v in config.variants if not v.has_adapter
    }
    checks: dict[str, dict[str, Any] | None] = {}
    for v in config.variants:
        if not v.has_adapter:
            continue
        twin = plain.get((v.retriever, v.k if v.retriever else None))
        if twin is None:
            checks[v.name] = {"compared_with": None, "identical": None, "n": None, "inert": None}
            continue
        theirs = answers[twin, None]
        worst: dict[str, Any] | None = None
        for (name, seed), mine in answers.items():
            if name != v.name:
                continue
            same = sum(mine[q] == theirs.get(q) for q in mine)
            check = {"compared_with": twin, "identical": same, "n": len(mine), "inert": same == len(mine)}
            if seed is not None:
                check["seed"] = seed
            if worst is None or same > worst["identical"]:
                worst = check
        checks[v.name] = worst
    return checks
