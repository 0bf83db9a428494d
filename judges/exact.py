"""Exact metrics with the official SQuAD v1.1 normalisation: exact match and token F1, max over gold.

`normalize_answer`, `exact_match_score` and `f1_score` follow the official evaluation script
(evaluate-v1.1.py) line for line; the tests check them against its published behaviour.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence

from judges.types import Score

_PUNCT = set(string.punctuation)


def normalize_answer(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def f1_score(prediction: str, ground_truth: str) -> float:
    pred, gold = normalize_answer(prediction).split(), normalize_answer(ground_truth).split()
    common = Counter(pred) & Counter(gold)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision, recall = num_same / len(pred), num_same / len(gold)
    return 2 * precision * recall / (precision + recall)


def exact_match_score(prediction: str, ground_truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(ground_truth))


def _best(metric: Callable[[str, str], float], prediction: str, answers: Sequence[str]) -> tuple[float, str]:
    values = [(metric(prediction, a), a) for a in answers]
    return max(values, key=lambda v: v[0])


def exact_match(prediction: str, answers: Sequence[str]) -> Score:
    """1.0 when the normalised prediction equals a normalised gold answer; the reason names it."""
    if not answers:
        return Score("em", None, "no gold answer")
    value, gold = _best(exact_match_score, prediction, answers)
    return Score("em", value, f"matches {gold!r}" if value else f"no match among {len(answers)} gold")


def contains_score(prediction: str, ground_truth: str) -> float:
    """1.0 when the normalised gold answer appears in the normalised prediction as whole words
    (BERGEN's "match", FlashRAG's "acc", on word boundaries so that "3" does not match "35")."""
    gold = normalize_answer(ground_truth)
    if not gold:  # a gold of punctuation or articles only ("%", "A"): nothing to find, so exact match
        return exact_match_score(prediction, ground_truth)
    return float(f" {gold} " in f" {normalize_answer(prediction)} ")


def answer_match(prediction: str, answers: Sequence[str]) -> Score:
    """1.0 when a gold answer is contained in the answer: what an instruct model that answers in a
    sentence ("It comes with a 35 months warranty.") gets right and exact match calls wrong."""
    if not answers:
        return Score("match", None, "no gold answer")
    value, gold = _best(contains_score, prediction, answers)
    return Score("match", value, f"contains {gold!r}" if value else f"contains none of {len(answers)} gold")


def token_f1(prediction: str, answers: Sequence[str]) -> Score:
    """Token-overlap F1 against the best-matching gold answer."""
    if not answers:
        return Score("f1", None, "no gold answer")
    value, gold = _best(f1_score, prediction, answers)
    return Score("f1", value, f"best against {gold!r}")


LABELS = ("yes", "no", "maybe")


def predicted_label(answer: str, labels: Sequence[str] = LABELS) -> str | None:
    """The label an answer gives: its first word, lower-cased without punctuation, if it is one."""
    words = normalize_answer(answer).split()
    return words[0] if words and words[0] in labels else None


def label_accuracy(answer: str, golds: Sequence[str]) -> Score:
    """1 if the answer's label is the gold label. An answer with no label is wrong, not
    undetermined: the model was asked for one and did not give it."""
    label = predicted_label(answer)
    gold = golds[0].lower() if golds else None
    return Score(
        "accuracy", float(label is not None and label == gold), f"predicted {label or 'no label'}", label
    )
