"""`synth:` in a bench configuration: how `ragvft synth` writes a suite from documents (see
harness.synth). Every field has its default; a config without `synth` uses them all."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, model_validator

from core.errors import known
from core.paths import ConfigPath
from harness.config.inputs import ModelPath, _Strict
from harness.engines.openai import OpenAIOptions
from harness.training.question_writer import QuestionWriterTraining
from suites.synth import QUESTION_TYPES


class GeneratorConfig(_Strict):
    """The model that writes the questions: exactly one of `builtin`, `path` or `openai`."""

    builtin: QuestionWriterTraining | None = Field(
        None,
        description="The built-in question writer: a LoRA on the built-in base model, trained once (cached) "
        "on the base model's reading pool. Its questions are only as good as that 2M-parameter model.",
    )
    path: ModelPath | None = Field(None, description="A hub id or a model folder (relative to the config).")
    adapter_path: ConfigPath | None = Field(
        None, description="A PEFT adapter folder on the `path` model (relative to the config), if any."
    )
    revision: str | None = None
    trust_remote_code: bool = False
    engine: Literal["hf", "vllm"] = Field("hf", description="The engine a `path` model generates on.")
    openai: OpenAIOptions | None = Field(
        None,
        description="An OpenAI-compatible server: its base_url, and the served model under models.base.",
    )
    chat_template: Literal["auto"] | bool = Field(
        "auto",
        description="A `path` model: prompts through its tokenizer's chat template (auto: when it has "
        "one). A server: true sends chat messages (/chat/completions), otherwise raw text (/completions).",
    )
    max_new_tokens: int = Field(96, ge=16, le=4096, description="Longest reply, in tokens.")

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        given = [n for n in ("builtin", "path", "openai") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("name exactly one generator: 'builtin', 'path' or 'openai'")
        if self.adapter_path is not None and self.path is None:
            raise ValueError("'adapter_path' goes on a 'path' model")
        return self


QuestionType = Annotated[str, AfterValidator(lambda t: known(t, QUESTION_TYPES, "question type"))]


class SynthConfig(_Strict):
    """`ragvft synth`: questions written by a generator model for the suite's passages (or a folder of
    documents), each checked before it is kept."""

    generator: GeneratorConfig = Field(
        default_factory=lambda: GeneratorConfig(builtin=QuestionWriterTraining()),
        description="The model that writes the questions (default: the built-in question writer).",
    )
    docs: ConfigPath | None = Field(
        None,
        description="A folder of .txt / .md documents (relative to the config), chunked by suite.chunking "
        "(default 100 words, 20 shared): the corpus instead of the suite's passages.",
    )
    types: list[QuestionType] = Field(
        default_factory=lambda: list(QUESTION_TYPES),
        min_length=1,
        description=f"The question types to keep, of {', '.join(QUESTION_TYPES)}.",
    )
    passages: int | None = Field(
        400,
        ge=1,
        description="Ask about at most this many passages, evenly spread over the corpus; null: all.",
    )
    round_trip_f1: float = Field(
        0.8,
        gt=0,
        le=1,
        description="The reader's answer (the base model, given the passage) must match the generated "
        "answer: exact match, or token F1 at least this (SQuAD normalisation).",
    )
    duplicate_threshold: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Character 5-gram Jaccard at or above which a question is a near-duplicate of a kept "
        "one or of a training example; null: leakage.threshold.",
    )
    max_type_share: float = Field(
        0.4,
        gt=0,
        le=1,
        description="No type holds more than this share of the kept questions (at least an equal share "
        "of the types found).",
    )
