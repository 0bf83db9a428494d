"""Scorers. Every scorer takes an answer (and what it needs) and returns a `Score` with its reason;
`SCORERS` names every metric with its kind and direction."""

from judges.exact import exact_match, label_accuracy, normalize_answer, token_f1
from judges.scorers import SCORERS, Answer, Scorer, judged, metrics_of
from judges.types import Score

__all__ = [
    "SCORERS",
    "Answer",
    "Score",
    "Scorer",
    "exact_match",
    "judged",
    "label_accuracy",
    "metrics_of",
    "normalize_answer",
    "token_f1",
]
