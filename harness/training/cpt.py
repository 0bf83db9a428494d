"""Continued pre-training: TRL's `SFTTrainer` with the causal-LM loss on the suite's raw documents."""

from __future__ import annotations

from pydantic import Field

from harness.training.method import AdapterTraining, TrainingMethod
from harness.training.sft import sft_trainer
from suites.schema import Suite


class CPTTraining(AdapterTraining):
    """Continued pre-training: causal-LM loss on the suite's training documents."""

    epochs: float = Field(30, gt=0)
    learning_rate: float = Field(1e-3, gt=0)


def cpt_rows(suite: Suite, hyper: CPTTraining, seed: int, fmt=None) -> list[dict[str, str]]:
    """The documents as raw text (continued pre-training reads no template)."""
    return [{"text": d} for d in suite.training.documents]


METHOD = TrainingMethod(
    name="cpt",
    config=CPTTraining,
    data=cpt_rows,
    trainer=sft_trainer,  # a "text" dataset: SFTTrainer trains on every token
)
