"""The built-in judge's pairwise calibration: a logit bias on its first reply token ("A" / "B" /
"tie"), fitted once on the variants' own answers to training questions and shipped beside the judge
(`ragvft_calibration.json`), then added to the logits of every pairwise call (`Decoding.logit_bias`).

Why: a small judge has a prior over its verdict tokens that depends on neither answer (measured on the
default bench: it says "B" in both orders of the same pair 78 times in 1,720, two wrong answers it
should tie). Removing that prior is the known remedy for a position bias over option ids (Zhao et al.
2021, contextual calibration; Zheng et al. 2024, PriDe): here a bias vector fitted by class-balanced
maximum likelihood (each verdict's rows weigh alike, so the calibration set's share of ties does not
become the judge's prior) on pairs in both orders, labelled by the judge's training rule. It is fitted
on the training wording of each fact (wording 0: a test question is worded otherwise), from the answers
of the base model and of the shipped adapters, closed-book and reading the top BM25 passage, as the
bench's variants answer, each against the base's answer, as the bench pairs them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

CALIBRATION = "ragvft_calibration.json"
VERDICTS = ("A", "B", "tie")
_FLIP = {"A": "B", "B": "A", "tie": "tie"}


def verdict_tokens(tokenizer: Any) -> list[int]:
    """The first token of each verdict as the judge writes it (a raw completion starts with a space)."""
    return [tokenizer(" " + v, add_special_tokens=False)["input_ids"][0] for v in VERDICTS]


def fit_bias(logprobs: Sequence[Sequence[float]], labels: list[str]) -> list[float]:
    """The bias on each verdict's token (relative to "A", which stays 0) that maximises the
    class-balanced likelihood of `labels` ("A" / "B" / "tie", one per row) given the judge's first-token
    log-probabilities over the verdicts (rows x 3)."""
    import torch

    x = torch.as_tensor(logprobs, dtype=torch.float64)
    y = torch.tensor([VERDICTS.index(v) for v in labels])
    counts = torch.bincount(y, minlength=3).double()
    weight = counts.sum() / (3 * counts.clamp(min=1))
    b = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([b], max_iter=500, tolerance_grad=1e-10, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        opt.zero_grad()
        value = torch.nn.functional.cross_entropy(x + torch.cat([b.new_zeros(1), b]), y, weight=weight)
        value.backward()
        return value

    opt.step(loss)
    return [0.0, *(round(float(v), 4) for v in b.detach())]


def first_token_logprobs(
    model: PreTrainedModel, tokenizer: Any, prompts: list[str], *, limit: int, batch_size: int = 64
) -> list[list[float]]:
    """The judge's log-probabilities of each verdict's first token after each prompt (cut from its
    start to `limit` tokens, as the engine cuts it)."""
    import torch

    ids, pad = verdict_tokens(tokenizer), tokenizer.pad_token_id or 0
    out: list[list[float]] = []
    with torch.inference_mode():
        for i in range(0, len(prompts), batch_size):
            rows = [
                r[-limit:] for r in tokenizer(prompts[i : i + batch_size])["input_ids"]
            ]  # one call a batch
            width = max(map(len, rows))
            inp = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
            mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
            logits = model(
                input_ids=inp, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0)
            )
            out += torch.log_softmax(logits.logits[:, -1].float(), -1)[:, ids].tolist()
    return out


def calibration_pairs(base: Path, adapters: list[Path], *, seed: int = 7, scale: int = 40) -> list[tuple]:
    """(prompt, label) in both orders: each variant's answer (the shipped adapters, closed-book and
    with the top BM25 passage; the base with it) against the base's closed-book answer, on the built-in
    domain's training wording of every fact; identical answers are left out, as the bench asks none."""
    from harness.builtin.judge_rows import is_right
    from harness.engines import Decoding, HFEngine, Request
    from harness.prompts import build
    from judges.llm_judge import pairwise_prompt
    from retrievers.bm25 import BM25Retriever
    from suites.builtin import _domain_facts
    from suites.schema import Passage

    facts, _ = _domain_facts(seed, scale)
    retriever = BM25Retriever([Passage(f.id, f.passage) for f in facts])
    by_id = {f.id: f.passage for f in facts}
    questions = [f.wordings[0] for f in facts]
    read = [[by_id[h.passage_id] for h in hits] for hits in retriever.search(questions, 1)]
    engine = HFEngine(str(base))
    names = []
    for folder in adapters:
        engine.add_adapter(folder.name, folder)
        names.append(folder.name)
    decoding = Decoding(max_new_tokens=16)
    answers = {}
    for adapter in [None, *names]:
        for rag in (False, True):
            done = engine.generate(
                [
                    Request(build(q, ps if rag else None), adapter=adapter, decoding=decoding)
                    for q, ps in zip(questions, read, strict=True)
                ]
            )
            answers[(adapter, rag)] = [c.text for c in done]
    pairs = []
    baseline = answers[(None, False)]
    for key, theirs in answers.items():
        if key == (None, False):
            continue
        for f, q, a, b in zip(facts, questions, theirs, baseline, strict=True):
            if a == b:
                continue
            right_a, right_b = is_right(f.category, f.answers, a), is_right(f.category, f.answers, b)
            label = "A" if right_a > right_b else "B" if right_a < right_b else "tie"
            golds = list(f.answers)
            pairs += [
                (pairwise_prompt(q, golds, a, b), label),
                (pairwise_prompt(q, golds, b, a), _FLIP[label]),
            ]
    return pairs


