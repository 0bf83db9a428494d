"""Continued pre-training: TRL's `SFTTrainer` with the causal-LM loss on the suite's raw documents,
each cut into windows of `max_length` tokens so that every token of every document is trained on."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pydantic import Field

from harness.training.method import AdapterTraining, TrainingMethod
from harness.training.sft import sft_trainer
from suites.schema import Suite

if TYPE_CHECKING:
    from harness.prompts import PromptFormat


class CPTTraining(AdapterTraining):
    """Continued pre-training: causal-LM loss on the suite's training documents."""

    epochs: float = Field(30, gt=0)
    learning_rate: float = Field(1e-3, gt=0)
    window_overlap: int = Field(
        0,
        ge=0,
        description="Tokens a document's window shares with the one before, so its first tokens are read "
        "with some context. 0: plain chunks, as transformers' run_clm and TRL's packing cut text.",
    )

    # 2 epochs at TRL's LoRA rate; windows of 1024 tokens (SFTConfig's default max_length) keep a batch
    # of 4 on one GPU whatever the documents' length, which windows leave whole.
    MODEL = AdapterTraining.MODEL | {"epochs": 2, "max_length": 1024}

    def problem(self) -> str | None:
        if self.max_length is not None and self.window_overlap >= self.max_length:
            return f"window_overlap ({self.window_overlap}) must be below max_length ({self.max_length})"
        return None


def cpt_rows(suite: Suite, hyper: CPTTraining, seed: int, fmt: PromptFormat | None = None) -> list[dict[str, str]]:
    """The documents as raw text (continued pre-training reads no template)."""
    return [{"text": d} for d in suite.training.documents]


def windows(ids: list[int], length: int, overlap: int) -> list[list[int]]:
    """`ids` in windows of at most `length` tokens, each starting `length - overlap` after the one
    before, the last reaching the end: 1 + ceil((len - length) / (length - overlap)) of them."""
    if len(ids) <= length:
        return [ids]
    if overlap >= length:
        raise ValueError(f"window_overlap ({overlap}) must be below the window of {length} tokens")
    stride = length - overlap
    count = 1 + math.ceil((len(ids) - length) / stride)
    return [ids[i * stride : i * stride + length] for i in range(count)]


def cpt_windows(rows: list[dict], tokenizer: Any, max_length: int, hyper: dict) -> tuple[list[dict], dict]:
    """Each document tokenised as TRL would (its end-of-sequence token appended) and cut into windows:
    a pre-tokenised dataset (`input_ids`), which SFTTrainer trains on as it is. The rows, the cache
    key's, stay the documents."""
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    docs = [tokenizer(r["text"])["input_ids"] + eos for r in rows]
    cut = [w for ids in docs for w in windows(ids, max_length, hyper["window_overlap"])]
    return [{"input_ids": w} for w in cut], {
        "documents": len(docs),
        "document_tokens": sum(map(len, docs)),
        "windows": len(cut),
    }


METHOD = TrainingMethod(
    name="cpt",
    data_help="training documents (the built-in, SQuAD and PubMedQA suites keep those of training "
    "questions; a JSONL suite has none)",
    config=CPTTraining,
    data=cpt_rows,
    trainer=sft_trainer,  # token windows: SFTTrainer trains on every token
    prepare=cpt_windows,
)
