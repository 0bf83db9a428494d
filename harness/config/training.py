"""The bench configuration's `training` section: one entry per training method (`training.sft`,
`training.dpo`, ...), each validated by the method's own config class from `harness.training.SECTIONS`
(see harness.config), over the defaults of the profile the model calls for (`training.profile`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from core.errors import known
from core.paths import ConfigPath
from harness.config.inputs import ModelConfig, Seed, _Strict
from harness.training import SECTIONS, AdapterTraining
from harness.training.method import Profile

# The fields of `training` that are not a method's section
NOT_METHODS = ("extra_sft", "extra_preferences", "seeds", "profile", "quantization")


class TrainingConfig(_Strict):
    model_config = ConfigDict(extra="allow", frozen=True)

    extra_sft: ConfigPath | None = Field(
        None,
        description='A JSONL file of {"question", "answer"} rows added to the SFT pairs (relative to the '
        "config's folder). Checked for leakage like the rest.",
    )
    extra_preferences: ConfigPath | None = Field(
        None,
        description='A JSONL or .jsonl.gz file of preference pairs added to the suite\'s: {"question", '
        '"chosen", "rejected"} rows or Anthropic HH-RLHF {"chosen", "rejected"} dialogues (relative to the '
        "config's folder). DPO, KTO, ORPO and the built-in judge train on them; checked for leakage.",
    )

    profile: Literal["auto", "builtin", "model"] = Field(
        "auto",
        description="Whose defaults every method's settings start from: builtin (the built-in tiny model's "
        "recipe: many epochs at a high rate, LoRA r 32) or model (a user's 1-8B model on one GPU: LoRA r 16, "
        "lr 2e-4, a few epochs, 16 rows a step). auto: builtin for `model.builtin`, else model. What "
        "`training.<method>` sets always wins.",
    )

    quantization: Literal["none", "4bit"] = Field(
        "none",
        description="4bit: QLoRA, the frozen base in NF4 through bitsandbytes (CUDA only; LoRA only).",
    )

    seeds: list[Seed] | None = Field(
        None,
        min_length=1,
        description="Train every adapter once per seed (each cached by its key), so a variant's interval "
        "covers training-seed noise as well as question sampling. Default: the run's seed alone.",
    )

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, seeds: list[int] | None) -> list[int] | None:
        if seeds is not None and len(set(seeds)) != len(seeds):
            raise ValueError("seeds must be distinct")
        return seeds

    @model_validator(mode="before")
    @classmethod
    def _method_sections(cls, data: Any, info: ValidationInfo) -> Any:
        """Each method's section validated by its own config class, in the same context (the config's
        folder: a section's paths are resolved like every other)."""
        if not isinstance(data, dict):
            return data
        out = {}
        for name, section in data.items():
            if name in NOT_METHODS:
                out[name] = section
                continue
            method = SECTIONS[known(name, SECTIONS, "training method")]
            if isinstance(section, method.config):
                out[name] = section
            elif section is None or isinstance(section, dict):
                out[name] = method.config.model_validate(section or {}, context=info.context)
            else:
                raise ValueError(f"training.{name}: expected a mapping of settings")
        return out

    def profile_of(self, model: ModelConfig) -> Profile:
        """The profile in force: as set, or for auto the built-in model's when it is the base."""
        if self.profile != "auto":
            return self.profile
        return "builtin" if model.builtin is not None else "model"

    def hyper(self, method: str, model: ModelConfig) -> AdapterTraining:
        """The method's settings: what the config sets, over the defaults of `model`'s profile."""
        return SECTIONS[method].config.of_profile(
            self.profile_of(model), (self.model_extra or {}).get(method)
        )
