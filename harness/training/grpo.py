"""GRPO: reinforcement learning with a verifiable reward, the suite's own metric. For each training
question the policy samples a group of answers; each is scored by F1 against the training answer (the
answer as the bench reads it: up to the first line break), and TRL's `GRPOTrainer` raises the
log-probability of the answers that scored above their group's mean. It starts from the SFT adapter,
as RL fine-tuning does, and never sees a test question: its prompts are the SFT pairs'.

`rl_trainer` is shared with RLHF (rlhf.py), which optimises against a learned reward model instead."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field

from harness.prompts import RAW, PromptFormat
from harness.training.dpo import policy_and_reference
from harness.training.method import AdapterTraining, TrainerInputs, TrainingMethod
from judges.exact import f1_score
from suites.schema import Suite


class RLTraining(AdapterTraining):
    """What online RL methods share (GRPO here, RLOO in RLHF): a group of sampled answers per prompt."""

    # 3e-4 keeps the policy near the SFT adapter it starts from (3e-3 drifted away), and sampling at
    # 0.7 lets the reward rise where 1.0 did not: measured in docs/methods.md#grpo
    epochs: float = Field(4, gt=0)
    learning_rate: float = Field(3e-4, gt=0)
    num_generations: int = Field(
        4, ge=2, description="Answers sampled per prompt: each is rewarded against its group's mean."
    )
    max_completion_length: int = Field(24, ge=1, description="Most tokens sampled per answer.")
    temperature: float = Field(
        0.7, gt=0, description="Sampling temperature of the answers trained on (TRL's default: 1.0)."
    )
    beta: float = Field(
        0.04,
        ge=0,
        description="KL penalty towards the starting (SFT) model; 0: none, and no reference is computed.",
    )
    init: Literal["sft", "base"] = Field(
        "sft", description="Start from the SFT adapter (also the KL reference) or from the base model."
    )

    # TRL's GRPO and RLOO recipes train LoRA at 1e-5..1e-6 for hundreds of steps; a suite's few hundred
    # prompts make tens of steps at 16 prompts a step, so 1e-5 over 2 epochs; 8 samples a prompt, TRL's
    # own default, at its temperature 1.0; answers of up to 64 tokens (a suite's answers are short).
    MODEL = AdapterTraining.MODEL | {
        "epochs": 2,
        "learning_rate": 1e-5,
        "num_generations": 8,
        "max_completion_length": 64,
        "temperature": 1.0,
    }
    FULL_LEARNING_RATE = 1e-6

    def problem(self) -> str | None:
        # TRL samples `num_generations` answers per prompt within one step's rows
        if (self.batch_size * self.gradient_accumulation_steps) % self.num_generations:
            return (
                f"batch_size x gradient_accumulation_steps ({self.batch_size} x "
                f"{self.gradient_accumulation_steps}) must be a multiple of num_generations "
                f"({self.num_generations}): each prompt's group of answers is trained in one step"
            )
        return None


def rl_rows(suite: Suite, hyper: RLTraining, seed: int, fmt: PromptFormat = RAW) -> list[dict]:
    """One row per SFT pair: the prompt (conversational for a chat model) and the training answer the
    reward reads (GRPO's F1; RLHF's reward model ignores it)."""
    return [
        {"prompt": fmt.completion_row(p.question, p.answer)["prompt"], "answer": p.answer}
        for p in suite.training.sft
    ]


def answer_text(completion: str | list[dict[str, str]]) -> str:
    """A sampled completion as the bench would score it: its text (an assistant message's content)
    from the first non-space character to the first line break."""
    if isinstance(completion, list):  # conversational: [{"role": "assistant", "content": ...}]
        completion = completion[-1]["content"] if completion else ""
    return completion.lstrip().split("\n", 1)[0]


def f1_reward(completions: list[Any], answer: list[str], **_: Any) -> list[float]:
    """The suite's F1 of each sampled answer against its row's training answer."""
    return [f1_score(answer_text(c), a) for c, a in zip(completions, answer, strict=True)]


def rl_trainer(x: TrainerInputs, trainer: str, reward_funcs: list[Callable[..., list[float]]]) -> Any:
    """TRL's `GRPOTrainer` or `RLOOTrainer` on the rows, from the SFT adapter (TRL keeps a frozen copy
    of it as the KL reference when beta > 0) or a fresh LoRA on the base. The shared arguments lose
    `max_length`: RL samples its completions up to `max_completion_length`."""
    import trl

    h = x.hyper
    config_class, trainer_class = getattr(trl, f"{trainer}Config"), getattr(trl, f"{trainer}Trainer")
    args = {k: v for k, v in x.args.items() if k != "max_length"}
    start = policy_and_reference(x)
    return trainer_class(
        model=start["model"],
        reward_funcs=reward_funcs,
        args=config_class(
            **args,
            num_generations=h["num_generations"],
            max_completion_length=h["max_completion_length"],
            temperature=h["temperature"],
            beta=h["beta"],
            logging_first_step=True,  # the reward before any update: the record's starting point
        ),
        train_dataset=x.dataset,
        processing_class=x.tokenizer,
        peft_config=start["peft_config"],
    )


def rl_record(logs: list[dict]) -> dict:
    """The mean reward of the sampled answers over training (first logged step: before any update),
    its spread within groups, the KL to the reference, and the answers' mean length in tokens."""

    def r(value: float | None) -> float | None:
        return None if value is None else round(value, 4)

    curve = [
        {
            "step": e["step"],
            "reward": r(e["reward"]),
            "reward_std": r(e.get("reward_std")),
            "kl": r(e.get("kl")),
            "length": r(e.get("completions/mean_length")),
        }
        for e in logs
        if "reward" in e
    ]
    first, last = (curve[0], curve[-1]) if curve else ({}, {})
    return {
        "reward_curve": curve,
        "mean_reward_first": first.get("reward"),
        "mean_reward": last.get("reward"),
        "kl": last.get("kl"),
    }


def rl_steps(rows: list[dict], hyper: dict) -> int:
    """Optimiser steps in a pass: TRL's sampler takes whole groups of prompts, one step's rows
    (`batch_size` x accumulation completions) holding `num_generations` answers to each, and drops
    the prompts left over."""
    prompts_a_step = hyper["batch_size"] * hyper["gradient_accumulation_steps"] // hyper["num_generations"]
    return len(rows) // prompts_a_step


def grpo_trainer(x: TrainerInputs) -> Any:
    return rl_trainer(x, "GRPO", [f1_reward])


METHOD = TrainingMethod(
    name="grpo",
    config=RLTraining,
    data=rl_rows,
    trainer=grpo_trainer,
    starts_from=lambda hyper: "sft" if hyper.init == "sft" else None,
    record=rl_record,
    steps_per_epoch=rl_steps,
    data_help="question-answer pairs for its prompts and reward (the suite's training pairs, or "
    "training.extra_sft)",
)
