"""The bench configuration's judge (LLM-as-judge and ragas) and forgetting check (see harness.config)."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, ValidationInfo, model_validator

from core.errors import known
from core.paths import ConfigPath, resolve_local
from harness.config.inputs import ModelPath, _Strict
from harness.training.judge import BuiltinJudge
from judges import metrics_of


class HTTPJudgeConfig(_Strict):
    """Any OpenAI-compatible chat-completions server: vLLM, TGI, Ollama, a hosted API."""

    base_url: str = Field(..., description="e.g. http://127.0.0.1:8000/v1")
    model: str = Field(..., description="The model name the server expects.")
    api_key_env: str | None = Field(
        None, description="Name of the environment variable holding the API key (never the key itself)."
    )
    concurrency: int = Field(8, ge=1, le=256, description="Requests in flight at once.")
    timeout_s: float = Field(60.0, gt=0, description="Per request.")
    max_retries: int = Field(3, ge=0, le=10, description="Retries on 429, 5xx, timeouts, with backoff.")
    max_tokens: int = Field(256, ge=8)


class HFJudgeConfig(_Strict):
    """A causal LM in-process (through the run's engine): a hub id or a local folder, optionally with
    a PEFT adapter."""

    path: ModelPath = Field(..., description="A hub id or a local folder (relative to the config's folder).")
    adapter_path: ConfigPath | None = Field(None, description="A PEFT adapter folder for the judge.")
    revision: str | None = None
    trust_remote_code: bool = False
    max_new_tokens: int = Field(96, ge=8)


JudgeMode = Literal["grade", "pairwise"]
JUDGE_MODES: tuple[JudgeMode, ...] = ("grade", "pairwise")


def ragas_metrics() -> list[str]:
    """The ragas metrics the scorer registry knows."""
    return metrics_of("ragas")


class JudgeConfig(_Strict):
    """LLM-as-judge and reference-free evals. Exactly one backend: builtin, http or hf."""

    builtin: BuiltinJudge | None = None
    http: HTTPJudgeConfig | None = None
    hf: HFJudgeConfig | None = None
    engine: Literal["hf", "vllm"] | None = Field(
        None,
        description="The engine the builtin and hf judges run on; none: the run's (hf when the run generates "
        "on a server: a judge on a server is `judge.http`).",
    )
    modes: list[JudgeMode] = Field(
        default_factory=lambda: list(JUDGE_MODES),
        description="grade: verdict and 1-5 score against the reference; pairwise: each variant against "
        "the baseline variant, both orders.",
    )
    ragas: list[Annotated[str, AfterValidator(lambda n: known(n, ragas_metrics(), "ragas metric"))]] = Field(
        default_factory=list,
        description="ragas metrics for RAG variants. The LLM ones (faithfulness, answer_relevancy, "
        "context_precision, context_recall) use this judge; answer_relevancy also an embedder.",
    )
    embedder: str | None = Field(
        None, description="A dense retriever (by name) whose embedder ragas' answer_relevancy uses."
    )
    ragas_threshold: float = Field(
        0.5,
        gt=0,
        le=1,
        description="String similarity (rapidfuzz) at which the non-LLM context metrics count a retrieved "
        "passage as a gold one. ragas' default 0.5 suits free text; templated passages need more.",
    )

    @model_validator(mode="after")
    def _one_backend(self) -> Self:
        given = [n for n in ("builtin", "http", "hf") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("name exactly one judge backend: 'builtin', 'http' or 'hf'")
        return self


BUILTIN_READING = "builtin_reading"  # the forgetting check's task on the built-in base model's pool


def _task(task: str, info: ValidationInfo) -> str:
    """A forgetting task: the built-in one by name, else a folder (a `ConfigPath`)."""
    return task if task == BUILTIN_READING else resolve_local(task, info)


Task = Annotated[str, AfterValidator(_task)]


class ForgettingConfig(_Strict):
    """Did fine-tuning break general abilities? lm-eval tasks run on the base and on every adapter."""

    tasks: list[Task] = Field(
        ...,
        min_length=1,
        description="builtin_reading (reading comprehension on the built-in base model's own pool), or "
        "folders of lm-eval task YAML (relative to the config's folder).",
    )
    limit: int = Field(100, ge=1, description="Questions per task.")
