from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Hit:
    """One retrieved passage: its id and the retriever's score (higher is better)."""

    passage_id: str
    score: float


class Retriever(Protocol):
    """What every retriever answers: per query, its top `k` passages, best first."""

    def search(self, queries: Sequence[str], k: int) -> list[list[Hit]]: ...
