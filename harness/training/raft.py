"""RAFT (Zhang et al. 2024, "RAFT: Adapting Language Model to Domain Specific RAG"): SFT on prompts
that hold passages, in the exact prompt the retrieval variants read, so fine-tuning teaches the model
to read as well as to remember.

Each training question gets `passages` passages: in a `golden_fraction` of the rows its gold passage
among distractors, in the rest distractors alone, and always the training answer (so the model
learns to answer from the passage when it is there and from memory when retrieval missed). The
distractors are the passages BM25 ranks highest for the question that are not gold: the passages a
retriever would really bring. The answer is the plain answer; the paper's chain-of-thought answers
quoting the passage are out of scope (a small model writes them poorly, and exact match reads the
answer alone).
"""

from __future__ import annotations

import random

from pydantic import Field

from harness.prompts import RAW, PromptFormat
from harness.training.method import AdapterTraining, TrainingMethod
from harness.training.sft import sft_trainer
from suites.schema import Suite


class RAFTTraining(AdapterTraining):
    """SFT on the suite's question-answer pairs with passages in the prompt: the gold passage among
    retrieved distractors, or distractors alone (RAFT)."""

    # the `builtin` profile: 10 epochs at 5e-4 read unseen facts as well as the base and trained ones
    # best (measured: docs/methods.md#raft)
    epochs: float = Field(10, gt=0)
    learning_rate: float = Field(5e-4, gt=0)
    passages: int = Field(
        1, ge=1, le=20, description="Passages in each prompt; match the k your retrieval variants read."
    )
    golden_fraction: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Share of rows whose passages hold the gold one (the paper's P; the model profile's "
        "0.8 is the paper's); the rest hold distractors alone and teach the model to answer from memory "
        "when retrieval misses (the built-in tiny model cannot: for it they only teach copying a wrong "
        "passage, so the builtin profile's is 1.0).",
    )

    MODEL = AdapterTraining.MODEL | {"epochs": 3, "golden_fraction": 0.8}  # epochs as SFT's


def raft_rows(suite: Suite, hyper: RAFTTraining, seed: int, fmt: PromptFormat = RAW) -> list[dict]:
    """Prompt-completion rows in the model's prompt format, passages in the prompt: for each SFT pair
    whose `passage_ids` name gold passages of the corpus. Deterministic for a seed."""
    from retrievers.bm25 import BM25Retriever

    text = {p.id: p.text for p in suite.passages}
    pairs = [p for p in suite.training.sft if p.passage_ids and all(i in text for i in p.passage_ids)]
    if not pairs:
        return []
    k = hyper.passages
    found = BM25Retriever(list(suite.passages)).search([p.question for p in pairs], k + 8)
    rng = random.Random(seed)
    rows = []
    for pair, hits in zip(pairs, found, strict=True):
        gold = list(dict.fromkeys(pair.passage_ids))[:k]
        distractors = [h.passage_id for h in hits if h.passage_id not in pair.passage_ids]
        if rng.random() < hyper.golden_fraction:
            ids = gold + distractors[: k - len(gold)]
            rng.shuffle(ids)  # the gold passage at any rank
        else:
            ids = distractors[:k]
        rows.append(fmt.completion_row(pair.question, pair.answer, [text[i] for i in ids]))
    return rows


METHOD = TrainingMethod(
    name="raft",
    config=RAFTTraining,
    data=raft_rows,
    trainer=sft_trainer,
    data_help="training pairs whose gold passages are in the corpus (passage_ids on the SFT pairs)",
)
