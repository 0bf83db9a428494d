"""The judge stage of a bench: LLM-as-judge grading and pairwise comparison, ragas evals, and the
judge's reliability, added to the result rows. The judge itself (backend and call cache) is
`harness.run.judge_backend`.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from core.progress import progress_bar
from harness.run.judge_backend import CachedJudge
from judges.llm_judge import (
    PAIRWISE_VALUE,
    ask,
    combine_orders,
    grade_prompt,
    grade_scores,
    pairwise_prompt,
    parse_grade,
    parse_preference,
)
from judges.reliability import reliability
from judges.types import Score
from reports.records import ResultRow, ScoreRecord, plain

if TYPE_CHECKING:
    from harness.config import BenchConfig
    from suites.schema import Passage


def run_judge(
    config: BenchConfig,
    rows: list[ResultRow],
    judge: CachedJudge,
    *,
    passages: dict[str, Passage],
    encoder: Any = None,
    timings: dict[str, float],
) -> dict[str, Any]:
    """Add the judge's scores to `rows` (in place) and return the reliability and cache figures."""
    j = config.judge
    if j is None:
        raise ValueError("the config has no judge")
    t0 = time.time()
    planted: dict[str, Any] = {}
    if "grade" in j.modes:
        _grade(rows, judge)
        planted = _planted(rows, judge)
    if "pairwise" in j.modes:
        _pairwise(rows, judge, config.baseline)
    if j.ragas:
        # an in-process judge answers the calls in flight as one batch (CachedJudge.complete_one)
        concurrency = j.http.concurrency if j.http else max(config.generation.batch_size, 4)
        _ragas(rows, judge, j.ragas, passages, encoder, concurrency=concurrency, threshold=j.ragas_threshold)
    timings["judge_s"] = round(time.time() - t0, 2)
    return {
        "judge": judge.identity,
        "modes": list(j.modes),
        "metrics": config.judge_metrics(),
        "ragas": list(j.ragas),
        "calls_made": judge.asked,
        "calls_cached": judge.cached,
        "calls_failed": len(judge.errors),
        **reliability(plain(rows)),
    } | ({"planted": planted} if planted else {})


def _planted(rows: list[ResultRow], judge: CachedJudge) -> dict[str, Any]:
    """Restatements of the gold answer that exact match rejects (currency written out, units, word
    order: `harness.builtin.restate`), one a question in turn through its templates, graded by the
    judge: the share it accepts. Only for questions of the answer kinds it knows (the built-in
    domain's); {} for any other suite."""
    from harness.builtin.restate import planted

    questions = {r["question_id"]: r for r in rows}
    items = []
    for i, r in enumerate(questions.values()):
        shown = planted(r.get("category") or "", r["gold_answers"]) if r["gold_answers"] else []
        if shown:
            items.append((r, shown[i % len(shown)]))
    if not items:
        return {}
    prompts = [grade_prompt(r["question"], r["gold_answers"], a) for r, a in items]
    with progress_bar("judging: planted restatements", len(prompts)) as advance:
        answers = ask(
            lambda ps, first: judge.complete(ps, progress=advance if first else None), prompts, parse_grade
        )
    verdicts = [parsed.verdict if parsed else None for parsed, _, _ in answers]
    decided = [v for v in verdicts if v is not None]
    missed = [
        {"question": r["question"], "answer": a}
        for (r, a), v in zip(items, verdicts, strict=True)
        if v == "incorrect"
    ]
    return {
        "n": len(items),
        "accepted": round(decided.count("correct") / len(decided), 4) if decided else None,
        "undetermined": len(items) - len(decided),
        "examples_rejected": missed[:5],
    }


def _put(row: ResultRow, scores: dict[str, Score]) -> None:
    for name, s in scores.items():
        record: ScoreRecord = {"value": s.value, "reason": s.reason}
        if s.label:
            record["label"] = s.label
        row["scores"][name] = record


def _grade(rows: list[ResultRow], judge: CachedJudge) -> None:
    prompts = [grade_prompt(r["question"], r["gold_answers"], r["answer"]) for r in rows]
    unique = list(dict.fromkeys(prompts))
    with progress_bar("judging: grade", len(unique)) as advance:
        answers = ask(
            lambda ps, first: judge.complete(ps, progress=advance if first else None), unique, parse_grade
        )
    by_prompt = dict(zip(unique, answers, strict=True))
    for r, p in zip(rows, prompts, strict=True):
        parsed, raw, attempts = by_prompt[p]
        _put(r, grade_scores(parsed, raw, judge.errors.get(p)))
        r.setdefault("judge", {})["grade"] = {"raw": raw, "attempts": attempts} | (
            asdict(parsed) if parsed else {}
        )


