"""The bench configuration (`bench.yaml`) as typed objects, with defaults and help: the variants, the
generation settings, the gate, and `BenchConfig` itself (see harness.config)."""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import AfterValidator, AliasChoices, Field, PrivateAttr, field_validator, model_validator

from core.errors import known
from core.paths import ConfigPath
from harness.config.inputs import ModelConfig, RetrieverConfig, Seed, SuiteConfig, _Strict
from harness.config.judge import ForgettingConfig, JudgeConfig
from harness.config.synth import SynthConfig
from harness.config.training import TrainingConfig
from harness.engines import ENGINES
from harness.engines.openai import OpenAIOptions
from harness.engines.ray import RayOptions
from harness.engines.vllm import VLLMOptions
from harness.training import METHODS, SECTIONS
from judges import metrics_of
from judges.scorers import first_paired

METRICS = ("em", "f1")  # the default; accuracy and macro_f1 are for label suites (PubMedQA)
OLD_BLESSED = "baseline"  # `gate.blessed`'s old name, still read


# A metric a config names for every answer: one of the registry's answer scorers (its name is checked
# per item, so an error names the item).
AnswerMetric = Annotated[str, AfterValidator(lambda m: known(m, metrics_of("answer"), "metric"))]


class VariantConfig(_Strict):
    name: str = Field(..., min_length=1, description="Unique name, shown in the report.")
    retriever: str | None = Field(
        None, description="Name of a retriever under `retrievers`; none = closed-book."
    )
    k: int = Field(3, ge=1, le=50, description="Passages put in the prompt.")
    adapter: str | None = Field(
        None,
        description="A training method (sft, dpo, cpt, ...): its LoRA adapter, trained (once, cached) "
        "with the settings under `training.<method>`.",
    )
    adapter_path: ConfigPath | None = Field(
        None, description="An existing PEFT adapter folder (relative to the config's folder); not trained."
    )

    @field_validator("adapter")
    @classmethod
    def _known_method(cls, method: str | None) -> str | None:
        return None if method is None else known(method, METHODS, "training method")

    @model_validator(mode="after")
    def _one_adapter(self) -> Self:
        if self.adapter is not None and self.adapter_path is not None:
            raise ValueError("give at most one of 'adapter' or 'adapter_path'")
        return self

    @property
    def has_adapter(self) -> bool:
        return self.adapter is not None or self.adapter_path is not None


class GenerationConfig(_Strict):
    engine: str = Field(
        "hf",
        description="The engine that generates: hf (transformers + PEFT, in-process), vllm (vLLM, every "
        "adapter a LoRA of one engine), openai (any OpenAI-compatible server, `generation.openai`).",
    )
    max_new_tokens: int = Field(16, ge=1, le=4096)
    fewshot: int = Field(
        0,
        ge=0,
        le=32,
        description="Worked examples (question and answer, from the suite's training pairs only, never "
        "about the question's own fact) before each question: they show an instruct model the answer's "
        "form. Recorded in every row's prompt.",
    )
    batch_size: int = Field(32, ge=1, le=4096)
    vllm: VLLMOptions | None = Field(None, description="vLLM's settings (engine: vllm).")
    openai: OpenAIOptions | None = Field(None, description="The server's settings (engine: openai).")
    ray: RayOptions | None = Field(
        None, description="Spread generation over Ray actors, each running the engine: {workers: N}."
    )

    @model_validator(mode="before")
    @classmethod
    def _dtype_moved(cls, data: Any) -> Any:
        """The dtype is the model's (training and every engine load it so): one home, `model.dtype`."""
        if isinstance(data, dict) and "dtype" in data:
            raise ValueError("`generation.dtype` moved to model.dtype: set `dtype` under `model`")
        return data

    @model_validator(mode="after")
    def _engine_settings(self) -> Self:
        if self.engine == "openai" and self.openai is None:
            raise ValueError("engine openai needs `generation.openai` with at least `base_url`")
        for name in ("vllm", "openai"):
            if getattr(self, name) is not None and self.engine != name:
                raise ValueError(
                    f"`generation.{name}` is set but the engine is {self.engine}: set engine: {name}"
                )
        if self.ray is not None and self.engine == "openai":
            raise ValueError("`generation.ray` spreads an in-process engine; a server spreads its own load")
        return self

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, engine: str) -> str:
        return known(engine, ENGINES, "engine")


class GateRule(_Strict):
    variant: str = Field(..., description="The variant this rule checks.")
    metric: str = Field(..., description="One of the run's metrics.")
    margin: float | None = Field(
        None,
        ge=0,
        description="Non-inferiority against the blessed run: fail when the lower bound of the paired 95% "
        "interval of (this run - blessed) is below -margin.",
    )
    floor: float | None = Field(None, description="Fail when the mean is below this.")

    @model_validator(mode="after")
    def _some_check(self) -> Self:
        if self.margin is None and self.floor is None:
            raise ValueError("give 'margin', 'floor' or both")
        return self


