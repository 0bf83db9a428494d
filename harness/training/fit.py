"""One training run of an adapter (or a full fine-tune): the base loaded as a run loads it, the rows
sized, the method's TRL trainer called with the arguments every method shares behind one progress bar,
what it trained saved, and the training record written beside it. `adapters.ensure_adapter` calls it
when a key is missing."""

from __future__ import annotations

import contextlib
import gc
import json
import math
import shutil
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.cache import library_versions
from harness.training.job import TRAINING_RECORD
from harness.training.loading import load_for_training, max_length_of, peak_memory
from harness.training.method import TrainerInputs

if TYPE_CHECKING:
    from harness.training.job import Adapter, AdapterJob


@contextlib.contextmanager
def _quiet_training() -> Iterator[None]:
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


def train(
    job: AdapterJob, out: Path, init: Adapter | None, *, progress: bool, needs: dict[str, Path] | None = None
) -> None:
    """Train `job` into `out`: load, size the rows, fit with the method's trainer, write the record."""
    import torch
    from datasets import Dataset

    from core.device import training_precision

    if not job.rows:
        raise ValueError(f"the suite has no training data for {job.method.name!r}")
    h = job.hyper
    use_cpu, bf16 = training_precision()
    if not use_cpu:
        torch.cuda.reset_peak_memory_stats()
    started = time.time()
    # A fully fine-tuned start is the model to load; a LoRA start goes onto the base in the trainer.
    start = init.path if init is not None and init.kind == "full" else None
    tokenizer, model = load_for_training(job, start)
    max_length, max_length_from = max_length_of(h["max_length"], job.rows, tokenizer, model)
    rows, prepared = job.method.prepare(job.rows, tokenizer, max_length, h)
    peft = _peft_config(job)
    total_steps = math.ceil(job.method.steps_per_epoch(rows, h) * h["epochs"])
    args = _trainer_args(job, out, max_length, total_steps, use_cpu, bf16)
    dataset = Dataset.from_list(rows)
    init_path = init.path if init is not None and start is None else None
    inputs = TrainerInputs(
        model,
        tokenizer,
        dataset,
        peft,
        args,
        h,
        init_path,
        needs or {},
        load_base=lambda head: load_for_training(job, None, head)[1],
    )
    trainer, result = _fit(job, inputs, out, total_steps, progress)
    shutil.rmtree(out / "_trainer", ignore_errors=True)
    wall = time.time() - started
    sizing = {"max_length": max_length, "max_length_from": max_length_from, **prepared}
    record = _record(job, trainer, result, sizing, str(model.dtype), wall, (use_cpu, bf16))
    for role, folder in (needs or {}).items():  # what it trained against (RLHF: the reward model's accuracy)
        needed = json.loads((folder / TRAINING_RECORD).read_text())
        record[role] = {k: v for k, v in needed.items() if k not in ("libraries", "hyperparameters")}
    (out / TRAINING_RECORD).write_text(json.dumps(record, indent=2))
    # The generation phase loads the base again: this copy (and the trainer's optimiser state, the
    # DPO reference) must not stay behind in memory beside it.
    del trainer, model, inputs
    gc.collect()
    if not use_cpu:
        torch.cuda.empty_cache()


def _peft_config(job: AdapterJob) -> Any:
    """The PEFT config to train: the method's own (a soft prompt), a LoRA from the hyperparameters, or
    None for a full fine-tune."""
    from peft import LoraConfig

    h = job.hyper
    if job.method.peft is not None:  # the method's own PEFT config (a soft prompt), not a LoRA
        return job.method.peft(h, job.base_path, job.revision)
    if h["finetune"] == "full":
        return None
    return LoraConfig(
        r=h["lora_r"],
        lora_alpha=h["lora_alpha"],
        lora_dropout=h["lora_dropout"],
        target_modules=h["target_modules"],
        task_type="SEQ_CLS" if job.method.head == "reward" else "CAUSAL_LM",
    )


def _trainer_args(
    job: AdapterJob, out: Path, max_length: int, total_steps: int, use_cpu: bool, bf16: bool
) -> dict[str, Any]:
    """The TrainingArguments every method shares."""
    h = job.hyper
    return {
        "output_dir": str(out / "_trainer"),
        "num_train_epochs": h["epochs"],
        "per_device_train_batch_size": h["batch_size"],
        "gradient_accumulation_steps": h["gradient_accumulation_steps"],
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


def _fit(job: AdapterJob, inputs: TrainerInputs, out: Path, total_steps: int, progress: bool) -> tuple[Any, Any]:
    """(trainer, its train() result): the method's TRL trainer run behind one progress bar, and what
    it trained saved in `out` (the adapter, or a whole model loadable as the base is)."""
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback

    from core.progress import progress_bar

    with (
        _quiet_training(),
        progress_bar(f"training {job.method.name} adapter", total_steps, enabled=progress) as advance,
    ):

        class _Advance(TrainerCallback):
            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                advance(1)

        trainer = job.method.trainer(inputs)
        trainer.remove_callback(PrinterCallback)
        trainer.add_callback(_Advance())
        result = trainer.train()
        if job.hyper["finetune"] == "full":  # a whole model, loadable as the base is (`from_pretrained`)
            trainer.model.save_pretrained(str(out))
            inputs.tokenizer.save_pretrained(str(out))
        else:
            trainer.model.save_pretrained(str(out), selected_adapters=["default"])
    return trainer, result


def _record(
    job: AdapterJob,
    trainer: Any,
    result: Any,
    sizing: dict[str, Any],
    dtype: str,
    wall: float,
    precision: tuple[bool, bool],
) -> dict[str, Any]:
    """The training record: what was trained, how (`sizing`: the rows' max length and what `prepare`
    did), how long, on what, and the loss curve, with the method's own figures."""
    import torch

    h, (use_cpu, bf16) = job.hyper, precision
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
        "effective_batch_size": h["batch_size"] * h["gradient_accumulation_steps"],
        "gradient_checkpointing": h["gradient_checkpointing"],
        **sizing,
        "quantization": job.quantization,
        "dtype": dtype.removeprefix("torch."),
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
    return record | job.method.record(logs)
