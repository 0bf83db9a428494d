"""The built-in judge model: the built-in base model fine-tuned whole to grade an answer against the
reference ("correct 5" / "incorrect 1") and to compare two answers ("A" / "B" / "tie"), in the exact
prompts of `judges.llm_judge`. Built once by maintainers (`make models`) and shipped beside the base.

It learns on the base model's reading pool (facts about *other* organisations, each draw with new
organisations, products and answers), so it has never seen a fact, question or answer of the built-in
domain, and has seen many names it must compare without knowing them. Its answers to grade
are the kinds a variant writes, each labelled by rule:
- the base model's own answers to pool questions, closed-book and reading the passage (real model
  output: right, wrong values, names cut short, question words echoed);
- the gold answer restyled (case, article, punctuation) and restated in other words (currency written
  out, units, word order: `harness.builtin.restate`, its training family);
- wrong values of the same kind, restated as well (so a form is never a sign of a right answer),
  another fact's answer, and near misses (a value off by one, a name cut short or a letter changed).
Correct and incorrect answers are balanced; each pairwise example is asked in both orders.

The loop is `basemodel.fit` (loss on the reply only), not TRL's SFTTrainer: the same measurement as
the base model's (0.15 s against 0.37 s a step here) and a whole-model fine-tune of 2M parameters.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from core.cache import building, digest, folder_hash, library_versions
from harness import prompts
from harness.builtin.basemodel import BUILD_RECORD, EOS, BaseModelSpec, fit
from harness.builtin.restate import near_misses, restatements
from judges.exact import normalize_answer
from judges.llm_judge import PROMPT_VERSION, grade_prompt, pairwise_prompt

RIGHT, WRONG = "correct 5", "incorrect 1"
ROWS_VERSION = "judge-rows-v3"  # bump when judge_rows changes


@dataclass(frozen=True)
class JudgeSpec:
    """Everything that determines the built-in judge besides its base model."""

    seed: int = 7
    draws: int = 36  # draws of the pool, each with new organisations, products and answers
    stride: int = 6  # of each draw, one fact in `stride`: many structures, not many facts of one
    steps: int = 1200
    batch_size: int = 32
    learning_rate: float = 1e-3
    warmup_ratio: float = 0.05

    def recipe_key(self, base_recipe: str) -> str:
        return digest(
            {"spec": asdict(self), "base": base_recipe, "prompts": PROMPT_VERSION, "rows": ROWS_VERSION}
        )


def greedy_answers(
    model, tokenizer, texts: list[str], *, max_new_tokens: int = 16, batch_size: int = 32
) -> list[str]:
    """Greedy answers, each cut at its first line break (as the bench reads an answer)."""
    import torch

    tokenizer.padding_side = "left"
    out: list[str] = []
    for i in range(0, len(texts), batch_size):
        batch = tokenizer(texts[i : i + batch_size], return_tensors="pt", padding=True)
        with torch.no_grad():
            ids = model.generate(
                **batch, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
            )
        for row in ids[:, batch["input_ids"].shape[1] :]:
            out.append(tokenizer.decode(row, skip_special_tokens=True).strip().split("\n")[0].strip())
    return out


def is_right(category: str, answers, answer: str) -> bool:
    """The rule that labels an answer: exact match after normalisation, or a training restatement."""
    accepted = {normalize_answer(a) for a in (*answers, *restatements(category, answers, "train"))}
    return normalize_answer(answer) in accepted


def _restyle(answer: str, rng: random.Random) -> str:
    return rng.choice([answer.lower(), answer.upper(), "the " + answer, answer + ".", answer.capitalize()])


def judge_rows(
    base_spec: BaseModelSpec, spec: JudgeSpec, model_answers: dict[tuple[int, int], str]
) -> list[tuple[str, str]]:
    """(prompt, reply) pairs. `model_answers[(draw, i)]` is the base model's answer to pool fact `i`
    of `draw` (the row's own wording), when there is one."""
    from suites.builtin import reading_pool

    rng = random.Random(spec.seed)
    rows: list[tuple[str, str]] = []
    for draw in range(spec.draws):
        facts = reading_pool(
            base_spec.seed,
            scale=base_spec.pool_scale,
            domain_scale=base_spec.domain_scale,
            draw=draw,
            structure=draw,
        )
        by_kind: dict[str, list] = {}
        for f in facts:
            by_kind.setdefault(f.category, []).append(f)
        for i, f in enumerate(facts):
            if i % spec.stride != draw % spec.stride:
                continue
            q = f.wordings[(draw + i) % len(f.wordings)]
            golds = list(f.answers)
            other = rng.choice(by_kind[f.category])
            right = [
                rng.choice(golds),
                _restyle(golds[0], rng),
                *rng.sample(restatements(f.category, golds), 2),
            ]
            wrong = [
                f.wrong,
                rng.choice(restatements(f.category, [f.wrong]))
                if restatements(f.category, [f.wrong])
                else f.wrong,
            ]
            wrong += near_misses(f.category, golds, rng)
            if other.answers[0] not in golds:
                wrong.append(other.answers[0])
            answer = model_answers.get((draw, i))
            if answer:
                (right if is_right(f.category, golds, answer) else wrong).append(answer)
            right = [a for a in dict.fromkeys(right) if is_right(f.category, golds, a)]
            wrong = [a for a in dict.fromkeys(wrong) if a and not is_right(f.category, golds, a)]
            n = min(len(right), len(wrong))
            if n == 0:
                continue
            right, wrong = rng.sample(right, n), rng.sample(wrong, n)  # balanced
            rows += [(grade_prompt(q, golds, a), RIGHT) for a in right]
            rows += [(grade_prompt(q, golds, a), WRONG) for a in wrong]
            for r, w in zip(right, wrong):  # both orders of every pair
                rows.append((pairwise_prompt(q, golds, r, w), "A"))
                rows.append((pairwise_prompt(q, golds, w, r), "B"))
            rows.append(
                (
                    pairwise_prompt(q, golds, *rng.sample(right, 2))
                    if n > 1
                    else pairwise_prompt(q, golds, right[0], right[0]),
                    "tie",
                )
            )
            rows.append(
                (
                    pairwise_prompt(q, golds, *rng.sample(wrong, 2))
                    if n > 1
                    else pairwise_prompt(q, golds, wrong[0], wrong[0]),
                    "tie",
                )
            )
    rng.shuffle(rows)
    return rows


def base_answers(model, tokenizer, base_spec: BaseModelSpec, spec: JudgeSpec) -> dict[tuple[int, int], str]:
    """The base model's own answers to the pool questions the judge grades: closed-book on even
    draws, reading the passage on odd ones."""
    from suites.builtin import reading_pool

    keys, texts = [], []
    for draw in range(spec.draws):
        facts = reading_pool(
            base_spec.seed,
            scale=base_spec.pool_scale,
            domain_scale=base_spec.domain_scale,
            draw=draw,
            structure=draw,
        )
        for i, f in enumerate(facts):
            if i % spec.stride != draw % spec.stride:
                continue
            q = f.wordings[(draw + i) % len(f.wordings)]
            keys.append((draw, i))
            texts.append(prompts.with_passages(q, [f.passage]) if draw % 2 else prompts.closed_book(q))
    return dict(zip(keys, greedy_answers(model, tokenizer, texts)))


def build_judge(
    base_folder: Path, base_spec: BaseModelSpec, spec: JudgeSpec, out: Path, *, progress: bool = True
) -> Path:
    """Fine-tune the base model in `base_folder` into the judge and write it to `out/judge`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.builtin.shipped import SHARD_SIZE

    started = time.time()
    torch.manual_seed(spec.seed)
    tokenizer = AutoTokenizer.from_pretrained(base_folder)
    model = AutoModelForCausalLM.from_pretrained(base_folder)
    model.eval()
    answers = base_answers(model, tokenizer, base_spec, spec)
    rows = judge_rows(base_spec, spec, answers)
    sequences, targets = [], []
    for prompt, reply in rows:
        head = tokenizer(prompt)["input_ids"]
        tail = tokenizer(" " + reply + EOS)["input_ids"]
        sequences.append(head + tail)
        targets.append([False] * len(head) + [True] * len(tail))
    order = list(range(len(sequences)))
    need = spec.steps * spec.batch_size
    stream = []
    rng = random.Random(spec.seed)
    while len(stream) < need:
        rng.shuffle(order)
        stream += order
    stream = stream[:need]
    losses, tokens = fit(
        model,
        [sequences[i] for i in stream],
        targets=[targets[i] for i in stream],
        steps=spec.steps,
        batch_size=spec.batch_size,
        learning_rate=spec.learning_rate,
        warmup_ratio=spec.warmup_ratio,
        pad_id=tokenizer.pad_token_id,
        label="training the built-in judge",
        progress=progress,
    )
    model.eval()
    labels = [r for _, r in rows]
    record = {
        "kind": "builtin-judge",
        "spec": asdict(spec),
        "recipe_key": spec.recipe_key(base_spec.recipe_key()),
        "base_recipe_key": base_spec.recipe_key(),
        "base_weights": folder_hash(base_folder, 12),
        "rows": len(rows),
        "rows_sha256": digest(rows),
        "replies": {r: labels.count(r) for r in sorted(set(labels))},
        "model_answers": len(answers),
        "steps": spec.steps,
        "tokens": tokens,
        "final_loss": losses[-1]["loss"],
        "loss_curve": losses,
        "wall_time_s": round(time.time() - started, 1),
        "libraries": library_versions(),
    }
    final = out / "judge"
    staged = out / f".judge-{int(started)}"
    with building(staged) as tmp:
        model.save_pretrained(tmp, max_shard_size=SHARD_SIZE)
        tokenizer.save_pretrained(tmp)
        (tmp / BUILD_RECORD).write_text(json.dumps(record, indent=2))
        (tmp / "README.md").write_text(judge_card(record))
    import shutil

    shutil.rmtree(final, ignore_errors=True)
    staged.rename(final)
    return final


def shipped_judge(
    base_spec: BaseModelSpec, spec: JudgeSpec | None = None, root: Path | None = None
) -> Path | None:
    """The shipped judge for this base recipe and judge spec, or None."""
    from harness.builtin.shipped import SHIPPED

    folder = (root or SHIPPED) / "judge"
    record = folder / BUILD_RECORD
    want = (spec or JudgeSpec()).recipe_key(base_spec.recipe_key())
    if record.exists() and json.loads(record.read_text()).get("recipe_key") == want:
        return folder
    return None


def judge_card(record: dict) -> str:
    spec_rows = "\n".join(f"| `{k}` | {v} |" for k, v in record["spec"].items())
    replies = ", ".join(f"{k!r}: {v:,}" for k, v in record["replies"].items())
    return f"""---
library_name: transformers
license: apache-2.0
tags: [ragvft, builtin, judge, llama]
---
# ragvft built-in judge

The built-in base model (recipe `{record["base_recipe_key"]}`, weights `{record["base_weights"]}`)
fine-tuned whole by `harness/builtin/judge_model.py` to grade an answer against the reference and to
compare two answers, in the prompts of `judges/llm_judge.py` (`{PROMPT_VERSION}`). It learned on the
base model's reading pool (other organisations): it has never seen the built-in domain. Rebuild with
`make models`; `tests/test_shipped_models.py` rebuilds the recipe at tiny scale.

## Recipe (key `{record["recipe_key"]}`)
| setting | value |
| --- | --- |
{spec_rows}

{record["rows"]:,} training rows (sha256 `{record["rows_sha256"]}`; replies {replies}), of which the
base model wrote {record["model_answers"]:,} of the graded answers; {record["steps"]:,} steps,
{record["tokens"]:,} tokens, {record["wall_time_s"]} s; final loss {record["final_loss"]}.

How well it judges the built-in domain (agreement with exact match, position consistency, planted
restatements accepted) is measured by `bench/judge_quality.py` and in every run's judge section.
"""
