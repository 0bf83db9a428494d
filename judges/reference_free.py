"""Reference-free and context evals through ragas 0.4.3, driven by ragvft's own judge and embedder.

ragas gets the judge through its own LLM interface (`BaseRagasLLM`) and the embedder through its
embedding interface (`BaseRagasEmbedding`), so every ragas call goes through ragvft's judge backend:
the same model, the same call cache, the same retries. The metrics:

* LLM: faithfulness, answer_relevancy (also the embedder), context_precision (with the reference
  answer), context_recall;
* non-LLM (rapidfuzz string similarity against the gold passages): nonllm_context_precision,
  nonllm_context_recall.

ragas raises when the judge's reply cannot be parsed and returns NaN when it has nothing to score:
both are recorded as undetermined, with the reason, never as zero.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from judges.scorers import SCORERS
from judges.types import Score

if TYPE_CHECKING:  # ragas, langchain and sentence-transformers load only when a ragas metric runs
    from langchain_core.callbacks import Callbacks
    from langchain_core.outputs import LLMResult
    from langchain_core.prompt_values import PromptValue
    from ragas.embeddings import BaseRagasEmbedding
    from ragas.llms import BaseRagasLLM
    from ragas.metrics.base import SingleTurnMetric
    from sentence_transformers import SentenceTransformer


def _ragas() -> ModuleType:
    os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import ragas
    # ragas logs every reply it cannot parse at error level; each is recorded as undetermined, with
    # its reason, on the row (and counted in the report), so the console stays ours
    logging.getLogger("ragas").setLevel(logging.CRITICAL)
    return ragas


def _llm(complete: Callable[[str], str | None]) -> BaseRagasLLM:
    """ragas' LLM interface over a function from prompt to the judge's reply."""
    from langchain_core.outputs import Generation, LLMResult
    from ragas import RunConfig
    from ragas.llms import BaseRagasLLM

    class JudgeLLM(BaseRagasLLM):
        def __init__(self) -> None:
            # ragas would retry any exception 10 times; the judge backend retries what is worth it
            super().__init__(run_config=RunConfig(max_retries=1))

        def generate_text(
            self,
            prompt: PromptValue,
            n: int = 1,
            temperature: float | None = 0.01,
            stop: list[str] | None = None,
            callbacks: Callbacks = None,
        ) -> LLMResult:
            text = complete(prompt.to_string())
            if text is None:
                raise RuntimeError("the judge call failed")
            return LLMResult(generations=[[Generation(text=text) for _ in range(n)]])

        async def agenerate_text(
            self,
            prompt: PromptValue,
            n: int = 1,
            temperature: float | None = 0.01,
            stop: list[str] | None = None,
            callbacks: Callbacks = None,
        ) -> LLMResult:
            return await asyncio.to_thread(self.generate_text, prompt, n, temperature, stop, callbacks)

        def is_finished(self, response: LLMResult) -> bool:
            return True

    return JudgeLLM()


def _embeddings(encoder: SentenceTransformer) -> BaseRagasEmbedding:
    """ragas' embedding interface over a sentence-transformers model (legacy and new method names)."""
    from ragas.embeddings import BaseRagasEmbedding

    class Embedder(BaseRagasEmbedding):
        def embed_texts(self, texts: list[str], **kw: Any) -> list[list[float]]:
            return encoder.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True).tolist()

        def embed_text(self, text: str, **kw: Any) -> list[float]:
            return self.embed_texts([text])[0]

        async def aembed_text(self, text: str, **kw: Any) -> list[float]:
            return self.embed_text(text)

        async def aembed_texts(self, texts: list[str], **kw: Any) -> list[list[float]]:
            return self.embed_texts(texts)

        def embed_query(self, text: str) -> list[float]:
            return self.embed_text(text)

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return self.embed_texts(texts)

    return Embedder()