def _pairwise(rows: list[ResultRow], judge: CachedJudge, baseline: str) -> None:
    """Each non-baseline row against the baseline variant's answer to the same question, both orders."""
    theirs = {r["question_id"]: r for r in rows if r["variant"] == baseline}
    todo: list[tuple[ResultRow, ResultRow]] = []
    prompts: list[str] = []
    for r in rows:
        other = theirs.get(r["question_id"])
        if r["variant"] == baseline or other is None:
            continue
        todo.append((r, other))
        if r["answer"] != other["answer"]:
            q, gold = r["question"], r["gold_answers"]
            prompts += [pairwise_prompt(q, gold, r["answer"], other["answer"])]
            prompts += [pairwise_prompt(q, gold, other["answer"], r["answer"])]
    unique = list(dict.fromkeys(prompts))
    with progress_bar("judging: pairwise", len(unique)) as advance:
        answers = dict(
            zip(
                unique,
                ask(
                    lambda ps, first: judge.complete(
                        ps, progress=advance if first else None, mode="pairwise"
                    ),
                    unique,
                    parse_preference,
                ),
                strict=True,
            )
        )
    for r, other in todo:
        detail, result, reason = _verdict(r, other, answers, baseline)
        value = PAIRWISE_VALUE[result] if result else None
        _put(r, {"pairwise": Score("pairwise", value, reason, result)})
        r.setdefault("judge", {})["pairwise"] = detail


Asked = tuple[Any, str | None, int]  # a prompt's (parsed Preference or None, raw reply, attempts)


def _verdict(
    r: ResultRow, other: ResultRow, answers: dict[str, Asked], baseline: str
) -> tuple[dict[str, Any], str | None, str]:
    """Row `r` against the baseline's row `other` from the judge's `answers` in both orders: what the
    row records of it, the result ("win", "loss", "tie"; None: undetermined), and the reason."""
    detail: dict[str, Any] = {"against": baseline, "answer": r["answer"], "against_answer": other["answer"]}
    result: str | None
    consistent: bool | None
    if r["answer"] == other["answer"]:
        result, consistent, reason = "tie", None, f"same answer as {baseline}: a tie, not asked"
        detail["identical"] = True
    else:
        q, gold = r["question"], r["gold_answers"]
        ab = answers[pairwise_prompt(q, gold, r["answer"], other["answer"])]
        ba = answers[pairwise_prompt(q, gold, other["answer"], r["answer"])]
        result, consistent = combine_orders(ab[0], ba[0])
        detail |= {
            "ab": ab[0].winner if ab[0] else None,
            "ba": ba[0].winner if ba[0] else None,
            "rationale_ab": ab[0].rationale if ab[0] else ab[1],
            "rationale_ba": ba[0].rationale if ba[0] else ba[1],
        }
        if result is None:
            reason = "undetermined: " + ("unparseable judge output" if ab[1] and ba[1] else "call failed")
        elif consistent:
            reason = f"{result} against {baseline} in both orders: {detail['rationale_ab']}"
        else:
            reason = f"the two orders disagree ({detail['ab']} then {detail['ba']}): counted as a tie"
    detail |= {"result": result, "consistent": consistent}
    return detail, result, reason


def _ragas(
    rows: list[ResultRow],
    judge: CachedJudge,
    names: list[str],
    passages: dict[str, Passage],
    encoder: Any,
    *,
    concurrency: int,
    threshold: float,
) -> None:
    """ragas scores for the rows that read retrieved passages (RAG variants) only."""
    from judges.reference_free import ragas_scores

    rag = [r for r in rows if r.get("retrieved_text") is not None]
    items = [
        {
            "question": r["question"],
            "answer": r["answer"],
            "contexts": r["retrieved_text"],
            "reference": r["gold_answers"][0] if r["gold_answers"] else "",
            "reference_contexts": [passages[i].text for i in r["gold_passage_ids"] if i in passages],
        }
        for r in rag
    ]
    with progress_bar("judging: ragas", len(items) * len(names)) as advance:
        scored = ragas_scores(
            items,
            names,
            complete=judge.complete_one,
            encoder=encoder,
            concurrency=concurrency,
            threshold=threshold,
            progress=advance,
        )
    for r, scores in zip(rag, scored, strict=True):
        _put(r, scores)
