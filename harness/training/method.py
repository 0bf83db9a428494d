"""What a training method is: a typed config with defaults and help, a data builder from a `Suite`,
and the TRL trainer call. One file per method (sft.py, dpo.py, ...), registered in
`harness.training.METHODS`."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

Profile = Literal["builtin", "model"]


class AdapterTraining(BaseModel):
    """Fine-tuning through TRL: a LoRA adapter (PEFT) or the whole model. Every method's config extends
    this. The field defaults are the `builtin` profile, the recipe of the built-in tiny model on the
    built-in domain; `MODEL` holds the `model` profile's, for a user's own 1-8B model on one GPU (see
    `of_profile`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: float = Field(..., gt=0, description="Passes over the training set.")
    learning_rate: float = Field(..., gt=0)
    batch_size: int = Field(16, ge=1, description="Rows per device per forward pass.")
    gradient_accumulation_steps: int = Field(
        1,
        ge=1,
        description="Forward passes per optimiser step: the effective batch is batch_size times this.",
    )
    # TRL's own default, so the built-in recipe trains as it did before this was a setting.
    gradient_checkpointing: bool = Field(
        True, description="Recompute activations in the backward pass: less memory, about 20-30% slower."
    )
    finetune: Literal["lora", "full"] = Field(
        "lora",
        description="lora: a LoRA adapter on the frozen base; full: every weight trained, the whole model saved.",
    )
    lora_r: int = Field(32, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(64, ge=1)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: str | list[str] = Field("all-linear", description="Modules LoRA adapts.")
    max_length: int | None = Field(
        256,
        ge=8,
        description="Longest training sequence in tokens; null: the longest training row, capped at the "
        "model's context.",
    )
    warmup_ratio: float = Field(0.05, ge=0, lt=1)

    # The `model` profile, from TRL and PEFT practice: LoRA r 16, alpha 32, dropout 0.05 (TRL's
    # ModelConfig defaults); lr 2e-4 for LoRA and 2e-5 for full fine-tuning (TRL's sft.py recipes);
    # 4 rows a device, 16 a step; sequences as long as the data needs; gradient checkpointing on, as in
    # both profiles.
    MODEL: ClassVar[dict[str, Any]] = {
        "learning_rate": 2e-4,
        "batch_size": 4,
        "gradient_accumulation_steps": 4,
        "lora_r": 16,
        "lora_alpha": 32,
        "lora_dropout": 0.05,
        "max_length": None,
    }
    FULL_LEARNING_RATE: ClassVar[float] = 2e-5  # the `model` profile's with `finetune: full`

    @classmethod
    def of_profile(cls, profile: Profile, given: AdapterTraining | None = None) -> AdapterTraining:
        """The settings a run trains with: what the user set in `given` (its fields set, never its
        defaults) over the profile's defaults. A full fine-tune that leaves `learning_rate` unset gets
        the profile's full-model rate: every weight moves, so it takes a tenth of a LoRA's."""
        explicit = given.model_dump(exclude_unset=True) if given is not None else {}
        if profile == "builtin":
            return cls(**explicit)
        defaults = dict(cls.MODEL)
        if explicit.get("finetune") == "full":
            defaults["learning_rate"] = cls.FULL_LEARNING_RATE
        return cls(**(defaults | explicit))

    def settings(self) -> dict[str, Any]:
        """Every setting, defaults included: what an adapter's key, its record and a manifest hold."""
        return {name: getattr(self, name) for name in type(self).model_fields}

    def problem(self) -> str | None:
        """What is wrong with these settings together, checked once they are resolved under a profile
        (a field's own limits are checked at load, but a pair of them can clash only with the
        profile's defaults in); None when nothing is."""
        return None


def optimizer_steps(rows: int, hyper: dict) -> int:
    """Optimiser steps in a pass over `rows` rows: a batch a forward pass, the last one short, and
    `gradient_accumulation_steps` passes a step, the last one short too (as transformers counts)."""
    return math.ceil(math.ceil(rows / hyper["batch_size"]) / hyper["gradient_accumulation_steps"])


@dataclass
class TrainerInputs:
    """What a method's trainer call gets: everything is ready, it picks its TRL trainer and config."""

    model: Any  # the base model, loaded
    tokenizer: Any
    dataset: Any  # a `datasets.Dataset` of the method's rows
    lora: Any  # the PEFT config: a `peft.LoraConfig` from the hyperparameters, or the method's own
    # (`TrainingMethod.peft`: a soft prompt's); None for a full fine-tune
    args: dict  # TrainingArguments every method shares (output_dir, epochs, lr, seed, precision, ...)
    hyper: dict  # the method's config, as a dict
    init_path: Path | None  # the LoRA adapter this one starts from (`starts_from`); a full model it
    # starts from is `model` itself
    needs: dict[str, Path] = field(default_factory=dict)  # role -> folder of each artifact `needs` named
    # (RLHF's reward model)
    load_base: Callable[[str], Any] | None = None  # the base model loaded again with another head,
    # as a run loads it ("reward": RLHF's reward model, whose adapter goes on it)


@dataclass(frozen=True)
class TrainingMethod:
    """One way to train an adapter.

    `data(suite, hyper, seed, fmt)` returns the rows in TRL's dataset format, prompts in the base
    model's `harness.prompts.PromptFormat` (raw text, or TRL's conversational format for a chat
    model); `trainer(inputs)` returns a TRL trainer ready to `train()`; `starts_from(hyper)` names
    another method whose adapter this one starts from (DPO from SFT), or None; `record(log_history)`
    adds method-specific figures to the training record; `prepare(rows, tokenizer, max_length, hyper)`
    turns the rows into what the trainer reads (CPT: token windows) and says what it did for the
    record; by default the rows as they are.

    `needs(hyper)` names other trained artifacts its trainer reads, by role (RLHF: {"reward":
    "reward"}, a reward model trained first and cached by its own key); `steps_per_epoch(rows,
    hyper)` is how many optimiser steps a pass over the rows makes, for the progress bar (by default
    a batch of rows a forward pass; RL samples several completions per prompt); `head`
    is the model class trained: "causal-lm", or "reward" (`AutoModelForSequenceClassification` with
    one output); `data_help` says what data it needs and where a user gets it, for the one-line error
    when a suite has none.

    `peft(hyper, base_path, revision)` builds the method's own PEFT config instead of the LoRA every
    other method trains (soft prompts: `PromptTuningConfig`, `PrefixTuningConfig`); None: a LoRA from
    the `lora_*` settings. `adapter_kind` says what the adapter is, known before anything trains (the
    config checks that an engine can serve it): "lora", or "prompt" for a soft prompt (PEFT prompt
    learning), which generates on an engine of its own (`harness.run.generate`).
    """

    name: str
    config: type[AdapterTraining]
    data: Callable[..., list[dict]]
    trainer: Callable[[TrainerInputs], Any]
    # `hyper` below: the method's own `config` (a subclass of AdapterTraining), hence Any
    starts_from: Callable[[Any], str | None] = lambda hyper: None
    record: Callable[[list[dict]], dict] = lambda logs: {}
    prepare: Callable[[list[dict], Any, int, dict], tuple[list[dict], dict]] = (
        lambda rows, tokenizer, max_length, hyper: (rows, {})
    )
    needs: Callable[[Any], dict[str, str]] = lambda hyper: {}
    steps_per_epoch: Callable[[list[dict], dict], int] = lambda rows, hyper: optimizer_steps(len(rows), hyper)
    head: Literal["causal-lm", "reward"] = "causal-lm"
    data_help: str = "training pairs (the suite's, or training.extra_sft)"
    peft: Callable[[dict, str, str | None], Any] | None = None
    adapter_kind: Literal["lora", "prompt"] = "lora"
