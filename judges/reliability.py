"""How far the judge can be trusted, measured on every run from the rows it judged.

* position-swap consistency: of the pairs judged in both orders, the share whose verdicts agree;
* agreement with exact match (Cohen's kappa, scikit-learn's) on the distinct (question, answer)
  pairs where exact match is decisive: an exact match (surely right) or no overlapping token at all
  (surely wrong);
* pairwise agreement with exact match, on the pairs where exact match is decisive for both answers:
  the result it implies (the right answer wins; two right or two wrong ones tie), overall and on the
  pairs it separates. A judge that ties whenever unsure keeps its consistency and loses here;
* undetermined rate: replies that did not parse even when asked again, or calls that failed;
* length bias: of the decided pairs, how often the longer answer won, and the mean length (in words)
  of winners minus losers. An unbiased judge on answers of similar quality sits near 0.5 and 0.
"""

from __future__ import annotations

from statistics import mean

# Below these, the report and the console say not to decide on the judge's scores.
# A judge to decide on agrees with exact match where it is sure ("substantial" agreement, Landis and
# Koch: kappa 0.6) and keeps its pairwise verdict when the answers swap places (0.9 of pairs).
MIN_KAPPA_WITH_EM = 0.6
MIN_POSITION_CONSISTENCY = 0.9  # pairs whose verdict survives swapping the answers' positions


def reliability(rows: list[dict]) -> dict:
    """`rows` carry `scores` (em, f1, judge, pairwise...) and `judge` details (see harness.run.judging).
    `warnings` lists, in words, why the judge's scores should not be decided on (empty: no reason)."""
    out: dict = {}
    graded = [r for r in rows if "judge" in r["scores"]]
    if graded:
        out["grade"] = _grade_reliability(graded)
    paired = [r for r in rows if (r.get("judge") or {}).get("pairwise")]
    if paired:
        out["pairwise"] = _pairwise_reliability([r["judge"]["pairwise"] for r in paired])
        out["pairwise"] |= _pairwise_agreement(paired, rows)
    out["warnings"] = trust_warnings(out)
    return out


def trust_warnings(info: dict) -> list[str]:
    """Why not to decide on this judge's scores, one phrase per reason."""
    out = []
    grade = info.get("grade") or {}
    # an answer in a sentence is never an exact match: where the run scores `match`, the judge is held to it
    metric, kappa = "match", grade.get("kappa_with_match")
    if kappa is None:
        metric, kappa = "exact match", grade.get("kappa_with_em")
    if kappa is not None and kappa < MIN_KAPPA_WITH_EM:
        out.append(f"its verdicts agree with {metric} only κ {kappa:.2f} where {metric} is sure")
    pairwise = info.get("pairwise") or {}
    consistency = pairwise.get("position_consistency")
    if consistency is not None and consistency < MIN_POSITION_CONSISTENCY:
        out.append(f"its pairwise verdicts follow the answers' positions (consistency {consistency:.2f})")
    return out


def _grade_reliability(rows: list[dict]) -> dict:
    undetermined = sum(r["scores"]["judge"]["value"] is None for r in rows)
    out = {"n": len(rows), "undetermined": undetermined, "undetermined_rate": undetermined / len(rows)}
    em = _agreement(rows, "em")
    out |= {"decisive_n": em["n"], "agreement_with_em": em["agreement"], "kappa_with_em": em["kappa"]}
    if any(_value(r, "match") is not None for r in rows):  # an instruct model's answers in sentences
        m = _agreement(rows, "match")
        out |= {
            "match_decisive_n": m["n"],
            "agreement_with_match": m["agreement"],
            "kappa_with_match": m["kappa"],
        }
    return out


