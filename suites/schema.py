"""The suite: what every variant is asked, what it may retrieve, and what it may be trained on.

Plain dataclasses, passed between stages. A suite is content-addressed by `Suite.digest()` so that
artifacts and result rows built from it can be keyed by exactly what they depend on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from core.cache import digest


@dataclass(frozen=True)
class Passage:
    """A retrievable unit of the corpus. A chunk of a longer document keeps the document's id in
    `source` and its character offsets `[start, end)` in that document."""

    id: str
    text: str
    source: str = ""
    start: int | None = None
    end: int | None = None


@dataclass(frozen=True)
class Question:
    """A test question. `answers` are the gold answers (any one is right); `gold_passage_ids` the
    passages that contain the answer; `category` groups rows in the report; `slice` (optional) says
    where the knowledge lives, e.g. ``trained`` (in fine-tuning data) or ``corpus_only``."""

    id: str
    text: str
    answers: tuple[str, ...]
    gold_passage_ids: tuple[str, ...] = ()
    category: str = ""
    slice: str = ""


@dataclass(frozen=True)
class QAPair:
    """A supervised fine-tuning example: a question in training wording and its answer. `passage_ids`
    (optional) name the corpus passages that hold the answer: what a method that trains with passages
    in the prompt (RAFT-style, gold among distractors) puts there."""

    question: str
    answer: str
    fact_id: str = ""
    passage_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class PreferencePair:
    """A DPO example: the correct answer is chosen, a plausible wrong one rejected."""

    question: str
    chosen: str
    rejected: str
    fact_id: str = ""


@dataclass(frozen=True)
class Feedback:
    """Unpaired feedback (KTO-style): one answer to a question, marked desirable or not."""

    question: str
    answer: str
    desirable: bool
    fact_id: str = ""


@dataclass(frozen=True)
class TrainingSets:
    """What variants may be trained on. `retrieval` pairs (query, passage text) train a built-in
    embedder; they never use a test question's wording.

    Every set is optional and a loader fills only what its data has: a training method builds its own
    rows from whatever sets it needs (KTO can read `feedback`, or split `preferences` into a desirable
    and an undesirable answer; a RAFT-style method reads `sft` with its `passage_ids` and the corpus).
    """

    sft: tuple[QAPair, ...] = ()
    preferences: tuple[PreferencePair, ...] = ()
    documents: tuple[str, ...] = ()
    retrieval: tuple[tuple[str, str], ...] = ()
    feedback: tuple[Feedback, ...] = ()


@dataclass(frozen=True)
class Suite:
    name: str
    passages: tuple[Passage, ...]
    questions: tuple[Question, ...]
    training: TrainingSets = field(default_factory=TrainingSets)

    def digest(self) -> str:
        """A hash of the whole suite's content (corpus, questions, training sets)."""
        return digest(asdict(self))

    def corpus_digest(self) -> str:
        """A hash of the corpus alone (passage ids and texts): what indexes and the gate compare."""
        return corpus_digest(self.passages)

    def passage_map(self) -> dict[str, Passage]:
        return {p.id: p for p in self.passages}


def corpus_digest(passages: Iterable[Passage]) -> str:
    """A hash of passages' ids and texts, in order."""
    return digest([(p.id, p.text) for p in passages], 32)
