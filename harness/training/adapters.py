"""LoRA adapters trained with TRL and PEFT, each only when its key is missing.

An adapter's key hashes what determines it: the base model's identity, the training data, the
method, its hyperparameters, the seed, the adapter it starts from and the library versions. It is
trained in a temporary folder renamed into place, with a training record beside its weights.
CUDA with bf16 when present, the CPU otherwise, through the same code. The method (sft.py, dpo.py,
...) supplies the data and the TRL trainer; everything around the trainer call is here, once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from core.cache import building, cache_root, digest, library_versions, model_identity
from harness.training.method import TrainerInputs, TrainingMethod

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
    revision: str | None = None
    trust_remote_code: bool = False

    def key(self) -> str:
        return digest(
            {
                "method": self.method.name,
                "base": self.base_identity,
                "data": digest(self.rows, 32),
                "hyper": self.hyper,
                "seed": self.seed,
                "init": self.init.key() if self.init else None,
                "libs": library_versions(),
            }
        )

    def path(self, root: Path | None = None) -> Path:
        return (root or cache_root()) / "adapters" / f"{self.method.name}-{self.key()}"


@dataclass
class Adapter:
    """A ready adapter: where it is, its identity for cache keys, and how it came to be."""

    name: str
    path: Path
    identity: str
    status: str  # "trained" (this run), "cached", or "path" (a folder the config names)
    record: dict | None = None
    config: dict = field(default_factory=dict)
    seed: int | None = None  # the training seed (None: a folder the config names)

    def manifest(self) -> dict:
        """What a run's manifest says of this adapter."""
        return {
            "source": self.status,
            "identity": self.identity,
            "path": str(self.path),
            "config": self.config,
            "training": self.record,
            "seed": self.seed,
        }


def ensure_adapter(job: AdapterJob, *, progress: bool = True, trained: list[str] | None = None) -> Adapter:
    """The adapter of `job`, trained first if its key is missing (and its `init` before it).

    `trained` collects (method, seed) of every adapter trained by this call, the starting one included.
    """
    init = ensure_adapter(job.init, progress=progress, trained=trained) if job.init else None
    path = job.path()
    status = "cached"
    if not path.is_dir():  # built in a temporary folder and renamed: present means complete
        with building(path) as tmp:
            _train(job, tmp, init.path if init else None, progress=progress)
        status = "trained"
        if trained is not None:
            trained.append((job.method.name, job.seed))
    return Adapter(
        name=job.method.name,
        path=path,
        identity=f"{job.method.name}:{job.key()}",
        status=status,
        record=json.loads((path / TRAINING_RECORD).read_text()),
        config=_adapter_config(path),
        seed=job.seed,
    )


def existing_adapter(name: str, folder: Path) -> Adapter:
    """An adapter folder named by the config, identified by the hash of its files."""
    if not (folder / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{folder}: not a PEFT adapter folder (no adapter_config.json)")
    return Adapter(
        name=name,
        path=folder,
        identity=model_identity(str(folder)),
        status="path",
        record=_read_json(folder / TRAINING_RECORD),
        config=_adapter_config(folder),
    )


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _adapter_config(folder: Path) -> dict:
    cfg = _read_json(folder / "adapter_config.json") or {}
    keep = ("peft_type", "r", "lora_alpha", "lora_dropout", "target_modules", "task_type")
    return {k: cfg[k] for k in keep if k in cfg} | {"weights_sha256": _weights_hash(folder)}


def _weights_hash(folder: Path) -> str | None:
    weights = folder / "adapter_model.safetensors"
    if not weights.is_file():
        return None
    return hashlib.sha256(weights.read_bytes()).hexdigest()[:16]


@contextlib.contextmanager
def _quiet_training():
    """TRL and transformers print per-log dicts, dataset-map bars and deprecation warnings between
    themselves; ragvft shows one progress bar of its own instead."""
    import datasets

    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        try:
            yield
        finally:
            if bars:
                datasets.enable_progress_bars()


def _train(job: AdapterJob, out: Path, init_path: Path | None, *, progress: bool) -> None:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback

    from core.device import training_precision
    from core.progress import progress_bar
    from harness.engines.hf import load_causal_lm

    if not job.rows:
        raise ValueError(f"the suite has no training data for {job.method.name!r}")
    h = job.hyper
    use_cpu, bf16 = training_precision()
    started = time.time()
    tokenizer, model = load_causal_lm(
        job.base_path, revision=job.revision, trust_remote_code=job.trust_remote_code
    )
    lora = LoraConfig(
        r=h["lora_r"],
        lora_alpha=h["lora_alpha"],
        lora_dropout=h["lora_dropout"],
        target_modules=h["target_modules"],
        task_type="CAUSAL_LM",
    )
    steps_per_epoch = math.ceil(len(job.rows) / h["batch_size"])
    total_steps = math.ceil(steps_per_epoch * h["epochs"])
    common = {
        "output_dir": str(out / "_trainer"),
        "num_train_epochs": h["epochs"],
        "per_device_train_batch_size": h["batch_size"],
        "learning_rate": h["learning_rate"],
        "lr_scheduler_type": "cosine",
        "warmup_steps": h["warmup_ratio"],  # transformers 5 reads a value below 1 as a ratio
        "logging_steps": max(1, total_steps // 50),
        "save_strategy": "no",
        "report_to": "none",
        "seed": job.seed,
        "data_seed": job.seed,
        "max_length": h["max_length"],
        "disable_tqdm": True,
        "use_cpu": use_cpu,
        "bf16": bf16,
        "dataloader_num_workers": 0,
    }
    dataset = Dataset.from_list(job.rows)
    with (
        _quiet_training(),
        progress_bar(f"training {job.method.name} adapter", total_steps, enabled=progress) as advance,
    ):

        class _Advance(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                advance(1)

        trainer = job.method.trainer(TrainerInputs(model, tokenizer, dataset, lora, common, h, init_path))
        trainer.remove_callback(PrinterCallback)
        trainer.add_callback(_Advance())
        result = trainer.train()
        trainer.model.save_pretrained(str(out), selected_adapters=["default"])
    shutil.rmtree(out / "_trainer", ignore_errors=True)
    wall = time.time() - started
    logs = trainer.state.log_history
    tokens = int(max((e.get("num_tokens", 0) for e in logs), default=0))
    record = {
        "kind": "adapter",
        "method": job.method.name,
        "key": job.key(),
        "base_model": job.base_identity,
        "init": job.init.key() if job.init else None,
        "init_method": job.init.method.name if job.init else None,
        "hyperparameters": h,
        "seed": job.seed,
        "examples": len(job.rows),
        "steps": trainer.state.global_step,
        "epochs": h["epochs"],
        "tokens": tokens,
        "train_runtime_s": round(result.metrics["train_runtime"], 2),
        "tokens_per_s": round(tokens / result.metrics["train_runtime"], 1),
        "wall_time_s": round(wall, 2),
        "device": "cuda" if not use_cpu else "cpu",
        "bf16": bf16,
        "trainable_parameters": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
        "final_loss": next((e["loss"] for e in reversed(logs) if "loss" in e), None),
        "loss_curve": [{"step": e["step"], "loss": round(e["loss"], 4)} for e in logs if "loss" in e],
        "libraries": library_versions(),
        "torch_threads": torch.get_num_threads(),
    }
    record |= job.method.record(logs)
    (out / TRAINING_RECORD).write_text(json.dumps(record, indent=2))
