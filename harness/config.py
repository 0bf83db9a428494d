"""The bench configuration (`bench.yaml`): typed, with defaults and help, validated at the boundary.

`load_config(path)` reads YAML with the safe loader and returns a `BenchConfig`; any problem raises
`InputError` naming the file, the line and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from harness.config_inputs import (  # noqa: F401  (re-exported: the config's one import path)
    BM25Config,
    BuiltinEmbedder,
    BuiltinModel,
    BuiltinSuite,
    ChunkingConfig,
    DenseConfig,
    EmbedderConfig,
    HybridConfig,
    JsonlSuite,
    ModelConfig,
    PubMedQASuite,
    RetrieverConfig,
    SquadSuite,
    SuiteConfig,
    _Strict,
)
from harness.config_training import (  # noqa: F401
    ADAPTER_METHODS,
    AdapterTraining,
    CPTTraining,
    DPOTraining,
    ForgettingConfig,
    JudgeConfig,
    RagasMetric,
    SFTTraining,
    TrainingConfig,
)
from harness.errors import InputError, did_you_mean

METRICS = ("em", "f1")  # the default; accuracy and macro_f1 are for label suites (PubMedQA)
Metric = Literal["em", "f1", "accuracy", "macro_f1"]
JUDGE_METRICS = {"grade": ("judge", "judge_score"), "pairwise": ("pairwise",)}
GateMetric = Literal[Metric, "judge", "judge_score", "pairwise", RagasMetric]  # nested Literals flatten


class VariantConfig(_Strict):
    name: str = Field(..., min_length=1, description="Unique name, shown in the report.")
    retriever: str | None = Field(
        None, description="Name of a retriever under `retrievers`; none = closed-book."
    )
    k: int = Field(3, ge=1, le=50, description="Passages put in the prompt.")
    adapter: Literal["sft", "dpo", "cpt"] | None = Field(
        None, description="A LoRA adapter trained (once, cached) by that method under `training`."
    )
    adapter_path: str | None = Field(
        None, description="An existing PEFT adapter folder (relative to the config's folder); not trained."
    )

    @model_validator(mode="after")
    def _one_adapter(self):
        if self.adapter is not None and self.adapter_path is not None:
            raise ValueError("give at most one of 'adapter' or 'adapter_path'")
        return self


class GenerationConfig(_Strict):
    max_new_tokens: int = Field(16, ge=1, le=4096)
    batch_size: int = Field(32, ge=1, le=4096)


class GateRule(_Strict):
    variant: str = Field(..., description="The variant this rule checks.")
    metric: GateMetric
    margin: float | None = Field(
        None,
        ge=0,
        description="Non-inferiority against the blessed run: fail when the lower bound of the paired 95% "
        "interval of (this run - blessed) is below -margin.",
    )
    floor: float | None = Field(None, description="Fail when the mean is below this.")

    @model_validator(mode="after")
    def _some_check(self):
        if self.margin is None and self.floor is None:
            raise ValueError("give 'margin', 'floor' or both")
        return self


class GateConfig(_Strict):
    baseline: str = Field(
        "bench/baseline.json",
        description="The blessed baseline (relative to the config's folder), written by `ragvft bless`.",
    )
    rules: list[GateRule] = Field(..., min_length=1)


class LeakageConfig(_Strict):
    threshold: float = Field(
        0.8,
        gt=0,
        le=1,
        description="Character 5-gram Jaccard at or above which a training question is a near-duplicate.",
    )
    exclude: bool = Field(False, description="Drop leaked questions from the comparison (they stay listed).")


class BenchConfig(_Strict):
    name: str = "bench"
    seed: int = Field(7, description="Seed for bootstrap resampling and anything else random in a run.")
    suite: SuiteConfig
    model: ModelConfig
    generation: GenerationConfig = GenerationConfig()
    retrievers: dict[str, RetrieverConfig] = Field(default_factory=dict)
    training: TrainingConfig = TrainingConfig()
    leakage: LeakageConfig = LeakageConfig()
    variants: list[VariantConfig] = Field(..., min_length=1)
    baseline: str = Field("base", description="The variant every other is compared against.")
    metrics: list[Metric] = Field(
        default_factory=lambda: list(METRICS),
        description="em and f1 (SQuAD normalisation); accuracy and macro_f1 (labels: yes / no / maybe).",
    )
    bootstrap_samples: int = Field(2000, ge=100, le=100_000)
    judge: JudgeConfig | None = Field(None, description="LLM-as-judge and ragas reference-free evals.")
    forgetting: ForgettingConfig | None = Field(
        None, description="lm-eval tasks on the base and each adapter: what fine-tuning cost elsewhere."
    )
    gate: GateConfig | None = Field(None, description="Release gate; `ragvft bench` exits with its code.")
    runs_dir: str = Field("runs", description="Where runs are written (relative to the config's folder).")

    def judge_metrics(self) -> list[str]:
        """The metrics the judge adds to every row: by mode, then ragas'."""
        if self.judge is None:
            return []
        return [m for mode in self.judge.modes for m in JUDGE_METRICS[mode]] + list(self.judge.ragas)

    def all_metrics(self) -> list[str]:
        return list(self.metrics) + self.judge_metrics()