def _agreement(rows: list[dict], metric: str) -> dict:
    """The judge's verdicts against `metric` where it is sure: {"n", "agreement", "kappa"}."""
    from sklearn.metrics import cohen_kappa_score

    judge, exact = [], []
    # One vote per distinct (question, answer): variants that gave the same answer were judged on the
    # same prompt, and counting it once per variant would weigh common answers several times.
    seen: set[tuple] = set()
    for r in rows:
        if (r["question_id"], r["answer"]) in seen:
            continue
        seen.add((r["question_id"], r["answer"]))
        verdict, decisive = r["scores"]["judge"]["value"], _decisive(r, metric)
        if verdict is None or decisive is None:
            continue  # undetermined, or a partial overlap: the metric says nothing sure
        judge.append(int(verdict))
        exact.append(decisive)
    kappa = None
    if judge and len(set(judge) | set(exact)) > 1:
        kappa = float(cohen_kappa_score(exact, judge))
    agreement = sum(a == b for a, b in zip(judge, exact, strict=True)) / len(judge) if judge else None
    return {"n": len(judge), "agreement": agreement, "kappa": kappa}


def _decisive(row: dict, metric: str = "em") -> int | None:
    """1 for a hit of `metric` (exact match, or `match`: the gold answer contained), 0 for an answer
    without a token in common with the gold, else None."""
    hit, f1 = _value(row, metric), _value(row, "f1")
    return 1 if hit == 1.0 else 0 if hit is not None and f1 == 0.0 else None


def _pairwise_agreement(paired: list[dict], rows: list[dict]) -> dict:
    """How often the pairwise result is the one exact match implies, where it is decisive for both
    answers: overall, and on the pairs whose answers it tells apart (one right, one wrong)."""
    by = {(r.get("variant"), r.get("question_id")): r for r in rows}
    sure = []  # (the result exact match implies, the judge's)
    for r in paired:
        p = r["judge"]["pairwise"]
        other = by.get((p.get("against"), r.get("question_id")))
        if other is None or p.get("identical") or p.get("result") is None:
            continue
        mine, theirs = _decisive(r), _decisive(other)
        if mine is not None and theirs is not None:
            sure.append(("win" if mine > theirs else "loss" if mine < theirs else "tie", p["result"]))
    split = [(want, got) for want, got in sure if want != "tie"]
    return {
        "em_decisive_n": len(sure),
        "agreement_with_em": _share(sure),
        "em_separated_n": len(split),
        "agreement_where_em_separates": _share(split),
    }


def _share(pairs: list[tuple]) -> float | None:
    return sum(a == b for a, b in pairs) / len(pairs) if pairs else None


def _value(row: dict, metric: str) -> float | None:
    """The row's value of `metric`; None when undetermined or not scored."""
    score = row["scores"].get(metric)
    return score.get("value") if score else None


def _pairwise_reliability(pairs: list[dict]) -> dict:
    judged = [p for p in pairs if not p.get("identical")]
    both = [p for p in judged if p.get("consistent") is not None]
    decided = [p for p in both if p["result"] in ("win", "loss")]
    longer_won, diffs = 0, []
    for p in decided:
        mine, theirs = len(p["answer"].split()), len(p["against_answer"].split())
        win, lose = (mine, theirs) if p["result"] == "win" else (theirs, mine)
        diffs.append(win - lose)
        longer_won += win > lose
    unequal = sum(d != 0 for d in diffs)
    undetermined = len(judged) - len(both)
    counts = {k: sum(p["result"] == k for p in pairs) for k in ("win", "tie", "loss")}
    return {
        "n": len(pairs),
        "judged": len(judged),
        "identical_answers": len(pairs) - len(judged),
        "undetermined": undetermined,
        "undetermined_rate": undetermined / len(judged) if judged else None,
        "position_consistency": (sum(p["consistent"] for p in both) / len(both)) if both else None,
        "consistent_n": len(both),
        "results": counts,
        "decided_n": len(decided),
        "longer_answer_won": (longer_won / unequal) if unequal else None,
        "length_diff_words": mean(diffs) if diffs else None,
    }
