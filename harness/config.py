"""The bench configuration (`bench.yaml`): typed, with defaults and help, validated at the boundary.

`load_config(path)` reads YAML with the safe loader and returns a `BenchConfig`; any problem raises
`InputError` naming the file, the line and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.basemodel import BaseModelSpec
from harness.errors import InputError, did_you_mean

METRICS = ("em", "f1")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BuiltinSuite(_Strict):
    seed: int = Field(7, description="Seed of the generated organisation, its facts and its split.")
    scale: int = Field(40, ge=2, le=400, description="Products in the domain; facts are about 5.2 x scale.")
    corpus_only_fraction: float = Field(0.3, ge=0.0, le=1.0, description="Facts kept out of training data.")


class SuiteConfig(_Strict):
    builtin: BuiltinSuite | None = Field(None, description="The built-in fictional domain.")

    @model_validator(mode="after")
    def _one_source(self):
        if self.builtin is None:
            raise ValueError("name a suite source: 'builtin'")
        return self


class BuiltinModel(_Strict):
    """The built-in tiny base model. Defaults come from harness.basemodel.BaseModelSpec, their one home."""

    steps: int = Field(BaseModelSpec.steps, ge=1, description="Training steps of the built-in base model.")
    hidden_size: int = Field(BaseModelSpec.hidden_size, ge=8)
    layers: int = Field(BaseModelSpec.layers, ge=1)
    batch_size: int = Field(BaseModelSpec.batch_size, ge=1)
    learning_rate: float = Field(BaseModelSpec.learning_rate, gt=0)
    multi_passage_fraction: float = Field(
        BaseModelSpec.multi_passage_fraction,
        ge=0,
        le=1,
        description="Share of steps spent reading from 1-3 retrieved passages (phase 2).",
    )
    pool_scale: int = Field(
        BaseModelSpec.pool_scale, ge=2, description="Size of the reading pool it reads on."
    )


class ModelConfig(_Strict):
    builtin: BuiltinModel | None = Field(None, description="Train (once, cached) the built-in tiny model.")
    path: str | None = Field(None, description="A Hugging Face hub id or a local model folder.")
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit) for `path`.")
    trust_remote_code: bool = Field(
        False, description="Run model code from the hub. Off unless you turn it on."
    )

    @model_validator(mode="after")
    def _one_source(self):
        if (self.builtin is None) == (self.path is None):
            raise ValueError("give exactly one of 'builtin' or 'path'")
        return self


class RetrieverConfig(_Strict):
    kind: Literal["bm25"] = Field("bm25", description="Retriever kind.")
    k1: float = Field(1.5, gt=0, description="BM25 term-frequency saturation.")
    b: float = Field(0.75, ge=0, le=1, description="BM25 length normalisation.")


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
    sft: SFTTraining = SFTTraining()
    dpo: DPOTraining = DPOTraining()
    cpt: CPTTraining = CPTTraining()


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
    metric: Literal["em", "f1"]
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


class BenchConfig(_Strict):
    name: str = "bench"
    seed: int = Field(7, description="Seed for bootstrap resampling and anything else random in a run.")
    suite: SuiteConfig
    model: ModelConfig
    generation: GenerationConfig = GenerationConfig()
    retrievers: dict[str, RetrieverConfig] = Field(default_factory=dict)
    training: TrainingConfig = TrainingConfig()
    variants: list[VariantConfig] = Field(..., min_length=1)
    baseline: str = Field("base", description="The variant every other is compared against.")
    metrics: list[Literal["em", "f1"]] = Field(default_factory=lambda: list(METRICS))
    bootstrap_samples: int = Field(2000, ge=100, le=100_000)
    gate: GateConfig | None = Field(None, description="Release gate; `ragvft bench` exits with its code.")
    runs_dir: str = Field("runs", description="Where runs are written (relative to the config's folder).")


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
            if rule.metric not in config.metrics:
                raise InputError(
                    name,
                    f"metric {rule.metric!r} is not among the run's metrics {config.metrics}",
                    line=_line_of(lines, (*where, "metric")),
                    field=f"gate.rules.{i}.metric",
                )
    if config.baseline not in seen:
        raise InputError(
            name,
            f"unknown variant {config.baseline!r}{did_you_mean(config.baseline, seen)}",
            line=_line_of(lines, ("baseline",)),
            field="baseline",
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
