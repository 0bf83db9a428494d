"""Agreement with people: the judge's verdicts and exact match against labels domain experts gave
(`ragvft review`, then `ragvft labels import`).

A label is `{"question_id", "variant", "label", "fixed_answer"?}`: with a variant, "correct" or
"incorrect" for that variant's answer; without one (None), "valid" or "invalid" for the question
itself, optionally with a corrected gold answer. Each figure is over the answers people labelled
that the scorer decided: accuracy (share of answers where both say the same) and Cohen's kappa
(scikit-learn's) with a bootstrap 95% interval over the labelled answers. Kappa is undefined (None)
when both sides use one and the same label throughout: agreement there says nothing beyond chance.
"""

from __future__ import annotations

import warnings

import numpy as np

ANSWER_LABELS = {"correct": 1, "incorrect": 0}
QUESTION_LABELS = ("valid", "invalid")


def cohen_kappa(a: list[int], b: list[int]) -> float | None:
    """Cohen's kappa of two raters' 0/1 labels; None when it is undefined (no items, or both raters
    gave one and the same label to every item)."""
    if not a or len(set(a) | set(b)) < 2:
        return None
    from sklearn.metrics import cohen_kappa_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a resample with one label on each side: 0/0, handled below
        k = float(cohen_kappa_score(a, b))
    return None if np.isnan(k) else k


def agreement(scorer: list[int], people: list[int], *, samples: int = 2000, seed: int = 0) -> dict:
    """{n, accuracy, kappa, kappa_ci95} of paired 0/1 labels. The interval is the 2.5 and 97.5
    percentiles of kappa over bootstrap resamples of the pairs (those where kappa is defined)."""
    n = len(scorer)
    if n == 0:
        return {"n": 0, "accuracy": None, "kappa": None, "kappa_ci95": None}
    a, b = np.asarray(scorer), np.asarray(people)
    kappa = cohen_kappa(scorer, people)
    ci = None
    if kappa is not None:
        draws = bootstrap_kappas(a, b, samples=samples, seed=seed)
        if draws.size:
            lo, hi = np.percentile(draws, [2.5, 97.5])
            ci = [float(lo), float(hi)]
    return {"n": n, "accuracy": float(np.mean(a == b)), "kappa": kappa, "kappa_ci95": ci}


def bootstrap_kappas(a: np.ndarray, b: np.ndarray, *, samples: int, seed: int) -> np.ndarray:
    """Cohen's kappa of 0/1 labels on `samples` bootstrap resamples of the pairs (`binary_kappas`),
    leaving out the draws where it is undefined."""
    rng = np.random.default_rng(seed)
    out = [np.array([])]
    for start in range(0, samples, 256):  # in blocks: a resample matrix of a big suite stays small
        idx = rng.integers(0, len(a), size=(min(256, samples - start), len(a)))
        k = binary_kappas(a[idx], b[idx])
        out.append(k[~np.isnan(k)])
    return np.concatenate(out)


def binary_kappas(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cohen's kappa of each row pair of two 0/1 matrices, vectorised: scikit-learn's value (it would
    take seconds per thousand rows), NaN where undefined (one and the same label on both sides)."""
    observed = (x == y).mean(axis=1)
    px, py = x.mean(axis=1), y.mean(axis=1)
    chance = px * py + (1 - px) * (1 - py)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(chance < 1, (observed - chance) / (1 - chance), np.nan)


def _first_rows(rows: list[dict]) -> dict[tuple[str, str], dict]:
    """{(question id, variant): row}: with several training seeds, the first seed's row, the answer
    the review page showed."""
    out: dict[tuple[str, str], dict] = {}
    for r in rows:
        out.setdefault((r["question_id"], r["variant"]), r)
    return out


def _value(row: dict, metric: str) -> float | None:
    score = row["scores"].get(metric)
    return score.get("value") if score else None


def human_agreement(
    rows: list[dict],
    labels: list[dict],
    *,
    exclude_invalid: bool = False,
    samples: int = 2000,
    seed: int = 0,
) -> dict:
    """Judge vs people and exact match vs people, overall and per variant, and the answers where the
    judge and the people disagree. `exclude_invalid` leaves out questions people marked invalid."""
    questions = {lab["question_id"]: lab for lab in labels if lab.get("variant") is None}
    invalid = sorted(q for q, lab in questions.items() if lab["label"] == "invalid")
    answers = {
        (lab["question_id"], lab["variant"]): ANSWER_LABELS[lab["label"]]
        for lab in labels
        if lab.get("variant") is not None
    }
    by_key = _first_rows(rows)
    compared = {
        key: person
        for key, person in answers.items()
        if key in by_key and not (exclude_invalid and key[0] in invalid)
    }
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    out: dict = {
        "labelled_answers": len(answers),
        "labelled_questions": len(questions),
        "compared_answers": len(compared),
        "invalid_questions": invalid,
        "excluded_invalid": bool(exclude_invalid),
        "fixed_answers": {q: lab["fixed_answer"] for q, lab in questions.items() if lab.get("fixed_answer")},
    }
    has_judge = any("judge" in r["scores"] for r in rows)
    for metric in ("judge", "em"):
        if metric == "judge" and not has_judge:
            out[metric] = None
            continue
        out[metric] = _versus(metric, compared, by_key, variants, samples=samples, seed=seed)
    out["disagreements"] = (
        [
            _disagreement(by_key[key], person)
            for key, person in compared.items()
            if _differs(by_key[key], person)
        ]
        if has_judge
        else []
    )
    return out


def _versus(
    metric: str, compared: dict, by_key: dict, variants: list[str], *, samples: int, seed: int
) -> dict:
    """The agreement of one 0/1 metric with people, overall and per variant; answers the metric left
    undetermined are counted apart, never as a disagreement."""

    def figures(keys: list) -> dict:
        decided = [(k, _value(by_key[k], metric)) for k in keys]
        pairs = [(int(v >= 0.5), compared[k]) for k, v in decided if v is not None]
        result = agreement([p[0] for p in pairs], [p[1] for p in pairs], samples=samples, seed=seed)
        return result | {"undetermined": len(decided) - len(pairs)}

    keys = [k for k in compared if metric in by_key[k]["scores"]]
    by_variant = {v: figures([k for k in keys if k[1] == v]) for v in variants}
    return {
        "overall": figures(keys),
        "by_variant": {v: f for v, f in by_variant.items() if f["n"] or f["undetermined"]},
    }


def _differs(row: dict, person: int) -> bool:
    verdict = _value(row, "judge")
    return verdict is not None and int(verdict >= 0.5) != person


def _disagreement(row: dict, person: int) -> dict:
    score = row["scores"]["judge"]
    return {
        "question_id": row["question_id"],
        "variant": row["variant"],
        "question": row["question"],
        "gold_answers": row["gold_answers"],
        "answer": row["answer"],
        "judge": "correct" if score["value"] >= 0.5 else "incorrect",
        "people": "correct" if person else "incorrect",
        "em": _value(row, "em"),
        "reason": score.get("reason") or "",
    }
