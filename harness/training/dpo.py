"""DPO: TRL's `DPOTrainer` on (prompt, right answer, plausible wrong answer). By default it starts
from the SFT adapter, which TRL also copies as the frozen reference; from the base, a fresh LoRA."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.prompts import RAW, PromptFormat
from harness.training.method import AdapterTraining, TrainerInputs, TrainingMethod
from harness.training.sft import shuffled
from suites.schema import Suite


class DPOTraining(AdapterTraining):
    """Direct preference optimisation on the suite's (question, right answer, wrong answer) triples."""

    epochs: float = Field(3, gt=0)
    learning_rate: float = Field(5e-4, gt=0)
    beta: float = Field(0.1, gt=0, description="DPO temperature: how far the policy may leave its reference.")
    shuffle_answers: bool = Field(
        False, description="Negative control: chosen answers shuffled across questions."
    )
    init: Literal["sft", "base"] = Field(
        "sft",
        description="Start from the SFT adapter (its LoRA settings apply; it is also the reference) "
        "or from the base model. From the base, a tiny model's answers collapsed in a trial here.",
    )


def dpo_rows(suite: Suite, hyper: DPOTraining, seed: int, fmt: PromptFormat = RAW) -> list[dict]:
    """Preference rows in the model's prompt format (conversational for a chat model)."""
    pairs = suite.training.preferences
    chosen = shuffled([p.chosen for p in pairs], seed if hyper.shuffle_answers else None)
    return [fmt.preference_row(p.question, a, p.rejected) for p, a in zip(pairs, chosen)]


def dpo_trainer(x: TrainerInputs):
    from peft import PeftModel
    from trl import DPOConfig, DPOTrainer

    model = x.model
    if x.init_path is not None:  # TRL copies this adapter as the frozen reference ("ref")
        model = PeftModel.from_pretrained(model, str(x.init_path), is_trainable=True)
    return DPOTrainer(
        model=model,
        args=DPOConfig(**x.args, beta=x.hyper["beta"]),
        train_dataset=x.dataset,
        processing_class=x.tokenizer,
        peft_config=None if x.init_path is not None else x.lora,
    )


def dpo_record(logs: list[dict]) -> dict:
    """The reward accuracy and margin TRL logs: did the policy learn to prefer the right answer?"""
    curve = [e for e in logs if "rewards/accuracies" in e]
    return {
        "reward_curve": [
            {"step": e["step"], "accuracy": e["rewards/accuracies"], "margin": round(e["rewards/margins"], 4)}
            for e in curve
        ],
        "reward_accuracy": curve[-1]["rewards/accuracies"] if curve else None,
        "reward_margin": round(curve[-1]["rewards/margins"], 4) if curve else None,
    }


METHOD = TrainingMethod(
    name="dpo",
    config=DPOTraining,
    data=dpo_rows,
    trainer=dpo_trainer,
    starts_from=lambda hyper: "sft" if hyper.init == "sft" else None,
    record=dpo_record,
)
