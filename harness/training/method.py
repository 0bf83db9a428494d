"""What a training method is: a typed config with defaults and help, a data builder from a `Suite`,
and the TRL trainer call. One file per method (sft.py, dpo.py, ...), registered in
`harness.training.METHODS`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AdapterTraining(BaseModel):
    """LoRA fine-tuning through TRL. Every method's config extends this; defaults suit the built-in
    tiny model on the built-in domain."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: float = Field(..., gt=0, description="Passes over the training set.")
    learning_rate: float = Field(..., gt=0)
    batch_size: int = Field(16, ge=1)
    lora_r: int = Field(32, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(64, ge=1)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: str | list[str] = Field("all-linear", description="Modules LoRA adapts.")
    max_length: int = Field(256, ge=8, description="Longest training sequence in tokens.")
    warmup_ratio: float = Field(0.05, ge=0, lt=1)


@dataclass
class TrainerInputs:
    """What a method's trainer call gets: everything is ready, it picks its TRL trainer and config."""

    model: Any  # the base model, loaded
    tokenizer: Any
    dataset: Any  # a `datasets.Dataset` of the method's rows
    lora: Any  # the `peft.LoraConfig` from the hyperparameters
    args: dict  # TrainingArguments every method shares (output_dir, epochs, lr, seed, precision, ...)
    hyper: dict  # the method's config, as a dict
    init_path: Path | None  # the adapter this one starts from (`starts_from`), if any


@dataclass(frozen=True)
class TrainingMethod:
    """One way to train an adapter.

    `data(suite, hyper, seed, fmt)` returns the rows in TRL's dataset format, prompts in the base
    model's `harness.prompts.PromptFormat` (raw text, or TRL's conversational format for a chat model); `trainer(inputs)` returns a
    TRL trainer ready to `train()`; `starts_from(hyper)` names another method whose adapter this one
    starts from (DPO from SFT), or None; `record(log_history)` adds method-specific figures to the
    training record.
    """

    name: str
    config: type[AdapterTraining]
    data: Callable[..., list[dict]]
    trainer: Callable[[TrainerInputs], Any]
    starts_from: Callable[[AdapterTraining], str | None] = lambda hyper: None
    record: Callable[[list[dict]], dict] = lambda logs: {}
