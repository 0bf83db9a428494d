"""DPO: TRL's `DPOTrainer` on (prompt, right answer, plausible wrong answer). By default it starts
from the SFT adapter, which TRL also copies as the frozen reference; from the base, a fresh LoRA.
A full fine-tune trains every weight of where it starts (the base, or the SFT model) against a frozen
copy of it."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from harness.prompts import RAW, PromptFormat
from harness.training.method import AdapterTraining, TrainerInputs, TrainingMethod
from harness.training.sft import shuffled
from suites.schema import Suite

if TYPE_CHECKING:
    from trl import DPOTrainer


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

    # TRL's dpo.py recipes: lr 5e-6 with LoRA, 5e-7 full, over 1000 steps at 16 a step. A suite's few
    # hundred pairs make tens of steps, so the `model` profile takes 2 epochs at 2e-5 with LoRA (the
    # middle of the 5e-6..5e-5 people use for LoRA DPO) and 1e-6 full (DPOConfig's own default).
    MODEL = AdapterTraining.MODEL | {"epochs": 2, "learning_rate": 2e-5}
    FULL_LEARNING_RATE = 1e-6


def dpo_rows(suite: Suite, hyper: DPOTraining, seed: int, fmt: PromptFormat = RAW) -> list[dict]:
    """Preference rows in the model's prompt format (conversational for a chat model)."""
    pairs = suite.training.preferences
    chosen = shuffled([p.chosen for p in pairs], seed if hyper.shuffle_answers else None)
    return [fmt.preference_row(p.question, a, p.rejected) for p, a in zip(pairs, chosen, strict=True)]


def policy_and_reference(x: TrainerInputs) -> dict:
    """The `model`, `ref_model` and `peft_config` arguments of a TRL trainer that optimises against a
    reference (DPO, KTO): from the starting adapter when there is one (with LoRA, TRL copies it as the
    frozen reference "ref"; fully fine-tuned, it is merged into the base and every weight trains), else
    a fresh LoRA on the base. Without PEFT, TRL would load the reference from the base's path: the base,
    not the SFT model, and without its revision or quantisation; a copy of the start is the reference
    these methods mean."""
    from peft import PeftModel

    full = x.lora is None
    model = x.model
    if x.init_path is not None:
        model = PeftModel.from_pretrained(model, str(x.init_path), is_trainable=not full)
        if full:
            model = model.merge_and_unload()
    return {
        "model": model,
        "ref_model": copy.deepcopy(model) if full else None,
        "peft_config": None if x.init_path is not None else x.lora,
    }


def dpo_trainer(x: TrainerInputs) -> DPOTrainer:
    from trl import DPOConfig, DPOTrainer

    return DPOTrainer(
        **policy_and_reference(x),
        args=DPOConfig(**x.args, beta=x.hyper["beta"]),
        train_dataset=x.dataset,
        processing_class=x.tokenizer,
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
    data_help="preference pairs (a suite with pairs, or training.extra_preferences)",
)
