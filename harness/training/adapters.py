"""LoRA adapters (or fully fine-tuned models) trained with TRL and PEFT, each only when its key is
missing.

An adapter's key hashes what determines it: the base model's identity and how it is loaded (dtype,
4-bit quantisation), the training data, the method, its hyperparameters, the seed, the adapter it
starts from and the library versions. It is trained in a temporary folder renamed into place, with a
training record beside its weights. CUDA with bf16 when present, the CPU otherwise, through the same
code. The method (sft.py, dpo.py, ...) supplies the data and the TRL trainer; everything around the
trainer call is here, once.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import math
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from core.cache import building, cache_root, digest, library_versions, model_identity
from harness.builtin.shipped import shipped_adapter
from harness.engines.peft_files import soft_prompt
from harness.training.loading import load_for_training, max_length_of, peak_memory
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
    needs: dict[str, AdapterJob] = field(default_factory=dict)  # what its trainer reads (RLHF's reward)
    revision: str | None = None
    trust_remote_code: bool = False
    # How the base loads (`model.*`, `training.quantization`): the dtype and 4-bit quantisation change
    # what is trained, so they are in the key; where the weights sit and the attention kernel do not.
    dtype: str = "auto"
    quantization: str = "none"  # "4bit": QLoRA
    device_map: str | None = None
    attn_implementation: str = "auto"

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


def ensure_adapter(job: AdapterJob, *, progress: bool = True, trained: list[str] | None = None) -> Adapter:
    """The adapter of `job`, trained first if its key is missing (and its `init` before it).

    `trained` collects (method, seed) of every adapter trained by this call, the starting one included.
    """
    init = ensure_adapter(job.init, progress=progress, trained=trained) if job.init else None
    needs = {role: ensure_adapter(j, progress=progress, trained=trained) for role, j in job.needs.items()}
    path = job.path()
    status = "cached"
    if not path.is_dir() and (shipped := shipped_adapter(path.name)) is not None:
        with building(path) as tmp:  # built by maintainers from this very key (`make models`)
            shutil.copytree(shipped, tmp, dirs_exist_ok=True)
        status = "shipped"
    if not path.is_dir():  # built in a temporary folder and renamed: present means complete
        with building(path) as tmp:
            _train(job, tmp, init, progress=progress, needs={role: a.path for role, a in needs.items()})
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


def _train(
    job: AdapterJob, out: Path, init: Adapter | None, *, progress: bool, needs: dict[str, Path] | None = None
) -> None:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback

    from core.device import training_precision
    from core.progress import progress_bar

    if not job.rows:
        raise ValueError(f"the suite has no training data for {job.method.name!r}")
    h = job.hyper
    full = h["finetune"] == "full"
    use_cpu, bf16 = training_precision()
    if not use_cpu:
        torch.cuda.reset_peak_memory_stats()
    started = time.time()
    # A fully fine-tuned start is the model to load; a LoRA start goes onto the base in the trainer.
    start_full = init is not None and init.kind == "full"
    tokenizer, model = load_for_training(job, init.path if start_full else None)
    max_length, max_length_from = max_length_of(h["max_length"], job.rows, tokenizer, model)
    rows, prepared = job.method.prepare(job.rows, tokenizer, max_length, h)
    lora = None
    if job.method.peft is not None:  # the method's own PEFT config (a soft prompt), not a LoRA
        lora = job.method.peft(h, job.base_path, job.revision)
    elif not full:
        lora = LoraConfig(
            r=h["lora_r"],
            lora_alpha=h["lora_alpha"],
            lora_dropout=h["lora_dropout"],
            target_modules=h["target_modules"],
            task_type="SEQ_CLS" if job.method.head == "reward" else "CAUSAL_LM",
        )
    accumulation = h["gradient_accumulation_steps"]
    steps_per_epoch = job.method.steps_per_epoch(rows, h)
    total_steps = math.ceil(steps_per_epoch * h["epochs"])
    common = {
        "output_dir": str(out / "_trainer"),
        "num_train_epochs": h["epochs"],
        "per_device_train_batch_size": h["batch_size"],
        "gradient_accumulation_steps": accumulation,
        # transformers 5 names it activation checkpointing (`gradient_checkpointing*` are its deprecated
        # aliases). Non-reentrant, as PEFT needs: the frozen base's inputs carry no gradient.
        "activation_checkpointing": h["gradient_checkpointing"],
        "activation_checkpointing_kwargs": {"use_reentrant": False} if h["gradient_checkpointing"] else None,
        "learning_rate": h["learning_rate"],
        "lr_scheduler_type": "cosine",
        "warmup_steps": h["warmup_ratio"],  # transformers 5 reads a value below 1 as a ratio
        "logging_steps": max(1, total_steps // 50),
        "save_strategy": "no",
        "report_to": "none",
        "seed": job.seed,
        "data_seed": job.seed,
        "max_length": max_length,
        "disable_tqdm": True,
        "use_cpu": use_cpu,
        "bf16": bf16,
        "dataloader_num_workers": 0,
    }
    dataset = Dataset.from_list(rows)
    init_path = init.path if init is not None and not start_full else None
    with (
        _quiet_training(),
        progress_bar(f"training {job.method.name} adapter", total_steps, enabled=progress) as advance,
    ):

        class _Advance(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                advance(1)

        trainer = job.method.trainer(
            TrainerInputs(
                model,
                tokenizer,
                dataset,
                lora,
                common,
                h,
                init_path,
                needs or {},
                load_base=lambda head: load_for_training(job, None, head)[1],
            )
        )
        trainer.remove_callback(PrinterCallback)
        trainer.add_callback(_Advance())
        result = trainer.train()
        if full:  # a whole model, loadable as the base is (`from_pretrained`)
            trainer.model.save_pretrained(str(out))
            tokenizer.save_pretrained(str(out))
        else:
            trainer.model.save_pretrained(str(out), selected_adapters=["default"])
    shutil.rmtree(out / "_trainer", ignore_errors=True)
    wall = time.time() - started
    logs = trainer.state.log_history
    tokens = int(max((e.get("num_tokens", 0) for e in logs), default=0))
    record = {
        "kind": "adapter",
        "finetune": h["finetune"],
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
        "effective_batch_size": h["batch_size"] * accumulation,
        "gradient_checkpointing": h["gradient_checkpointing"],
        "max_length": max_length,
        "max_length_from": max_length_from,
        **prepared,
        "quantization": job.quantization,
        "dtype": str(model.dtype).removeprefix("torch."),
        "tokens": tokens,
        "train_runtime_s": round(result.metrics["train_runtime"], 2),
        "tokens_per_s": round(tokens / result.metrics["train_runtime"], 1),
        "wall_time_s": round(wall, 2),
        "device": "cuda" if not use_cpu else "cpu",
        "bf16": bf16,
        **peak_memory(not use_cpu),
        "trainable_parameters": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
        "final_loss": next((e["loss"] for e in reversed(logs) if "loss" in e), None),
        "loss_curve": [{"step": e["step"], "loss": round(e["loss"], 4)} for e in logs if "loss" in e],
        "libraries": library_versions(),
        "torch_threads": torch.get_num_threads(),
    }
    record |= job.method.record(logs)
    for role, folder in (needs or {}).items():  # what it trained against (RLHF: the reward model's accuracy)
        needed = json.loads((folder / TRAINING_RECORD).read_text())
        record[role] = {k: v for k, v in needed.items() if k not in ("libraries", "hyperparameters")}
    (out / TRAINING_RECORD).write_text(json.dumps(record, indent=2))
    # The generation phase loads the base again: this copy (and the trainer's optimiser state, the
    # DPO reference) must not stay behind in memory beside it.
    del trainer, model
    gc.collect()
    if not use_cpu:
        torch.cuda.empty_cache()
