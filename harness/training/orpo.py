"""ORPO: odds-ratio preference optimisation (Hong et al. 2024) on (prompt, right answer, plausible wrong
answer), straight from the base: the loss is SFT's on the right answer plus `beta` times a penalty on
the wrong one's odds against it, so there is no SFT stage and no reference model. A fresh LoRA on the
base, or every weight with `finetune: full`.

TRL 1.16 keeps `ORPOTrainer` in `trl.experimental.orpo`, whose API may change in any release without
deprecation: this file is written against trl==1.16.0, which pyproject.toml and constraints.txt pin
exactly. A TRL upgrade must re-check the import, `ORPOConfig`'s arguments and the logged keys `orpo_record`
reads."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from harness.training.dpo import dpo_record, dpo_rows
from harness.training.method import AdapterTraining, TrainerInputs, TrainingMethod

if TYPE_CHECKING:
    from trl.experimental.orpo import ORPOTrainer


class ORPOTraining(AdapterTraining):
    """Odds-ratio preference optimisation on the suite's (question, right answer, wrong answer) triples,
    from the base model."""

    # From the base, ORPO must learn the answers as SFT does (its NLL term is SFT's loss on the chosen
    # answer), so the built-in recipe is SFT's 40 epochs at 3e-3, not DPO's 3 epochs at 5e-4 that only
    # polish an SFT adapter (measured: docs/methods.md#orpo).
    epochs: float = Field(40, gt=0)
    learning_rate: float = Field(3e-3, gt=0)
    beta: float = Field(
        0.1,
        gt=0,
        description="ORPO's lambda (TRL's beta): the weight of the odds-ratio penalty on the rejected "
        "answer beside the NLL loss on the chosen one.",
    )
    shuffle_answers: bool = Field(
        False, description="Negative control: chosen answers shuffled across questions."
    )

    # The ORPO paper and TRL's orpo.py example fully fine-tune at 8e-6 (ORPOConfig's own default is
    # 1e-6, too slow to also teach the answers in a few epochs). A LoRA moves a sliver of the weights
    # and takes about ten times a full fine-tune's rate, as TRL's SFT recipes do (2e-4 LoRA, 2e-5
    # full): 1e-4, the low end of SFT's LoRA range because the odds-ratio term adds its own gradient.
    # 3 epochs, as SFT's `model` profile: a suite's few facts need more than one pass.
    MODEL = AdapterTraining.MODEL | {"epochs": 3, "learning_rate": 1e-4}
    FULL_LEARNING_RATE = 8e-6


def orpo_trainer(x: TrainerInputs) -> ORPOTrainer:
    """`ORPOTrainer` on the base with a fresh LoRA (or none: a full fine-tune). It reads DPO's rows,
    raw or conversational (it applies the chat template itself), and puts the NLL loss on the chosen
    answer alone."""
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    return ORPOTrainer(
        model=x.model,
        # Its collator reads the tokenised chosen/rejected columns: TRL sets this itself, with a warning.
        args=ORPOConfig(**x.args, beta=x.hyper["beta"], remove_unused_columns=False),
        train_dataset=x.dataset,
        processing_class=x.tokenizer,
        peft_config=x.lora,
    )


def orpo_record(logs: list[dict]) -> dict:
    """ORPO's own signal over DPO's reward accuracy and margin (here `beta` times the answers' mean
    token log-probabilities, no reference): the log odds of the chosen answer over the rejected one
    (`log_odds_chosen`, above 0 when the chosen is preferred), the odds-ratio term (`log_odds_ratio`,
    log sigmoid of those odds: rising to 0 as the pairs are learned) and the NLL loss on the chosen
    answer (falling as the answers are learned)."""
    curve = [e for e in logs if "log_odds_chosen" in e]
    last = curve[-1] if curve else {}
    return dpo_record(logs) | {
        "odds_curve": [
            {
                "step": e["step"],
                "log_odds_chosen": round(e["log_odds_chosen"], 4),
                "log_odds_ratio": round(e["log_odds_ratio"], 4),
                "nll_loss": round(e["nll_loss"], 4),
            }
            for e in curve
        ],
        **{k: round(last[k], 4) if last else None for k in ("log_odds_chosen", "log_odds_ratio", "nll_loss")},
    }


METHOD = TrainingMethod(
    name="orpo",
    config=ORPOTraining,
    data=dpo_rows,  # DPO's rows: its `hyper` reads only `shuffle_answers`, which ORPOTraining has
    trainer=orpo_trainer,
    record=orpo_record,
    data_help="preference pairs (a suite with pairs, or training.extra_preferences)",
)
