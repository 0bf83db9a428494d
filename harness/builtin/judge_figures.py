"""The built-in judge's figures: how it does on a held-out draw of the reading pool (measured at the
end of every build) and its model card."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from harness.builtin.basemodel import BaseModelSpec, pool_draw
from harness.builtin.loop import greedy_answers
from harness.builtin.restate import near_misses
from judges.llm_judge import PROMPT_VERSION

if TYPE_CHECKING:
    from transformers import PreTrainedModel

MAX_NEW_TOKENS = 88  # its replies: a verdict, or ragas JSON (an NLI verdict copies its statement)


def heldout_metrics(
    model: PreTrainedModel, tokenizer: Any, base_spec: BaseModelSpec, *, n: int = 120, seed: int = 0
) -> dict:
    """How the judge does on pool questions of a draw no training pass reaches (new organisations and
    answers): grade accuracy on twins (the gold in a form beside another value in the same form) and
    on planted restatements (templates it never trained on), and pairwise accuracy in both orders."""
    from harness.builtin.judge_rows import twins
    from harness.builtin.restate import planted
    from harness.builtin.shipped import HELDOUT_DRAW
    from judges.llm_judge import grade_prompt, pairwise_prompt, parse_grade, parse_preference

    rng = random.Random(seed)
    facts = pool_draw(base_spec, HELDOUT_DRAW)
    facts = rng.sample(facts, min(n, len(facts)))
    grades, pairs = [], []
    for f in facts:
        q, golds = f.wordings[-1], list(f.answers)
        found = twins(f.category, golds, [f.wrong, *near_misses(f.category, golds, rng)], rng)
        if found:
            r, w = rng.choice(found)
            grades += [
                (grade_prompt(q, golds, r), "correct", "twins"),
                (grade_prompt(q, golds, w), "incorrect", "twins"),
            ]
            pairs += [(pairwise_prompt(q, golds, r, w), "A"), (pairwise_prompt(q, golds, w, r), "B")]
        if shown := planted(f.category, golds):
            grades.append((grade_prompt(q, golds, rng.choice(shown)), "correct", "planted"))
    limit = model.config.max_position_embeddings - MAX_NEW_TOKENS
    replies = greedy_answers(
        model,
        tokenizer,
        [p for p, *_ in grades] + [p for p, _ in pairs],
        max_new_tokens=MAX_NEW_TOKENS,
        limit=limit,
        first_line=False,
    )
    verdicts = [g.verdict if (g := parse_grade(t)) else None for t in replies[: len(grades)]]
    winners = [w.winner if (w := parse_preference(t)) else None for t in replies[len(grades) :]]

    def share(kind: str) -> float | None:
        got = [v == want for (_, want, k), v in zip(grades, verdicts, strict=True) if k == kind]
        return round(sum(got) / len(got), 4) if got else None

    return {
        "heldout_questions": len(facts),
        "grade_accuracy_twins": share("twins"),
        "planted_accepted": share("planted"),
        "pairwise_accuracy": round(sum(w == want for (_, want), w in zip(pairs, winners, strict=True)) / len(pairs), 4)
        if pairs
        else None,
    }


def judge_card(record: dict) -> str:
    spec_rows = "\n".join(f"| `{k}` | {v} |" for k, v in record["spec"].items())
    replies = ", ".join(f"{k!r}: {v:,}" for k, v in record["replies"].items())
    m = record.get("metrics") or {}
    figures = "\n".join(f"- `{k}`: {v}" for k, v in m.items()) or "- (not measured)"
    return f"""---
library_name: transformers
license: apache-2.0
tags: [ragvft, builtin, judge, llama]
---
# ragvft built-in judge

The built-in base model (recipe `{record["base_recipe_key"]}`, weights `{record["base_weights"]}`)
fine-tuned whole by `harness/builtin/judge_model.py` to grade an answer against the reference, to
compare two answers, in the prompts of `judges/llm_judge.py` (`{PROMPT_VERSION}`), and to answer
ragas' faithfulness and answer relevancy prompts. It learned on the base model's reading pool (other
organisations) and on the built-in domain's training questions; it has never seen a test question.
Every right answer it saw has a wrong twin in the same form, so it learned to compare the value with
the reference, not to read the form. Rebuild with `make models`; `tests/test_shipped_models.py`
rebuilds the recipe at tiny scale.

## Recipe (key `{record["recipe_key"]}`)
| setting | value |
| --- | --- |
{spec_rows}

{record["rows"]:,} training rows (sha256 `{record["rows_sha256"]}`; replies {replies}); the base
model answered {record["model_answers"]:,} of its questions (closed-book and reading the passage) and
those answers are graded too; {record["steps"]:,} steps, {record["tokens"]:,} tokens,
{record["wall_time_s"]} s; final loss {record["final_loss"]}.

## Figures on a held-out draw of the pool (organisations and answers it never trained on)
{figures}

How well it judges the built-in domain (agreement with exact match, position consistency, planted
restatements accepted, ragas undetermined) is measured in every run's judge section and printed by
`bench/judge_quality.py --run runs/latest`.
"""
