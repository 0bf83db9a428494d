"""The built-in question writer as a training method: a LoRA adapter on the built-in base model,
trained with TRL's `SFTTrainer` to write, for a passage, one question it answers as a JSON object
`{"question", "answer", "type"}` (`harness.prompts.question_prompt`), loss on the reply only.

Its rows come from the base model's own reading pool (`suites.builtin.reading_pool`: facts about
*other* organisations, never the built-in domain's), drawn with new organisations, names and answers
for every pass (`structure`, `draw`), so that it learns to copy what a passage says rather than
remember a pool; each row's question is one of the fact's three wordings, its type the fact's
category as a question type (`suites.synth.TYPE_OF_CATEGORY`). Not a variant's method:
`harness.synth.generator` trains it for `synth.generator.builtin`.
"""

from __future__ import annotations

import json
import random

from pydantic import Field, model_validator

from harness.prompts import RAW, PromptFormat, question_prompt
from harness.training.method import AdapterTraining, TrainingMethod
from harness.training.sft import sft_trainer
from suites.synth import QUESTION_TYPES, TYPE_OF_CATEGORY


class QuestionWriterTraining(AdapterTraining):
    """The built-in question writer: a LoRA on the built-in base model, trained once (cached by its
    key) on the base model's reading pool. `examples` / `batch_size` x `epochs` optimiser steps."""

    examples: int = Field(
        4800, ge=16, description="Training rows (passage -> JSON question), drawn from the reading pool."
    )
    epochs: float = Field(1, gt=0)
    learning_rate: float = Field(1e-2, gt=0)
    lora_r: int = Field(16, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(32, ge=1)
    # A 2M-parameter model at 256 tokens needs no memory saving; off, it trains ~25% faster here.
    gradient_checkpointing: bool = Field(False, description="Recompute activations in the backward pass.")

    @model_validator(mode="after")
    def _lora(self) -> QuestionWriterTraining:
        if self.finetune != "lora":
            raise ValueError("the question writer is a LoRA adapter on the base model: finetune must be lora")
        return self


def reply(question: str, answer: str, kind: str) -> str:
    """The reply the writer learns: one line of JSON, keys in a fixed order. The answer starts with a
    space (stripped when the reply is read): the byte-level tokenizer writes a word inside a passage
    with its leading space, so the answer is then the passage's very tokens, copied one for one as
    the base model learned to answer. Without it, measured here, the writer wrote the right question
    and a wrong answer: "}ustirwick" for "Tustirwick", "21212 dollars" for "2912 dollars"."""
    return json.dumps({"question": question, "answer": " " + answer, "type": kind})


def writer_rows(pool: tuple[int, int, int], examples: int, seed: int, fmt: PromptFormat = RAW) -> list[dict]:
    """`examples` prompt-completion rows from the reading pool of a base model trained with `pool`
    (its seed, pool_scale, domain_scale): structure after structure of new organisations (pass 1, 2,
    ...), each fact once, in a seeded order, with a seeded choice of wording."""
    from suites.builtin import reading_pool

    pool_seed, scale, domain_scale = pool
    rng = random.Random(seed)
    rows: list[dict] = []
    draw = 0
    while len(rows) < examples:
        draw += 1
        facts = reading_pool(pool_seed, scale=scale, domain_scale=domain_scale, draw=draw, structure=draw)
        rng.shuffle(facts)
        for f in facts[: examples - len(rows)]:
            prompt = question_prompt(f.passage, QUESTION_TYPES)
            # the test wordings (1, 2), as the built-in domain asks its test questions: wording 0 is
            # the one its fine-tuning data uses, so a test question in it would be a leak
            answer = reply(rng.choice(f.wordings[1:]), f.answers[0], TYPE_OF_CATEGORY[f.category])
            rows.append(fmt.instruction_row(prompt, answer))
    return rows


METHOD = TrainingMethod(
    name="qwriter",
    config=QuestionWriterTraining,
    # the pool is the base model's (`harness.synth.generator` builds the rows with its spec)
    data=lambda suite, hyper, seed, fmt=RAW: writer_rows((7, 40, 40), hyper.examples, seed, fmt),
    trainer=sft_trainer,
    data_help="the built-in base model's reading pool",
)
