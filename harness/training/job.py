"""What an adapter is before and after training: the job that determines it (`AdapterJob`, its key
and folder) and the ready adapter (`Adapter`), with the name of the training record beside its
weights."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.cache import cache_root, digest, library_versions
from harness.engines.types import LoadSpec
from harness.training.method import TrainingMethod

TRAINING_RECORD = "ragvft_training.json"


@dataclass
class AdapterJob:
    """One adapter to train: what determines it (`key()`) and where its base model loads from."""

    method: TrainingMethod
    base_identity: str
    base_path: str
    rows: list[dict[str, str]]
    hyper: dict
    seed: int
    init: AdapterJob | None = None  # the adapter this one starts from (DPO's SFT)
    needs: dict[str, AdapterJob] = field(default_factory=dict)  # what its trainer reads (RLHF's reward)
    revision: str | None = None
    trust_remote_code: bool = False
    # How the base loads (`model.*`, `training.quantization`): the dtype and 4-bit quantisation change
    # what is trained, so they are in the key; where the weights sit and the attention kernel do not.
    dtype: str = "auto"
    quantization: str = "none"  # "4bit": QLoRA
    device_map: str | None = None
    attn_implementation: str = "auto"

    @property
    def load_spec(self) -> LoadSpec:
        """How the base loads for training: where it is and `model.*`'s settings (not 4-bit: that is
        `quantization`, which only training has)."""
        return LoadSpec(
            self.base_path,
            self.revision,
            self.trust_remote_code,
            self.dtype,
            self.device_map,
            self.attn_implementation,
        )

    def key(self) -> str:
        what = {
            "method": self.method.name,
            "base": self.base_identity,
            "dtype": self.dtype,
            "quantization": self.quantization,
            "data": digest(self.rows, 32),
            "hyper": self.hyper,
            "seed": self.seed,
            "init": self.init.key() if self.init else None,
            "libs": library_versions(),
        }
        if self.needs:  # only where there are any: every other adapter keeps the key it had
            what["needs"] = {role: job.key() for role, job in sorted(self.needs.items())}
        return digest(what)

    def path(self, root: Path | None = None) -> Path:
        return (root or cache_root()) / "adapters" / f"{self.method.name}-{self.key()}"


@dataclass
class Adapter:
    """A ready adapter: where it is, its identity for cache keys, and how it came to be. A `full` one
    is a whole model (`save_pretrained` weights and tokenizer): loaded as a model of its own, never
    as a LoRA on the base. A `prompt` one is a soft prompt (PEFT prompt learning: prompt or prefix
    tuning), which PEFT cannot load beside LoRA adapters: it generates on an engine of its own."""

    name: str
    path: Path
    identity: str
    status: str  # "trained" (this run), "cached", "shipped" (with the project), or "path" (a folder the
    # config names)
    record: dict | None = None
    config: dict = field(default_factory=dict)
    seed: int | None = None  # the training seed (None: a folder the config names)
    kind: str = "lora"  # "lora" (a PEFT adapter folder), "full" (a fully fine-tuned model folder) or
    # "prompt" (a PEFT soft-prompt folder)

    @property
    def alone(self) -> bool:
        """Whether it cannot go on the shared engine beside the LoRA adapters (a full fine-tune, a soft
        prompt): it runs on an engine of its own (`LazyEngine.alone`)."""
        return self.kind != "lora"

    def manifest(self) -> dict:
        """What a run's manifest says of this adapter."""
        return {
            "kind": self.kind,
            "source": self.status,
            "identity": self.identity,
            "path": str(self.path),
            "config": self.config,
            "training": self.record,
            "seed": self.seed,
        }
