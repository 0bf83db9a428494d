"""Scorers. Every scorer takes an answer (and what it needs) and returns a `Score` with its reason."""

from judges.exact import exact_match, label_accuracy, normalize_answer, token_f1
from judges.types import Score

__all__ = ["Score", "exact_match", "label_accuracy", "normalize_answer", "token_f1"]
