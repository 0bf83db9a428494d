"""`ragvft retrieval`: compare the config's retrievers on its suite without generating anything.

For every retriever: Recall@k and hit@k over a sweep of k, MRR@10 and nDCG@10 against the gold
passages, with queries per second. Writes `runs/<run-id>-retrieval/` (retrieval.json, and
retrieval.jsonl with every question's ranked ids and scores), assembled in a temporary folder
and renamed into place.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from core.cache import digest
from harness.artifacts import load_suite, resolve_retrievers
from harness.config import BenchConfig
from retrievers.metrics import evaluate

DEFAULT_KS = (1, 3, 5, 10, 20)


def evaluate_retrievers(config: BenchConfig, ks: tuple[int, ...] = DEFAULT_KS) -> tuple[Path, dict[str, Any]]:
    ks = tuple(sorted(set(ks) | {10}))
    timings: dict[str, float] = {}
    suite = load_suite(config)
    retrievers, info = resolve_retrievers(config, suite, timings)
    queries = [q.text for q in suite.questions]
    golds = [q.gold_passage_ids for q in suite.questions]
    measured: dict[str, dict[str, Any]] = {}
    result: dict[str, Any] = {
        "suite": suite.name,
        "questions": len(queries),
        "passages": len(suite.passages),
        "ks": list(ks),
        "build_s": timings.get("retrievers_s"),
        "retrievers": measured,
    }
    per_question: list[dict] = []
    for name, retriever in retrievers.items():
        t0 = time.perf_counter()
        hits = retriever.search(queries, max(ks))
        elapsed = time.perf_counter() - t0
        rows, overall = evaluate(hits, golds, ks)
        measured[name] = {
            **info[name],
            "metrics": overall,
            "search_s": round(elapsed, 3),
            "queries_per_s": round(len(queries) / elapsed, 1) if elapsed > 0 else None,
        }
        for q, hs, m in zip(suite.questions, hits, rows, strict=True):
            per_question.append(
                {
                    "retriever": name,
                    "question_id": q.id,
                    "gold_passage_ids": list(q.gold_passage_ids),
                    "retrieved": [{"id": h.passage_id, "score": h.score} for h in hs],
                    "metrics": m,
                }
            )
    runs = Path(config.runs_dir)
    runs.mkdir(parents=True, exist_ok=True)
    run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + digest(config.model_dump(), 6) + "-retrieval"
    tmp = runs / f".{run_id}.{os.getpid()}.tmp"
    tmp.mkdir(exist_ok=False)
    (tmp / "retrieval.json").write_text(json.dumps(result, indent=2))
    with (tmp / "retrieval.jsonl").open("w") as f:
        for row in per_question:
            f.write(json.dumps(row) + "\n")
    os.rename(tmp, runs / run_id)
    return runs / run_id, result
