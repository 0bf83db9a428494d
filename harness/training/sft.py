"""SFT: TRL's `SFTTrainer` on (closed-book prompt, answer) pairs, loss on the answer only."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from pydantic import Field

from harness.prompts import RAW, PromptFormat
from harness.training.method import AdapterTraining, TrainerInputs, TrainingMethod
from suites.schema import Suite

if TYPE_CHECKING:
    from trl import SFTTrainer


class SFTTraining(AdapterTraining):
    """Supervised fine-tuning on the suite's question-answer pairs (loss on the answer only)."""

    epochs: float = Field(40, gt=0)
    learning_rate: float = Field(3e-3, gt=0)
    shuffle_answers: bool = Field(
        False,
        description="Negative control: train on answers shuffled across questions, an adapter that is "
        "broken on purpose (the gate must catch it).",
    )

    MODEL = AdapterTraining.MODEL | {"epochs": 3}  # TRL's recipes take 1; a suite's few facts need more


def shuffled(values: list[str], seed: int | None) -> list[str]:
    """`values` shuffled with `seed` (a negative control), or as they are when `seed` is None."""
    if seed is not None:
        random.Random(seed).shuffle(values)
    return values


def sft_rows(suite: Suite, hyper: SFTTraining, seed: int, fmt: PromptFormat = RAW) -> list[dict]:
    """Prompt-completion rows in the model's prompt format (conversational for a chat model)."""
    pairs = suite.training.sft
    answers = shuffled([p.answer for p in pairs], seed if hyper.shuffle_answers else None)
    return [fmt.completion_row(p.question, a) for p, a in zip(pairs, answers, strict=True)]


def sft_trainer(x: TrainerInputs) -> SFTTrainer:
    """`SFTTrainer` with a fresh LoRA (or none: a full fine-tune); any prompt-completion, text or
    tokenised (`input_ids`) dataset. For prompt-completion rows TRL puts the loss on the completion
    alone (`completion_only_loss` unset: on), for conversational ones too: the prompt's messages
    through the chat template with the generation prompt, the assistant turn after it."""
    from trl import SFTConfig, SFTTrainer

    return SFTTrainer(
        model=x.model,
        args=SFTConfig(**x.args),
        train_dataset=x.dataset,
        processing_class=x.tokenizer,
        peft_config=x.lora,
    )


METHOD = TrainingMethod(
    name="sft",
    config=SFTTraining,
    data=sft_rows,
    trainer=sft_trainer,
)
