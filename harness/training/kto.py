"""KTO: TRL's `KTOTrainer` on unpaired feedback, one answer to a question marked desirable or not. The
suite's preference pairs give one of each (the right answer desirable, the wrong one not) and the
suite's feedback set (`training.kto.feedback`, read into it by `load_suite`) adds the user's own. As
DPO, it starts from the SFT adapter by default, which TRL also copies as the frozen reference."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from core.paths import ConfigPath
from harness.prompts import RAW, PromptFormat
from harness.training.dpo import policy_and_reference
from harness.training.method import AdapterTraining, TrainerInputs, TrainingMethod
from suites.schema import Suite

if TYPE_CHECKING:
    from trl import KTOTrainer


class KTOTraining(AdapterTraining):
    """Kahneman-Tversky optimisation on (question, answer, desirable or not) rows."""

    # DPO's built-in recipe: KTO's rows are the same answers, unpaired.
    epochs: float = Field(3, gt=0)
    learning_rate: float = Field(5e-4, gt=0)
    beta: float = Field(0.1, gt=0, description="KTO temperature: how far the policy may leave its reference.")
    desirable_weight: float = Field(
        1.0, gt=0, description="Weight of the desirable rows' loss: raise it when they are the fewer."
    )
    undesirable_weight: float = Field(
        1.0, gt=0, description="Weight of the undesirable rows' loss: raise it when they are the fewer."
    )
    init: Literal["sft", "base"] = Field(
        "sft",
        description="Start from the SFT adapter (its LoRA settings apply; it is also the reference) "
        "or from the base model.",
    )
    feedback: ConfigPath | None = Field(
        None,
        description='A JSONL file of {"question", "answer", "label": true|false} rows added to the '
        "feedback (relative to the config's folder). Checked for leakage like the rest.",
    )

    # KTOConfig's default is 1e-6, a full fine-tune's; with LoRA the `model` profile takes DPO's 2e-5
    # over 2 epochs (a suite's few hundred rows make tens of steps), and 1e-6 full.
    MODEL = AdapterTraining.MODEL | {"epochs": 2, "learning_rate": 2e-5}
    FULL_LEARNING_RATE = 1e-6

    def problem(self) -> str | None:
        # TRL estimates KTO's KL term from each row's prompt with its batch neighbour's answer: a batch
        # of one would make it the row's own reward (TRL refuses it with a traceback).
        if self.batch_size < 2:
            return "KTO estimates its KL term across a batch: batch_size must be at least 2"
        return None


def kto_rows(suite: Suite, hyper: KTOTraining, seed: int, fmt: PromptFormat = RAW) -> list[dict]:
    """Feedback rows in the model's prompt format (conversational for a chat model): every pair's
    chosen answer desirable and its rejected one not, then the suite's feedback, shuffled with `seed`.
    TRL reads KTO's rows in order (its KL term pairs each prompt with its neighbour's answer), so
    unshuffled batches would hold one label only and a question's two answers side by side."""
    pairs = suite.training.preferences
    rows = [fmt.feedback_row(p.question, p.chosen, True) for p in pairs]
    rows += [fmt.feedback_row(p.question, p.rejected, False) for p in pairs]
    rows += [fmt.feedback_row(f.question, f.answer, f.desirable) for f in suite.training.feedback]
    random.Random(seed).shuffle(rows)
    return rows


def kto_trainer(x: TrainerInputs) -> KTOTrainer:
    from trl import KTOConfig, KTOTrainer

    return KTOTrainer(
        **policy_and_reference(x),  # as DPO: from the SFT adapter, which is also the reference
        args=KTOConfig(
            **x.args,
            beta=x.hyper["beta"],
            desirable_weight=x.hyper["desirable_weight"],
            undesirable_weight=x.hyper["undesirable_weight"],
        ),
        train_dataset=x.dataset,
        processing_class=x.tokenizer,
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def kto_record(logs: list[dict]) -> dict:
    """The rewards and KL estimate TRL logs: did the policy raise the desirable answers over its
    reference and lower the undesirable ones, and how far did it move? TRL clamps its KL estimate at 0,
    so a policy that lowers every answer, mismatched ones too, records 0. A logging window whose batches
    held one label only has no figure for the other (None)."""
    curve = [
        {
            "step": e["step"],
            "chosen": _rounded(e.get("rewards/chosen")),
            "rejected": _rounded(e.get("rewards/rejected")),
            "kl": _rounded(e["kl"]),
        }
        for e in logs
        if "kl" in e
    ]
    last = curve[-1] if curve else {}
    return {
        "reward_curve": curve,
        "reward_chosen": last.get("chosen"),
        "reward_rejected": last.get("rejected"),
        "kl": last.get("kl"),
    }


METHOD = TrainingMethod(
    name="kto",
    config=KTOTraining,
    data=kto_rows,
    trainer=kto_trainer,
    starts_from=lambda hyper: "sft" if hyper.init == "sft" else None,
    record=kto_record,
    data_help="preference pairs or labelled answers (a suite with pairs, training.extra_preferences, or "
    "training.kto.feedback)",
)
