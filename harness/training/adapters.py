"""LoRA adapters (or fully fine-tuned models) trained with TRL and PEFT, each only when its key is
missing.

An adapter's key hashes what determines it: the base model's identity and how it is loaded (dtype,
4-bit quantisation), the training data, the method, its hyperparameters, the seed, the adapter it
starts from and the library versions. It is trained in a temporary folder renamed into place, with a
training record beside its weights. CUDA with bf16 when present, the CPU otherwise, through the same
code. The method (sft.py, dpo.py, ...) supplies the data and the TRL trainer; everything around the
trainer call is in `fit.py`, once.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from core.cache import build_once, model_identity
from harness.builtin.shipped import shipped_adapter
from harness.engines.peft_files import soft_prompt
from harness.training.fit import train
from harness.training.job import TRAINING_RECORD, Adapter, AdapterJob

__all__ = ["TRAINING_RECORD", "Adapter", "AdapterJob", "adapter_kind", "ensure_adapter", "existing_adapter"]


def ensure_adapter(job: AdapterJob, *, progress: bool = True, trained: list[tuple[str, int]] | None = None) -> Adapter:
    """The adapter of `job`, trained first if its key is missing (and its `init` before it).

    `trained` collects (method, seed) of every adapter trained by this call, the starting one included.
    """
    init = ensure_adapter(job.init, progress=progress, trained=trained) if job.init else None
    needs = {role: ensure_adapter(j, progress=progress, trained=trained) for role, j in job.needs.items()}
    path = job.path()
    status = "cached"
    what = f"the adapter {path.name}"  # one run builds it, another waits for it (build_once)
    if not path.is_dir() and (shipped := shipped_adapter(path.name)) is not None:
        # built by maintainers from this very key (`make models`)
        if build_once(path, lambda tmp: shutil.copytree(shipped, tmp, dirs_exist_ok=True), what=what):
            status = "shipped"
    needed = {role: a.path for role, a in needs.items()}
    # built in a temporary folder and renamed: present means complete
    if build_once(path, lambda tmp: train(job, tmp, init, progress=progress, needs=needed), what=what):
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
        kind="full" if job.hyper["finetune"] == "full" else adapter_kind(path),
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
        kind=adapter_kind(folder),
    )


def adapter_kind(folder: Path) -> str:
    """ "prompt" for a PEFT soft-prompt folder (its `peft_type` one of prompt learning's), else "lora"."""
    return "prompt" if soft_prompt(_read_json(folder / "adapter_config.json") or {}) else "lora"


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _adapter_config(folder: Path) -> dict:
    cfg = _read_json(folder / "adapter_config.json") or {}
    keep = (
        "peft_type",
        "r",
        "lora_alpha",
        "lora_dropout",
        "target_modules",
        "task_type",
        "num_virtual_tokens",
    )
    return {k: cfg[k] for k in keep if k in cfg} | {"weights_sha256": _weights_hash(folder)}


def _weights_hash(folder: Path) -> str | None:
    weights = folder / "adapter_model.safetensors"
    if not weights.is_file():
        return None
    return hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
