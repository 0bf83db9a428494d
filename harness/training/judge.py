"""The built-in judge as a training method: a LoRA adapter on the base model, trained with TRL's
`SFTTrainer` to grade answers against a reference and to compare two answers, in the exact prompt
formats of `judges.llm_judge`, built from the suite's preference pairs. Not a variant's method:
`harness.artifacts.adapters.judge_adapter` trains it for `judge.builtin`.

Only training facts are used (each with its training-wording question): a right answer (as given,
or with case, article or punctuation changed, which exact match forgives too), the plausible wrong
answer of its preference pair, a truncated answer, and another fact's answer. Test questions never
appear here (the leakage check would flag them).
"""

from __future__ import annotations

import random

from pydantic import Field

from harness.prompts import RAW, PromptFormat
from harness.training.method import AdapterTraining, TrainingMethod
from harness.training.sft import sft_trainer
from judges.llm_judge import grade_prompt, pairwise_prompt
from suites.schema import Suite


class BuiltinJudge(AdapterTraining):
    """The built-in judge: a LoRA adapter on the built-in base model, trained with TRL's SFTTrainer to
    grade answers against a reference and to compare two answers, on the suite's training facts."""

    epochs: float = Field(4, gt=0)
    learning_rate: float = Field(3e-3, gt=0)

    MODEL = AdapterTraining.MODEL | {"epochs": 2}  # 9 rows a preference pair: fewer passes than SFT


# The built-in judge answers in the compact form the parsers accept beside JSON ("correct 5", "A"):
# a tiny model left most of its JSON gradings unparseable (docs/judge.md#the-built-in-judge).
_RIGHT = "correct 5"
_WRONG = "incorrect 1"
_PART = "incorrect 2"


def _restyle(answer: str, rng: random.Random) -> str:
    """The same answer as exact match sees it: case, a leading article or final punctuation."""
    style = rng.randrange(3)
    if style == 0:
        return answer.lower() if answer != answer.lower() else answer.upper()
    if style == 1:
        return "the " + answer
    return answer + "."


def judge_rows(suite: Suite, seed: int, fmt: PromptFormat = RAW) -> list[dict]:
    """Prompt-completion rows teaching grade and pairwise replies (SFT format), each prompt a
    self-contained instruction in the model's prompt format."""
    rng = random.Random(seed)
    pairs = list(suite.training.preferences)
    answers = [p.chosen for p in pairs]
    rows: list[dict[str, str]] = []

    def add(prompt: str, reply: str) -> None:
        rows.append(fmt.instruction_row(prompt, reply))

    for i, p in enumerate(pairs):
        q, right, wrong, gold = p.question, p.chosen, p.rejected, [p.chosen]
        others = [answers[(i + j) % len(answers)] for j in range(1, 6)]
        other = next((a for a in others if a != right), wrong)  # another fact's answer, or the wrong one
        restyled = _restyle(right, rng)
        add(grade_prompt(q, gold, right), _RIGHT)
        add(grade_prompt(q, gold, restyled), _RIGHT)
        add(grade_prompt(q, gold, wrong), _WRONG)
        add(grade_prompt(q, gold, other), _WRONG)
        words = right.split()
        if len(words) >= 2:
            add(grade_prompt(q, gold, " ".join(words[: len(words) // 2])), _PART)
        add(pairwise_prompt(q, gold, right, wrong), "A")
        add(pairwise_prompt(q, gold, wrong, right), "B")
        add(pairwise_prompt(q, gold, restyled, right), "tie")
        add(pairwise_prompt(q, gold, wrong, other), "tie")
    rng.shuffle(rows)
    return rows


METHOD = TrainingMethod(
    name="judge",
    config=BuiltinJudge,
    data=lambda suite, hyper, seed, fmt=RAW: judge_rows(
        suite, seed=0, fmt=fmt
    ),  # its rows are part of the key anyway
    trainer=sft_trainer,
)
