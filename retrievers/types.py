from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hit:
    """One retrieved passage: its id and the retriever's score (higher is better)."""

    passage_id: str
    score: float