class GateConfig(_Strict):
    blessed: ConfigPath = Field(
        "bench/baseline.json",
        # `baseline`, its old name, still read (`harness.config.load` prints a notice): `baseline` is the
        # variant every other is compared with
        validation_alias=AliasChoices("blessed", OLD_BLESSED),
        validate_default=True,
        description="The blessed baseline file (relative to the config's folder), written by `ragvft bless`.",
    )
    rules: list[GateRule] = Field(..., min_length=1)

    @property
    def baseline(self) -> str:
        """`blessed` by its old name, for code not yet moved to the new one."""
        return self.blessed


class LeakageConfig(_Strict):
    threshold: float = Field(
        0.8,
        gt=0,
        le=1,
        description="Character 5-gram Jaccard at or above which a training question is a near-duplicate.",
    )
    exclude: bool = Field(False, description="Drop leaked questions from the comparison (they stay listed).")


class LabelsConfig(_Strict):
    exclude_invalid: bool = Field(
        False,
        description="Leave questions people marked invalid (`ragvft labels import`) out of the agreement "
        "between the judge, exact match and people.",
    )


class DecisionConfig(_Strict):
    metric: str | None = Field(
        None,
        description="The metric the decision (and the knowledge attribution) reads: one of `metrics` that "
        "pairs question by question. Default: the first such. An instruct model answering in sentences "
        "is read by `match` (the gold answer contained), not `em`.",
    )


class BenchConfig(_Strict):
    name: str = "bench"
    seed: Seed = Field(7, description="Seed for bootstrap resampling and anything else random in a run.")
    suite: SuiteConfig
    model: ModelConfig
    generation: GenerationConfig = GenerationConfig()
    retrievers: dict[str, RetrieverConfig] = Field(default_factory=dict)
    training: TrainingConfig = TrainingConfig()
    leakage: LeakageConfig = LeakageConfig()
    labels: LabelsConfig = Field(LabelsConfig(), description="How people's labels on a run are compared.")
    variants: list[VariantConfig] = Field(..., min_length=1)
    baseline: str = Field("base", description="The variant every other is compared against.")
    metrics: list[AnswerMetric] = Field(
        default_factory=lambda: list(METRICS),
        description="Answer scorers from judges.SCORERS: em and f1 (SQuAD normalisation); accuracy and "
        "macro_f1 (labels: yes / no / maybe).",
    )
    bootstrap_samples: int = Field(2000, ge=100, le=100_000)
    judge: JudgeConfig | None = Field(None, description="LLM-as-judge and ragas reference-free evals.")
    forgetting: ForgettingConfig | None = Field(
        None, description="lm-eval tasks on the base and each adapter: what fine-tuning cost elsewhere."
    )
    decision: DecisionConfig = Field(DecisionConfig(), description="What the decision up front reads.")
    gate: GateConfig | None = Field(None, description="Release gate; `ragvft bench` exits with its code.")
    synth: SynthConfig | None = Field(None, description="`ragvft synth`: questions written from documents.")
    runs_dir: ConfigPath = Field(
        "runs", validate_default=True, description="Where runs are written (relative to the config's folder)."
    )
    # The config file this came from (set by `load_config`): named in errors found downstream. Every
    # relative path above is already resolved against its folder.
    _source: str = PrivateAttr("(config)")

    @property
    def source(self) -> str:
        return self._source

    def judge_metrics(self) -> list[str]:
        """The metrics the judge adds to every row: by mode, then ragas'."""
        if self.judge is None:
            return []
        by_mode = [n for mode in self.judge.modes for n in metrics_of(f"judge:{mode}")]
        return by_mode + list(self.judge.ragas)

    def training_seeds(self) -> list[int]:
        """The seeds every adapter is trained with: `training.seeds`, or the run's seed alone."""
        return list(self.training.seeds or [self.seed])

    def manifest_dump(self) -> dict:
        """The config as a run's manifest records it: as given, plus the settings (defaults included) of
        every training method a variant uses, and of the adapters those start from, and of the
        built-in judge, each as trained: over the defaults of the model's training profile."""
        out = self.model_dump()
        _sections_as_given(out, self)
        methods = [v.adapter for v in self.variants if v.adapter]
        while methods:
            name = methods.pop()
            hyper = self.training.hyper(name, self.model)
            out["training"][name] = hyper.settings()
            first = [SECTIONS[name].starts_from(hyper), *SECTIONS[name].needs(hyper).values()]
            methods += [m for m in first if m and m not in out["training"]]
        if self.judge is not None and self.judge.builtin is not None:
            judge = self.judge.builtin.of_profile(self.training.profile_of(self.model), self.judge.builtin)
            out["judge"]["builtin"] = judge.settings()
        return out

    def decision_metric(self) -> str | None:
        """`decision.metric`, else the first metric that pairs question by question."""
        return self.decision.metric or first_paired(self.metrics)

    def all_metrics(self) -> list[str]:
        return list(self.metrics) + self.judge_metrics()


def _sections_as_given(out: dict[str, Any], config: BenchConfig) -> None:
    """In `out` (`config` dumped), each training method's settings as the config gives them, not its
    defaults: those depend on the profile, so `manifest_dump` resolves only the ones a run trains."""
    for name, section in (config.training.model_extra or {}).items():
        out["training"][name] = section.model_dump(exclude_unset=True)
    if config.synth is not None and config.synth.generator.builtin is not None:
        out["synth"]["generator"]["builtin"] = config.synth.generator.builtin.model_dump(exclude_unset=True)
