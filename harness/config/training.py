"""The bench configuration's `training` section: one entry per training method (`training.sft`,
`training.dpo`, ...), each validated by the method's own config class from `harness.training.METHODS`
(see harness.config)."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, field_validator, model_validator

from core.errors import known
from harness.config.inputs import _Strict
from harness.training import METHODS, AdapterTraining

NOT_METHODS = ("extra_sft", "seeds")  # the fields of `training` that are not a method's section


class TrainingConfig(_Strict):
    model_config = ConfigDict(extra="allow", frozen=True)

    extra_sft: str | None = Field(
        None,
        description='A JSONL file of {"question", "answer"} rows added to the SFT pairs (relative to the '
        "config's folder). Checked for leakage like the rest.",
    )

    seeds: list[int] | None = Field(
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
    def _method_sections(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = {}
        for name, section in data.items():
            if name in NOT_METHODS:
                out[name] = section
                continue
            method = METHODS[known(name, METHODS, "training method")]
            if isinstance(section, method.config):
                out[name] = section
            elif section is None or isinstance(section, dict):
                out[name] = method.config(**(section or {}))
            else:
                raise ValueError(f"training.{name}: expected a mapping of settings")
        return out

    def hyper(self, method: str) -> AdapterTraining:
        """The method's settings: as the config gives them, else its defaults."""
        given = (self.model_extra or {}).get(method)
        return given if given is not None else METHODS[method].config()
