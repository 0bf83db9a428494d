"""The prompt formats. The built-in base model is trained on exactly these, so a variant's prompt
and the base model's curriculum can never drift apart."""

from __future__ import annotations

from collections.abc import Sequence


def closed_book(question: str) -> str:
    return f"Question: {question}\nAnswer:"


def with_passages(question: str, passages: Sequence[str]) -> str:
    numbered = "\n".join(f"[{i}] {text}" for i, text in enumerate(passages, 1))
    return f"Passages:\n{numbered}\n{closed_book(question)}"


def build(question: str, passages: Sequence[str] | None) -> str:
    """Closed-book when `passages` is None, else the retrieval-augmented prompt."""
    return closed_book(question) if passages is None else with_passages(question, passages)
