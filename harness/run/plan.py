"""The plan: one item per (variant, question), each with its prompt and the key of its generation.

A generation's key hashes exactly what determines the answer: the base model's identity, the
adapter's, the full prompt (retrieved passages included), the decoding settings and the engine's
identity (engine, dtype, device class). Variants that share all of these share one generation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.cache import digest
from harness.engines import Decoding
from harness.prompts import fewshot
from suites.schema import Question, Suite

if TYPE_CHECKING:
    from harness.artifacts import BaseModel
    from harness.config import BenchConfig
    from harness.training import Adapter


@dataclass(frozen=True)
class Item:
    """One generation to look up or make: a variant's prompt for a question."""

    variant: str
    question: Question
    hits: list | None  # the top k, in the prompt
    ranked: list | None  # the top max(k, 10), for retrieval metrics
    prompt: str  # exactly what the model reads (through its chat template, for a chat model)
    adapter: str | None  # the adapter's identity
    key: str
    seed: int | None = None  # the adapter's training seed (None: no adapter trained here)


def generation_key(
    *, model: str, adapter: str | None, prompt: str, decoding: Decoding, engine: dict[str, Any]
) -> str:
    return digest(
        {"model": model, "adapter": adapter, "prompt": prompt, "decoding": decoding.key(), "engine": engine},
        32,
    )


def make_plan(
    config: BenchConfig,
    suite: Suite,
    base: BaseModel,
    adapters: dict[str, list[Adapter]],
    retrievers: dict[str, Any],
    *,
    engine: dict[str, Any],
    decoding: Decoding,
) -> list[Item]:
    """Every variant's items, in config order, then training seed, then suite order; one search per
    retriever, as deep as any variant that uses it needs (and at least 10, for the retrieval metrics).
    `adapters` maps a variant to its adapters, one per training seed."""
    passages = suite.passage_map()
    plan: list[Item] = []
    searched: dict[str, list[Any]] = {}
    shots = config.generation.fewshot  # worked examples from the training pairs, never the question's fact
    depth = {r: max([10] + [v.k for v in config.variants if v.retriever == r]) for r in retrievers}
    for v in config.variants:
        if v.retriever and v.retriever not in searched:
            searched[v.retriever] = retrievers[v.retriever].search(
                [q.text for q in suite.questions], depth[v.retriever]
            )
        ranked = searched[v.retriever] if v.retriever else [None] * len(suite.questions)
        seeded: list[Adapter] | list[None] = adapters.get(v.name) or [None]
        for a in seeded:  # one pass per training seed
            adapter = a.identity if a else None
            for q, deep in zip(suite.questions, ranked, strict=True):
                found = None if deep is None else deep[: v.k]  # the prompt reads the top k
                context = None if found is None else [passages[h.passage_id].text for h in found]
                fmt = (
                    base.prompt_format.with_shots(fewshot(suite.training.sft, q, shots))
                    if shots
                    else base.prompt_format
                )
                prompt = fmt.prompt(q.text, context)  # the exact text the model reads
                key = generation_key(
                    model=base.identity, adapter=adapter, prompt=prompt, decoding=decoding, engine=engine
                )
                plan.append(Item(v.name, q, found, deep, prompt, adapter, key, a.seed if a else None))
    return plan
