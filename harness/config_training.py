"""The bench configuration's training and judging: LoRA adapters trained with TRL, and the judge
(see harness.config)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from harness.config_inputs import _Strict

ADAPTER_METHODS = ("sft", "dpo", "cpt")


class AdapterTraining(_Strict):
    """LoRA fine-tuning through TRL. Defaults suit the built-in tiny model on the built-in domain."""

    epochs: float = Field(..., gt=0, description="Passes over the training set.")
    learning_rate: float = Field(..., gt=0)
    batch_size: int = Field(16, ge=1)
    lora_r: int = Field(32, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(64, ge=1)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: str | list[str] = Field("all-linear", description="Modules LoRA adapts.")
    max_length: int = Field(256, ge=8, description="Longest training sequence in tokens.")
    warmup_ratio: float = Field(0.05, ge=0, lt=1)


class SFTTraining(AdapterTraining):
    """Supervised fine-tuning on the suite's question-answer pairs (loss on the answer only)."""

    epochs: float = Field(40, gt=0)
    learning_rate: float = Field(3e-3, gt=0)
    shuffle_answers: bool = Field(
        False,
        description="Negative control: train on answers shuffled across questions, an adapter that is "
        "broken on purpose (the gate must catch it).",
    )


class DPOTraining(AdapterTraining):
    """Direct preference optimisation on the suite's (question, right answer, wrong answer) triples."""

    epochs: float = Field(3, gt=0)
    learning_rate: float = Field(5e-4, gt=0)
    beta: float = Field(0.1, gt=0, description="DPO temperature: how far the policy may leave its reference.")
    shuffle_answers: bool = Field(
        False, description="Negative control: chosen answers shuffled across questions."
    )
    init: Literal["sft", "base"] = Field(
        "sft",
        description="Start from the SFT adapter (its LoRA settings apply; it is also the reference) "
        "or from the base model. From the base, a tiny model's answers collapsed in a trial here.",
    )


class CPTTraining(AdapterTraining):
    """Continued pre-training: causal-LM loss on the suite's training documents."""

    epochs: float = Field(30, gt=0)
    learning_rate: float = Field(1e-3, gt=0)


class TrainingConfig(_Strict):
    extra_sft: str | None = Field(
        None,
        description='A JSONL file of {"question", "answer"} rows added to the SFT pairs (relative to the '
        "config's folder). Checked for leakage like the rest.",
    )
    sft: SFTTraining = SFTTraining()
    dpo: DPOTraining = DPOTraining()
    cpt: CPTTraining = CPTTraining()


class BuiltinJudge(AdapterTraining):
    """The built-in judge: a LoRA adapter on the built-in base model, trained with TRL's SFTTrainer to
    grade answers against a reference and to compare two answers, on the suite's training facts."""

    epochs: float = Field(4, gt=0)
    learning_rate: float = Field(3e-3, gt=0)


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
    """A causal LM in-process: a hub id or a local folder, optionally with a PEFT adapter."""

    path: str = Field(..., description="A hub id or a local folder (relative to the config's folder).")
    adapter_path: str | None = Field(None, description="A PEFT adapter folder for the judge.")
    revision: str | None = None
    trust_remote_code: bool = False
    max_new_tokens: int = Field(96, ge=8)


JudgeMode = Literal["grade", "pairwise"]
RagasMetric = Literal[
    "faithfulness",
    "answer_relevancy",
    "context_precision",
    "context_recall",
    "nonllm_context_precision",
    "nonllm_context_recall",
]


class JudgeConfig(_Strict):
    """LLM-as-judge and reference-free evals. Exactly one backend: builtin, http or hf."""

    builtin: BuiltinJudge | None = None
    http: HTTPJudgeConfig | None = None
    hf: HFJudgeConfig | None = None
    modes: list[JudgeMode] = Field(
        default_factory=lambda: ["grade", "pairwise"],
        description="grade: verdict and 1-5 score against the reference; pairwise: each variant against "
        "the baseline variant, both orders.",
    )
    ragas: list[RagasMetric] = Field(
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
    def _one_backend(self):
        given = [n for n in ("builtin", "http", "hf") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("name exactly one judge backend: 'builtin', 'http' or 'hf'")
        return self


class ForgettingConfig(_Strict):
    """Did fine-tuning break general abilities? lm-eval tasks run on the base and on every adapter."""

    tasks: list[str] = Field(
        ...,
        min_length=1,
        description="builtin_reading (reading comprehension on the built-in base model's own pool), or "
        "folders of lm-eval task YAML (relative to the config's folder).",
    )
    limit: int = Field(100, ge=1, description="Questions per task.")
