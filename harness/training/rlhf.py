"""RLHF: a reward model learned from the suite's preference pairs (reward.py, trained first and cached),
then the policy optimised against it online with TRL's `RLOOTrainer` (REINFORCE leave-one-out, TRL's
successor to PPO: each sampled answer's advantage is its reward minus the mean of the other answers to
the same prompt, so no value model is trained), starting from SFT as RLHF does, with a KL penalty to it.
Its prompts are the training questions; the reward model never sees a test question either."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from harness.training.grpo import RLTraining, rl_record, rl_rows, rl_steps, rl_trainer
from harness.training.method import TrainerInputs, TrainingMethod

if TYPE_CHECKING:
    import torch


class RLHFTraining(RLTraining):
    """RLOO against the reward model (`training.reward` sets how that is trained)."""

    # A learned reward model can be gamed: at 3e-3 and beta 0.05 RLOO found an answer it scores high,
    # hence 0.2 (docs/methods.md#rlhf-and-its-reward-model). The `model` profile keeps RLOO's own default, 0.05
    # (TRL's RLOOConfig).
    beta: float = Field(
        0.2,
        ge=0,
        description="KL penalty towards the starting (SFT) model; 0: none, and no reference is computed.",
    )

    MODEL = RLTraining.MODEL | {"beta": 0.05}


class RewardModelScore:
    """The reward model as TRL's reward function: each (prompt, completion) scored by the classifier's
    one output, the texts made exactly as `RewardTrainer` made its training pairs (the chat template
    for messages; raw text with the end-of-sequence token appended), so the score is read where the
    model learned to put it. A plain callable rather than TRL's own model-reward path, which scores raw
    text without that end token."""

    __name__ = "reward_model"  # TRL logs each reward function's mean under its name

    def __init__(self, model: torch.nn.Module, tokenizer: Any) -> None:
        self.model, self.tokenizer = model.eval(), tokenizer

    def texts(self, prompts: list[Any], completions: list[Any]) -> list:
        if isinstance(prompts[0], list):  # conversational: the dialogue through the chat template
            return [p + c for p, c in zip(prompts, completions, strict=True)]
        eos = self.tokenizer.eos_token
        return [p + (c if c.endswith(eos) else c + eos) for p, c in zip(prompts, completions, strict=True)]

    def __call__(self, prompts: list[Any], completions: list[Any], **_: Any) -> list[float]:
        import torch
        from trl.data_utils import _tokenize  # RewardTrainer's own (trl==1.16.0, pinned)

        ids = [_tokenize(self.tokenizer, t)["input_ids"] for t in self.texts(prompts, completions)]
        batch = self.tokenizer.pad(
            {"input_ids": ids}, padding=True, padding_side="right", return_tensors="pt"
        )
        device = next(self.model.parameters()).device
        with torch.inference_mode():
            scores = self.model(**{k: v.to(device) for k, v in batch.items()}).logits[:, 0]
        return scores.float().tolist()


def rlhf_trainer(x: TrainerInputs) -> Any:
    """The reward model (the base as a classifier with the reward adapter, frozen) scoring RLOO's
    samples; the policy from the SFT adapter."""
    from peft import PeftModel

    assert x.load_base is not None  # `fit.train` always gives it
    reward = PeftModel.from_pretrained(x.load_base("reward"), str(x.needs["reward"]))
    for p in reward.parameters():
        p.requires_grad_(False)
    return rl_trainer(x, "RLOO", [RewardModelScore(reward, x.tokenizer)])


METHOD = TrainingMethod(
    name="rlhf",
    config=RLHFTraining,
    data=rl_rows,
    trainer=rlhf_trainer,
    starts_from=lambda hyper: "sft" if hyper.init == "sft" else None,
    needs=lambda hyper: {"reward": "reward"},
    record=rl_record,  # the reward curve is the reward model's score; its own record comes as "reward"
    steps_per_epoch=rl_steps,
    data_help="question-answer pairs for its prompts (the suite's training pairs, or training.extra_sft)",
)