def load_config(path: str | Path) -> BenchConfig:
    path = Path(path)
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(name, "file not found") from None
    except UnicodeDecodeError as e:
        raise InputError(name, f"not UTF-8 text (byte {e.start})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise InputError(name, f"YAML syntax error: {getattr(e, 'problem', e)}", line=line) from None
    if not isinstance(data, dict):
        raise InputError(name, "expected a mapping at the top level", line=1)
    lines = _line_index(node)
    try:
        config = BenchConfig.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = tuple(err["loc"])
        field = ".".join(str(p) for p in loc) or "(top level)"
        raise InputError(name, _message(err), line=_line_of(lines, loc), field=field) from None
    _check_references(config, name, lines)
    return config


def _message(err: dict[str, Any]) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown field"
    msg = err["msg"]
    return msg.removeprefix("Value error, ")


def _check_references(config: BenchConfig, name: str, lines: dict) -> None:
    seen: set[str] = set()
    for i, v in enumerate(config.variants):
        if v.adapter_path is not None:
            folder = Path(name).parent / v.adapter_path
            if not (folder / "adapter_config.json").is_file():
                raise InputError(
                    name,
                    f"{v.adapter_path!r} is not a PEFT adapter folder (no adapter_config.json)",
                    line=_line_of(lines, ("variants", i, "adapter_path")),
                    field=f"variants.{i}.adapter_path",
                )
        if v.name in seen:
            raise InputError(
                name,
                f"duplicate variant {v.name!r}",
                line=_line_of(lines, ("variants", i, "name")),
                field=f"variants.{i}.name",
            )
        seen.add(v.name)
        if v.retriever is not None and v.retriever not in config.retrievers:
            raise InputError(
                name,
                f"unknown retriever {v.retriever!r}{did_you_mean(v.retriever, config.retrievers)}",
                line=_line_of(lines, ("variants", i, "retriever")),
                field=f"variants.{i}.retriever",
            )
    for rname, r in config.retrievers.items():
        if isinstance(r, HybridConfig):
            for j, other in enumerate(r.of):
                if other not in config.retrievers or isinstance(config.retrievers[other], HybridConfig):
                    known = [n for n, c in config.retrievers.items() if not isinstance(c, HybridConfig)]
                    raise InputError(
                        name,
                        f"{other!r} is not a bm25 or dense retriever{did_you_mean(other, known)}",
                        line=_line_of(lines, ("retrievers", rname, "of", j)),
                        field=f"retrievers.{rname}.of.{j}",
                    )
    if config.gate is not None:
        for i, rule in enumerate(config.gate.rules):
            where = ("gate", "rules", i)
            if rule.variant not in seen:
                raise InputError(
                    name,
                    f"unknown variant {rule.variant!r}{did_you_mean(rule.variant, seen)}",
                    line=_line_of(lines, (*where, "variant")),
                    field=f"gate.rules.{i}.variant",
                )
            if rule.metric == "macro_f1":
                raise InputError(
                    name,
                    "macro_f1 is a corpus-level score with no per-question value to pair; gate on accuracy",
                    line=_line_of(lines, (*where, "metric")),
                    field=f"gate.rules.{i}.metric",
                )
            if rule.metric not in config.all_metrics():
                raise InputError(
                    name,
                    f"metric {rule.metric!r} is not among the run's metrics {config.all_metrics()}",
                    line=_line_of(lines, (*where, "metric")),
                    field=f"gate.rules.{i}.metric",
                )
    _check_judge(config, name, lines)
    if config.baseline not in seen:
        raise InputError(
            name,
            f"unknown variant {config.baseline!r}{did_you_mean(config.baseline, seen)}",
            line=_line_of(lines, ("baseline",)),
            field="baseline",
        )


def _check_judge(config: BenchConfig, name: str, lines: dict) -> None:
    j = config.judge
    if j is None:
        return
    dense = [n for n, r in config.retrievers.items() if isinstance(r, DenseConfig)]
    if j.embedder is not None and j.embedder not in dense:
        raise InputError(
            name,
            f"{j.embedder!r} is not a dense retriever{did_you_mean(j.embedder, dense)}",
            line=_line_of(lines, ("judge", "embedder")),
            field="judge.embedder",
        )
    if "answer_relevancy" in j.ragas and j.embedder is None:
        raise InputError(
            name,
            "answer_relevancy needs an embedder: name a dense retriever in judge.embedder",
            line=_line_of(lines, ("judge", "ragas")),
            field="judge.ragas",
        )
    if j.hf is not None and j.hf.adapter_path is not None:
        folder = Path(name).parent / j.hf.adapter_path
        if not (folder / "adapter_config.json").is_file():
            raise InputError(
                name,
                f"{j.hf.adapter_path!r} is not a PEFT adapter folder (no adapter_config.json)",
                line=_line_of(lines, ("judge", "hf", "adapter_path")),
                field="judge.hf.adapter_path",
            )


def _line_index(node: yaml.Node | None) -> dict[tuple, int]:
    """Map every path (keys and list indexes) in the YAML document to its 1-based line."""
    index: dict[tuple, int] = {}

    def walk(n: yaml.Node, path: tuple) -> None:
        index[path] = n.start_mark.line + 1
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                index[path + (k.value,)] = k.start_mark.line + 1
                walk(v, path + (k.value,))
                index[path + (k.value,)] = k.start_mark.line + 1
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                walk(v, path + (i,))

    if node is not None:
        walk(node, ())
    return index


def _line_of(index: dict[tuple, int], loc: tuple) -> int | None:
    """The line of `loc`, or of its nearest ancestor present in the file."""
    for n in range(len(loc), -1, -1):
        if loc[:n] in index:
            return index[loc[:n]]
    return None