def _figures(logprobs: Sequence[Sequence[float]], labels: list[str], bias: Sequence[float]) -> dict:
    """Position consistency and agreement with the labels of the pairs (rows in both orders)."""
    picks = [VERDICTS[max(range(3), key=lambda k: row[k] + bias[k])] for row in logprobs]
    ab, ba, want = picks[0::2], picks[1::2], labels[0::2]
    result = [x if _FLIP[y] == x else "tie" for x, y in zip(ab, ba, strict=True)]
    return {
        "position_consistency": round(sum(_FLIP[y] == x for x, y in zip(ab, ba, strict=True)) / len(ab), 4),
        "agreement": round(sum(r == w for r, w in zip(result, want, strict=True)) / len(want), 4),
    }


def calibrate_judge(judge: Path, base: Path, adapters: list[Path]) -> dict:
    """Fit the judge's pairwise logit bias and write it to `judge/ragvft_calibration.json`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.builtin.judge_figures import MAX_NEW_TOKENS

    pairs = calibration_pairs(base, adapters)
    tokenizer = AutoTokenizer.from_pretrained(judge)
    model = AutoModelForCausalLM.from_pretrained(judge).eval()
    limit = model.config.max_position_embeddings - MAX_NEW_TOKENS
    logprobs = first_token_logprobs(model, tokenizer, [p for p, _ in pairs], limit=limit)
    labels = [label for _, label in pairs]
    bias = fit_bias(logprobs, labels)
    record = {
        "method": "class-balanced maximum likelihood of a bias on the first reply token, pairs in both orders",
        "pairwise_logit_bias": dict(zip(map(str, verdict_tokens(tokenizer)), bias, strict=True)),
        "verdicts": dict(zip(VERDICTS, bias, strict=True)),
        "pairs": len(pairs) // 2,
        "labels": dict(Counter(labels[0::2])),
        "adapters": [a.name for a in adapters],
        "before": _figures(logprobs, labels, [0.0, 0.0, 0.0]),
        "after": _figures(logprobs, labels, bias),
    }
    (judge / CALIBRATION).write_text(json.dumps(record, indent=2) + "\n")
    return record


def pairwise_bias(judge: Path) -> tuple[tuple[int, float], ...]:
    """The shipped judge's pairwise logit bias (`Decoding.logit_bias`), or none when not calibrated."""
    path = judge / CALIBRATION
    if not path.is_file():
        return ()
    return tuple(
        (int(t), float(b)) for t, b in json.loads(path.read_text())["pairwise_logit_bias"].items() if b
    )
