"""The bench configuration (`bench.yaml`): typed, with defaults and help, validated at the boundary.

`load_config(path)` reads YAML with the safe loader and returns a `BenchConfig`; any problem raises
`InputError` naming the file, the line and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.basemodel import BaseModelSpec
from harness.errors import InputError, did_you_mean

METRICS = ("em", "f1")  # the default; accuracy and macro_f1 are for label suites (PubMedQA)
Metric = Literal["em", "f1", "accuracy", "macro_f1"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BuiltinSuite(_Strict):
    seed: int = Field(7, description="Seed of the generated organisation, its facts and its split.")
    scale: int = Field(40, ge=2, le=400, description="Products in the domain; facts are about 5.2 x scale.")
    corpus_only_fraction: float = Field(0.3, ge=0.0, le=1.0, description="Facts kept out of training data.")


class SquadSuite(_Strict):
    """A SQuAD v1.1-format JSON file (e.g. COVID-QA): long documents, extractive questions."""

    path: str = Field(..., description="The JSON file, relative to the config's folder.")
    limit: int | None = Field(
        None,
        ge=1,
        description="Test on the first N answerable questions; the others (on other documents) train.",
    )
    answer_prefix_chars: int = Field(
        60, ge=1, description="A chunk is gold when it contains this many first characters of an answer."
    )


class PubMedQASuite(_Strict):
    """PubMedQA PQA-L: yes / no / maybe questions about an abstract."""

    path: str = Field(..., description="ori_pqal.json, relative to the config's folder.")
    test_ids: str | None = Field(
        None, description="test_ground_truth.json: these questions are tested, the others train."
    )
    limit: int | None = Field(None, ge=1, description="Test on the first N test questions.")


class JsonlSuite(_Strict):
    """Your own data: corpus rows {"id", "text"}, question rows {"id", "question", "answers": [...],
    "gold_passage_ids": [...], "category"}."""

    corpus: str = Field(..., description="Corpus JSONL, relative to the config's folder.")
    questions: str = Field(..., description="Questions JSONL, relative to the config's folder.")


class ChunkingConfig(_Strict):
    words: int = Field(100, ge=1, description="Words per chunk.")
    overlap: int = Field(20, ge=0, description="Words shared by consecutive chunks.")

    @model_validator(mode="after")
    def _overlap_below_words(self):
        if self.overlap >= self.words:
            raise ValueError("overlap must be smaller than words")
        return self


class SuiteConfig(_Strict):
    builtin: BuiltinSuite | None = Field(None, description="The built-in fictional domain.")
    squad: SquadSuite | None = Field(None, description="A SQuAD-format JSON file (COVID-QA).")
    pubmedqa: PubMedQASuite | None = Field(None, description="PubMedQA (yes / no / maybe).")
    jsonl: JsonlSuite | None = Field(None, description="Your own corpus and questions as JSONL files.")
    chunking: ChunkingConfig | None = Field(
        None, description="Cut documents into overlapping word windows (SQuAD-format default: 100/20)."
    )

    @model_validator(mode="after")
    def _one_source(self):
        given = [n for n in ("builtin", "squad", "pubmedqa", "jsonl") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("name exactly one suite source: 'builtin', 'squad', 'pubmedqa' or 'jsonl'")
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


class BM25Config(_Strict):
    kind: Literal["bm25"] = "bm25"
    k1: float = Field(1.5, gt=0, description="BM25 term-frequency saturation.")
    b: float = Field(0.75, ge=0, le=1, description="BM25 length normalisation.")
    backend: Literal["auto", "rank-bm25", "bm25s"] = Field(
        "auto",
        description="rank-bm25 (the reference Okapi BM25), bm25s (Lucene BM25), or auto: rank-bm25 below "
        "10,000 passages, bm25s from there (measured on COVID-QA: 230x the queries/s at 35k chunks, "
        "recall@10 0.810 against rank-bm25's 0.795).",
    )


class BuiltinEmbedder(_Strict):
    """A small sentence embedder trained (once, cached) on the suite's retrieval pairs."""

    epochs: float = Field(40.0, gt=0)
    learning_rate: float = Field(2e-3, gt=0)
    hidden_size: int = Field(64, ge=8)
    layers: int = Field(2, ge=1)
    batch_size: int = Field(32, ge=2)


class EmbedderConfig(_Strict):
    builtin: BuiltinEmbedder | None = None
    path: str | None = Field(None, description="A sentence-transformers hub id or local folder.")
    revision: str | None = None
    trust_remote_code: bool = False

    @model_validator(mode="after")
    def _one_source(self):
        if (self.builtin is None) == (self.path is None):
            raise ValueError("give exactly one of 'builtin' or 'path'")
        return self


class DenseConfig(_Strict):
    kind: Literal["dense"]
    embedder: EmbedderConfig = EmbedderConfig(builtin=BuiltinEmbedder())
    index: Literal["flat", "hnsw", "ivf"] = Field(
        "flat", description="FAISS index: exact flat, or approximate HNSW / IVF for large corpora."
    )
    hnsw_m: int = Field(32, ge=4)
    nlist: int = Field(256, ge=1, description="IVF cells.")
    nprobe: int = Field(16, ge=1, description="IVF cells searched per query.")
    batch_size: int = Field(64, ge=1, description="Encoding batch size.")


class HybridConfig(_Strict):
    kind: Literal["hybrid"]
    of: list[str] = Field(..., min_length=2, description="Names of the retrievers to fuse.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant.")
    depth: int = Field(100, ge=1, description="How deep each retriever's list goes into the fusion.")


RetrieverConfig = Annotated[BM25Config | DenseConfig | HybridConfig, Field(discriminator="kind")]


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
    metric: Metric
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