def _metrics(
    names: list[str],
    complete: Callable[[str], str | None] | None,
    encoder: SentenceTransformer | None,
    threshold: float,
) -> dict[str, SingleTurnMetric]:
    _ragas()
    from ragas.metrics._answer_relevance import ResponseRelevancy
    from ragas.metrics._context_precision import (
        LLMContextPrecisionWithReference,
        NonLLMContextPrecisionWithReference,
    )
    from ragas.metrics._context_recall import LLMContextRecall, NonLLMContextRecall
    from ragas.metrics._faithfulness import Faithfulness

    needs = {need for n in names for need in SCORERS[n].needs}
    if "llm" in needs and complete is None:
        raise ValueError(f"ragas metrics {names} need a judge: pass `complete`")
    if "embedder" in needs and encoder is None:
        raise ValueError(f"ragas metrics {names} need an embedder: pass `encoder`")
    llm = _llm(complete) if complete is not None and "llm" in needs else None
    embeddings = _embeddings(encoder) if encoder is not None and "embedder" in needs else None
    build: dict[str, Callable[[], SingleTurnMetric]] = {
        "faithfulness": lambda: Faithfulness(llm=llm),
        "answer_relevancy": lambda: ResponseRelevancy(llm=llm, embeddings=embeddings, strictness=1),
        "context_precision": lambda: LLMContextPrecisionWithReference(llm=llm),
        "context_recall": lambda: LLMContextRecall(llm=llm),
        "nonllm_context_precision": lambda: NonLLMContextPrecisionWithReference(threshold=threshold),
        "nonllm_context_recall": lambda: NonLLMContextRecall(threshold=threshold),
    }
    return {n: build[n]() for n in names}


def ragas_scores(
    items: list[dict],
    names: list[str],
    *,
    complete: Callable[[str], str | None] | None = None,
    encoder: SentenceTransformer | None = None,
    concurrency: int = 8,
    threshold: float = 0.5,
    progress: Callable[[int], None] | None = None,
) -> list[dict[str, Score]]:
    """Score every item with every named ragas metric.

    An item has `question`, `answer`, `contexts` (the retrieved passages' texts), `reference` (a gold
    answer) and `reference_contexts` (the gold passages' texts). `complete(prompt)` is the judge.
    """
    from ragas import SingleTurnSample

    metrics = _metrics(names, complete, encoder, threshold)

    async def one(item: dict, name: str, gate: asyncio.Semaphore) -> Score:
        sample = SingleTurnSample(
            user_input=item["question"],
            response=item["answer"],
            retrieved_contexts=item["contexts"],
            reference=item["reference"],
            reference_contexts=item["reference_contexts"] or None,
        )
        if name.startswith("nonllm") and not item["reference_contexts"]:
            if progress is not None:
                progress(1)
            return Score(name, None, "undetermined: no gold passages to compare with")
        async with gate:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    value = await metrics[name].single_turn_ascore(sample)
            except Exception as e:  # noqa: BLE001  (ragas raises many kinds on a judge reply it cannot use)
                return Score(name, None, f"undetermined: {type(e).__name__}: {str(e)[:160]}")
            finally:
                if progress is not None:
                    progress(1)
        value = float(value)
        if math.isnan(value):
            return Score(name, None, "undetermined: ragas returned NaN (nothing to score)")
        return Score(name, value, f"ragas {name}")

    async def run_all() -> list[Score]:
        from concurrent.futures import ThreadPoolExecutor

        # the judge is called from threads (asyncio.to_thread): as many as calls may be in flight
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max(concurrency, 1)))
        gate = asyncio.Semaphore(concurrency)
        jobs = [one(item, n, gate) for item in items for n in names]
        return await asyncio.gather(*jobs)

    flat = asyncio.run(run_all())
    return [
        dict(zip(names, flat[i * len(names) : (i + 1) * len(names)], strict=True)) for i in range(len(items))
    ]


def ragas_prompts() -> dict[str, Callable[..., str]]:
    """The prompts ragas' faithfulness and answer relevancy send a judge, rendered exactly as those
    metrics render them (their own prompt objects): for a judge that learns to answer them."""
    _ragas()
    from ragas.metrics._answer_relevance import ResponseRelevanceInput, ResponseRelevancy
    from ragas.metrics._faithfulness import Faithfulness, NLIStatementInput, StatementGeneratorInput

    faithfulness, relevancy = Faithfulness(), ResponseRelevancy()
    return {
        "statements": lambda question, answer: faithfulness.statement_generator_prompt.to_string(
            StatementGeneratorInput(question=question, answer=answer)
        ),
        "nli": lambda context, statements: faithfulness.nli_statements_prompt.to_string(
            NLIStatementInput(context=context, statements=statements)
        ),
        "relevance": lambda response: relevancy.question_generation.to_string(
            ResponseRelevanceInput(response=response)
        ),
    }
