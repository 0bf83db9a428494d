"""Fine-tuning arms: LoRA adapters trained with TRL and PEFT, each only when its key is missing.

Three methods, all TRL trainers with a PEFT `LoraConfig` (no training loop or loss of our own):

* ``sft``: `SFTTrainer` on prompt-completion pairs (the closed-book prompt, the answer), loss on
  the completion only.
* ``dpo``: `DPOTrainer` on (prompt, chosen, rejected). By default it starts from the SFT adapter,
  which TRL also copies as the frozen reference; from the base it gets a fresh LoRA.
* ``cpt``: continued pre-training, `SFTTrainer` with the causal-LM loss on raw documents.

An adapter's key hashes what determines it: the base model's identity, the training data, the
method, its hyperparameters, the seed, the adapter it starts from and the library versions. It is
trained in a temporary folder renamed into place, with a training record beside its weights.
CUDA with bf16 when present, the CPU otherwise, through the same code.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import random
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from harness import prompts
from harness.cache import building, cache_root, digest, folder_hash, library_versions
from suites.schema import Suite

TRAINING_RECORD = "ragvft_training.json"


def training_rows(suite: Suite, method: str, *, shuffle_seed: int | None = None) -> list[dict[str, str]]:
    """The method's training set in TRL's dataset formats, built from the suite's training sets.

    Completions start with a space and end (TRL appends it) with EOS, as the base model answers.
    `shuffle_seed` (SFT and DPO) shuffles the answers across questions: a negative control.
    """
    t = suite.training

    def answers(values: list[str]) -> list[str]:
        if shuffle_seed is not None:
            random.Random(shuffle_seed).shuffle(values)
        return values

    if method == "sft":
        return [
            {"prompt": prompts.closed_book(p.question), "completion": " " + a}
            for p, a in zip(t.sft, answers([p.answer for p in t.sft]))
        ]
    if method == "dpo":
        return [
            {"prompt": prompts.closed_book(p.question), "chosen": " " + a, "rejected": " " + p.rejected}
            for p, a in zip(t.preferences, answers([p.chosen for p in t.preferences]))
        ]
    if method == "cpt":
        return [{"text": d} for d in t.documents]
    if method == "judge":
        from harness.judge_data import judge_rows

        return judge_rows(suite, seed=0)  # its rows are part of the adapter key anyway
    raise ValueError(f"unknown adapter method {method!r}")


@dataclass
class AdapterJob:
    """One adapter to train: what determines it (`key()`) and where its base model loads from."""

    method: str
    base_identity: str
    base_path: str
    rows: list[dict[str, str]]
    hyper: dict
    seed: int
    init: AdapterJob | None = None  # DPO's starting adapter
    revision: str | None = None
    trust_remote_code: bool = False

    def key(self) -> str:
        return digest(
            {
                "method": self.method,
                "base": self.base_identity,
                "data": digest(self.rows, 32),
                "hyper": self.hyper,
                "seed": self.seed,
                "init": self.init.key() if self.init else None,
                "libs": library_versions(),
            }
        )

    def path(self, root: Path | None = None) -> Path:
        return (root or cache_root()) / "adapters" / f"{self.method}-{self.key()}"


@dataclass
class Adapter:
    """A ready adapter: where it is, its identity for cache keys, and how it came to be."""

    name: str
    path: Path
    identity: str
    status: str  # "trained" (this run), "cached", or "path" (a folder the config names)
    record: dict | None = None
    config: dict = field(default_factory=dict)


def ensure_adapter(job: AdapterJob, *, progress: bool = True, trained: list[str] | None = None) -> Adapter:
    """The adapter of `job`, trained first if its key is missing (and its `init` before it).

    `trained` collects the methods trained by this call, the starting adapter included.
    """
    init = ensure_adapter(job.init, progress=progress, trained=trained) if job.init else None
    path = job.path()
    status = "cached"
    if not path.is_dir():  # built in a temporary folder and renamed: present means complete
        with building(path) as tmp:
            _train(job, tmp, init.path if init else None, progress=progress)
        status = "trained"
        if trained is not None:
            trained.append(job.method)
    return Adapter(
        name=job.method,
        path=path,
        identity=f"{job.method}:{job.key()}",
        status=status,
        record=json.loads((path / TRAINING_RECORD).read_text()),
        config=_adapter_config(path),
    )


def existing_adapter(name: str, folder: Path) -> Adapter:
    """An adapter folder named by the config, identified by the hash of its files."""
    if not (folder / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{folder}: not a PEFT adapter folder (no adapter_config.json)")
    return Adapter(
        name=name,
        path=folder,
        identity=f"path:{folder_hash(folder)}",
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
    from peft import LoraConfig, PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from transformers.trainer_callback import PrinterCallback
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    from harness.device import training_precision
    from harness.progress import progress_bar

    if not job.rows:
        raise ValueError(f"the suite has no training data for {job.method!r}")
    h = job.hyper
    use_cpu, bf16 = training_precision()
    started = time.time()
    load = {"revision": job.revision, "trust_remote_code": job.trust_remote_code}
    tokenizer = AutoTokenizer.from_pretrained(job.base_path, **load)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(job.base_path, **load)
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
        progress_bar(f"training {job.method} adapter", total_steps, enabled=progress) as advance,
    ):

        class _Advance(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                advance(1)

        if job.method == "dpo":
            if init_path is not None:  # TRL copies this adapter as the frozen reference ("ref")
                model = PeftModel.from_pretrained(model, str(init_path), is_trainable=True)
            trainer = DPOTrainer(
                model=model,
                args=DPOConfig(**common, beta=h["beta"]),
                train_dataset=dataset,
                processing_class=tokenizer,
                peft_config=None if init_path is not None else lora,
            )
        else:
            trainer = SFTTrainer(
                model=model,
                args=SFTConfig(**common),
                train_dataset=dataset,
                processing_class=tokenizer,
                peft_config=lora,
            )
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
        "method": job.method,
        "key": job.key(),
        "base_model": job.base_identity,
        "init": job.init.key() if job.init else None,
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
    if job.method == "dpo":
        curve = [e for e in logs if "rewards/accuracies" in e]
        record["reward_curve"] = [
            {"step": e["step"], "accuracy": e["rewards/accuracies"], "margin": round(e["rewards/margins"], 4)}
            for e in curve
        ]
        record["reward_accuracy"] = curve[-1]["rewards/accuracies"] if curve else None
        record["reward_margin"] = round(curve[-1]["rewards/margins"], 4) if curve else None
    (out / TRAINING_RECORD).write_text(json.dumps(record, indent=2))
