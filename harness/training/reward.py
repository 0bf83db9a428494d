"""A reward model: TRL's `RewardTrainer` on the suite's preference pairs, the base model as a sequence
classifier with one output (a LoRA and a new score head), trained so the right answer scores above the
wrong one. It is what RLHF (rlhf.py) optimises against, trained once and cached by its own key, and
never a variant itself: `training.reward` sets it, no variant names it.

A share of the pairs (`heldout`) is kept out of training: the record's pairwise accuracy on them is
how far the reward model can be trusted, reported on the RLHF adapter's card."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from pydantic import Field

from harness.prompts import RAW, PromptFormat
from harness.training.method import AdapterTraining, TrainerInputs, TrainingMethod, optimizer_steps
from suites.schema import Suite

if TYPE_CHECKING:
    from trl import RewardTrainer


class RewardTraining(AdapterTraining):
    """The reward model RLHF trains first: a LoRA and a score head on the base."""

    # The score head starts random, so many more passes than DPO's polish; the record's held-out
    # accuracy says how far to trust it (measured: docs/methods.md#rlhf-and-its-reward-model).
    epochs: float = Field(30, gt=0)
    learning_rate: float = Field(3e-3, gt=0)
    heldout: float = Field(
        0.2, ge=0, lt=1, description="Share of the preference pairs kept out to measure pairwise accuracy."
    )

    # TRL's reward_modeling.py recipe: LoRA at 1e-4 for one epoch; a suite's pairs are few, so 2.
    MODEL = AdapterTraining.MODEL | {"epochs": 2, "learning_rate": 1e-4}
    FULL_LEARNING_RATE = 1e-5


def reward_rows(suite: Suite, hyper: RewardTraining, seed: int, fmt: PromptFormat = RAW) -> list[dict]:
    """DPO's preference rows, each marked held out or not: a `heldout` share of the pairs, drawn with
    `seed`, at least one when there are two pairs or more (and never all of them)."""
    pairs = suite.training.preferences
    rows = [fmt.preference_row(p.question, p.chosen, p.rejected) for p in pairs]
    n = round(len(rows) * hyper.heldout)
    if hyper.heldout and len(rows) > 1:
        n = min(max(n, 1), len(rows) - 1)
    held = set(random.Random(seed).sample(range(len(rows)), min(n, max(len(rows) - 1, 0))))
    return [r | {"heldout": i in held} for i, r in enumerate(rows)]


def reward_trainer(x: TrainerInputs) -> RewardTrainer:
    """`RewardTrainer` with a fresh LoRA on the classifier (PEFT keeps the new score head trainable and
    saves it with the adapter). The held-out pairs are its evaluation set, scored every logging window
    and once more after the last step."""
    from transformers import TrainerCallback
    from trl import RewardConfig, RewardTrainer

    split = {
        held: x.dataset.filter(lambda r, h=held: r["heldout"] == h).remove_columns("heldout")
        for held in (False, True)
    }
    evaluate = len(split[True]) > 0

    class _EvaluateLast(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if evaluate and state.global_step == state.max_steps:
                control.should_evaluate = True

    trainer = RewardTrainer(
        model=x.model,
        args=RewardConfig(
            **x.args,
            eval_strategy="steps" if evaluate else "no",
            eval_steps=x.args["logging_steps"],
            per_device_eval_batch_size=x.args["per_device_train_batch_size"],
        ),
        train_dataset=split[False],
        eval_dataset=split[True] if evaluate else None,
        processing_class=x.tokenizer,
        peft_config=x.lora,
    )
    trainer.add_callback(_EvaluateLast())
    return trainer


def reward_record(logs: list[dict]) -> dict:
    """Pairwise accuracy and margin on the held-out pairs over training (the last: after the last
    step), and on the training pairs at the end."""
    held = [e for e in logs if "eval_accuracy" in e]
    train = [e for e in logs if "accuracy" in e]
    return {
        "heldout_curve": [
            {
                "step": e["step"],
                "accuracy": round(e["eval_accuracy"], 4),
                "margin": round(e["eval_margin"], 4),
            }
            for e in held
        ],
        "heldout_accuracy": round(held[-1]["eval_accuracy"], 4) if held else None,
        "heldout_margin": round(held[-1]["eval_margin"], 4) if held else None,
        "train_accuracy": round(train[-1]["accuracy"], 4) if train else None,
    }


METHOD = TrainingMethod(
    name="reward",
    config=RewardTraining,
    data=reward_rows,
    trainer=reward_trainer,
    record=reward_record,
    steps_per_epoch=lambda rows, hyper: optimizer_steps(sum(not r["heldout"] for r in rows), hyper),
    head="reward",
    data_help="preference pairs for its reward model (a suite with pairs, or training.extra_preferences)",
)
