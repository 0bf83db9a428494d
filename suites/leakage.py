"""Leakage: test questions that appear in the fine-tuning data, exactly or nearly.

A test question leaks when an SFT or DPO training question is the same after SQuAD normalisation
(exact) or shares at least `threshold` of its character 5-grams (Jaccard, near-duplicate), or when
its normalised text appears inside a continued-pre-training document. A fine-tuned variant's score
on a leaked question measures memorisation, not knowledge: the report flags them and the config
can exclude them from the comparison.

Paraphrases are not leaks: the built-in domain asks trained facts in other words on purpose
(its test wordings share at most 0.6 of their 5-grams with the training wording; tested).
"""

from __future__ import annotations

from judges.exact import normalize_answer
from suites.schema import Question, TrainingSets


def _shingles(text: str, n: int = 5) -> set[str]:
    t = f" {text} "
    return {t[i : i + n] for i in range(max(1, len(t) - n + 1))}


def find_leaks(
    questions: tuple[Question, ...], training: TrainingSets, *, threshold: float = 0.8
) -> dict[str, dict]:
    """{question id: {"kind", "where", "similarity", "training_question", "training_answer"}}."""
    train: list[tuple[str, str, str]] = [(p.question, p.answer, "sft") for p in training.sft]
    train += [(p.question, p.chosen, "dpo") for p in training.preferences]
    train += [(p.question, p.answer, "feedback") for p in training.feedback]
    norm = [(normalize_answer(q), q, a, where) for q, a, where in train]
    by_text: dict[str, tuple[str, str, str]] = {}
    for n, q, a, where in norm:
        by_text.setdefault(n, (q, a, where))
    shingled = [(_shingles(n), q, a, where) for n, q, a, where in norm]
    documents = [normalize_answer(d) for d in training.documents]
    leaks: dict[str, dict] = {}
    for question in questions:
        n = normalize_answer(question.text)
        if n in by_text:
            q, a, where = by_text[n]
            leaks[question.id] = {
                "kind": "exact",
                "where": where,
                "similarity": 1.0,
                "training_question": q,
                "training_answer": a,
            }
            continue
        mine = _shingles(n)
        best: tuple[float, tuple[str, str, str] | None] = (0.0, None)
        for theirs, q, a, where in shingled:
            sim = len(mine & theirs) / len(mine | theirs)
            if sim > best[0]:
                best = (sim, (q, a, where))
        if best[1] is not None and best[0] >= threshold:
            q, a, where = best[1]
            leaks[question.id] = {
                "kind": "near",
                "where": where,
                "similarity": round(best[0], 3),
                "training_question": q,
                "training_answer": a,
            }
            continue
        if len(n) >= 20 and any(n in d for d in documents):
            leaks[question.id] = {
                "kind": "exact",
                "where": "cpt",
                "similarity": 1.0,
                "training_question": None,
                "training_answer": None,
            }
    return leaks
