"""Knowledge attribution: where a retrieval-augmented variant's answers come from. Each such variant is
compared, question by question, with its closed-book twin (the variant with the same adapter, or none,
and no retriever): of its right answers, how many the twin also got right (from memory) and how many
only with the passage (from context); of its wrong answers, how many the twin got right (the passage
misled it). Right means a full score on a 0/1 metric (the decision's, when it is one)."""

from __future__ import annotations

from collections import defaultdict

from judges import SCORERS
from reports.config import RunConfig

PARTS = ("right", "from_memory", "from_context", "wrong", "misled")


def knowledge_attribution(rows: list[dict], config: RunConfig) -> dict:
    """{rag variant: {"closed_book": twin, "metric", "n", right/from_memory/from_context/wrong/misled
    counts, "by_slice": {slice: the same counts}}} for every retrieval variant whose twin is in the run;
    {} when the run has no exact binary metric. With several training seeds, each question's answer is
    the first seed's (as the report's questions)."""
    first = [config.decision_metric(), *config.metrics]  # the decision's metric, or the first 0/1 one
    metric = next(
        (m for m in first if m and SCORERS[m].kind == "binary" and not SCORERS[m].corpus_level), None
    )
    if metric is None:
        return {}
    right: dict[str, dict[str, bool]] = defaultdict(dict)
    slices: dict[str, str] = {}
    for r in rows:
        score = r["scores"].get(metric)
        if score is None or score["value"] is None or r["question_id"] in right[r["variant"]]:
            continue  # (a later training seed's answer to a question already seen)
        right[r["variant"]][r["question_id"]] = score["value"] >= 1
        slices[r["question_id"]] = r.get("slice") or ""
    closed = {(v.adapter, v.adapter_path): v.name for v in config.variants if v.retriever is None}
    out = {}
    for v in config.variants:
        twin = closed.get((v.adapter, v.adapter_path))
        if v.retriever is None or twin is None or not right[v.name]:
            continue
        counts = {"all": dict.fromkeys(PARTS, 0)}
        for q, ok in right[v.name].items():
            memory = right[twin].get(q)
            if memory is None:
                continue
            for group in ("all", slices[q]) if slices[q] else ("all",):
                c = counts.setdefault(group, dict.fromkeys(PARTS, 0))
                c["right" if ok else "wrong"] += 1
                if ok:
                    c["from_memory" if memory else "from_context"] += 1
                elif memory:
                    c["misled"] += 1
        whole = counts.pop("all")
        out[v.name] = {
            "closed_book": twin,
            "metric": metric,
            "n": whole["right"] + whole["wrong"],
            **whole,
            "by_slice": {s: c | {"n": c["right"] + c["wrong"]} for s, c in sorted(counts.items())},
        }
    return out
