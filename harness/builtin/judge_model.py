"""The built-in judge model: the built-in base model fine-tuned whole to grade an answer against the
reference ("correct 5" / "incorrect 1"), to compare two answers ("A" / "B" / "tie"), in the exact
prompts of `judges.llm_judge`, and to answer ragas' faithfulness and answer relevancy prompts (JSON).
Built once by maintainers (`make models`) and shipped beside the base.

It learns on two sets of questions, never a test question of the bench:
- the base model's reading pool (facts about *other* organisations, each draw with new organisations,
  products and answers): many names it must compare without knowing them;
- the built-in domain's training questions (the SFT wordings; a test question is worded otherwise),
  so it knows the domain's words and the answers the variants write to them.
Its rows (`harness.builtin.judge_rows`) pair every right answer with a wrong one in the same form, so
only the value tells them apart; its own answers (the base model's, closed-book and reading the
passage) are graded too. Every label is by rule.

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
from harness.builtin.judge_rows import NONCOMMITTAL, ROWS_VERSION, fact_rows, is_right, ragas_rows
from harness.builtin.restate import near_misses
from judges.llm_judge import PROMPT_VERSION

__all__ = ["JudgeSpec", "build_judge", "is_right", "judge_rows", "shipped_judge"]

MAX_NEW_TOKENS = 88  # its replies: a verdict, or ragas JSON (an NLI verdict copies its statement)


@dataclass(frozen=True)
class JudgeSpec:
    """Everything that determines the built-in judge besides its base model."""

    seed: int = 7
    draws: int = 36  # draws of the pool, each with new organisations, products and answers
    stride: int = 6  # of each draw, one fact in `stride`: many structures, not many facts of one
    domain_passes: int = 6  # passes over the domain's training questions (never a test question)
    pairs: int = 3  # (right, wrong) twins a question, beside each model answer's
    ragas_fraction: float = 0.5  # of the questions, those that also give ragas rows
    steps: int = 2000
    batch_size: int = 32
    learning_rate: float = 1e-3
    warmup_ratio: float = 0.05

    def recipe_key(self, base_recipe: str) -> str:
        return digest(
            {"spec": asdict(self), "base": base_recipe, "prompts": PROMPT_VERSION, "rows": ROWS_VERSION}
        )


def greedy_answers(
    model,
    tokenizer,
    texts: list[str],
    *,
    max_new_tokens: int = 16,
    batch_size: int = 32,
    limit: int | None = None,
    first_line: bool = True,
) -> list[str]:
    """Greedy answers, each cut at its first line break (as the bench reads an answer) unless
    `first_line` is False; a prompt longer than `limit` tokens loses its beginning, as the engine cuts
    it."""
    import torch

    tokenizer.padding_side = "left"
    out: list[str] = []
    for i in range(0, len(texts), batch_size):
        ids = [tokenizer(t)["input_ids"][-limit if limit else 0 :] for t in texts[i : i + batch_size]]
        batch = tokenizer.pad({"input_ids": ids}, return_tensors="pt")
        with torch.no_grad():
            gen = model.generate(
                **batch, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
            )
        for row in gen[:, batch["input_ids"].shape[1] :]:
            text = tokenizer.decode(row, skip_special_tokens=True)
            out.append(text.strip().split("\n")[0].strip() if first_line else text)
    return out


def _pool(base_spec: BaseModelSpec, draw: int):
    """The reading pool's facts of one draw, each draw with new organisations (structure) and answers."""
    from suites.builtin import reading_pool

    return reading_pool(
        base_spec.seed,
        scale=base_spec.pool_scale,
        domain_scale=base_spec.domain_scale,
        draw=draw,
        structure=draw,
    )


def questions(base_spec: BaseModelSpec, spec: JudgeSpec) -> list[tuple]:
    """(key, question, fact, others of its kind) the judge learns on: pool facts of many draws (other
    organisations), then the built-in domain's training questions (its SFT wordings: a test question is
    never among them), `domain_passes` times."""
    from suites.builtin import _domain_facts, builtin_suite

    out = []
    for draw in range(spec.draws):
        facts = _pool(base_spec, draw)
        kinds: dict[str, list] = {}
        for f in facts:
            kinds.setdefault(f.category, []).append(f)
        for i, f in enumerate(facts):
            if i % spec.stride == draw % spec.stride:
                out.append(
                    (("pool", draw, i), f.wordings[(draw + i) % len(f.wordings)], f, kinds[f.category])
                )
    suite = builtin_suite(base_spec.seed, scale=base_spec.domain_scale)
    trained = {p.fact_id for p in suite.training.sft}
    facts = [f for f in _domain_facts(base_spec.seed, base_spec.domain_scale)[0] if f.id in trained]
    kinds = {}
    for f in facts:
        kinds.setdefault(f.category, []).append(f)
    for p in range(spec.domain_passes):
        out += [(("domain", p, i), f.wordings[0], f, kinds[f.category]) for i, f in enumerate(facts)]
    return out


def judge_rows(
    base_spec: BaseModelSpec,
    spec: JudgeSpec,
    model_answers: dict[tuple, list[str]],
    items: list[tuple] | None = None,
) -> list[tuple[str, str]]:
    """(prompt, reply) rows. `model_answers[key]` are a model's answers to that question (closed-book
    and reading its passage), when there are any; `items` are `questions(base_spec, spec)` when the
    caller has them already."""
    from judges.reference_free import ragas_prompts

    rng = random.Random(spec.seed)
    ragas = ragas_prompts() if spec.ragas_fraction > 0 else None
    rows: list[tuple[str, str]] = []
    for key, q, f, kin in items or questions(base_spec, spec):
        golds = list(f.answers)
        others = [o for o in kin if not set(o.answers) & set(golds)]
        wrongs = [f.wrong, *near_misses(f.category, golds, rng)]
        if others:
            wrongs.append(rng.choice(others).answers[0])
        mine = model_answers.get(key, [])
        rows += fact_rows(q, f.category, golds, wrongs, mine, rng, pairs=spec.pairs)
        if ragas is not None and rng.random() < spec.ragas_fraction:
            distractor = rng.choice(others).passage if others else f.passage
            answer, kind = rng.choice([(golds[0], f.category), (rng.choice(wrongs), f.category)])
            if mine and rng.random() < 0.5:
                answer = rng.choice(mine)
                kind = f.category if is_right(f.category, golds, answer) else None
            if rng.random() < 0.1:
                answer, kind = rng.choice(NONCOMMITTAL), None
            rows += ragas_rows(ragas, q, answer, f.passage, distractor, rng, kind=kind)
    rng.shuffle(rows)
    return rows


def base_answers(model, tokenizer, items: list[tuple]) -> dict[tuple, list[str]]:
    """The base model's own answers to the questions the judge learns on (`questions`): closed-book
    and reading the passage (what the bench's `base` and `rag` variants write). A domain question,
    asked again in every pass, is answered once."""
    first = {key: (q, f) for key, q, f, _ in items if key[0] != "domain" or key[1] == 0}
    texts = [
        t for q, f in first.values() for t in (prompts.closed_book(q), prompts.with_passages(q, [f.passage]))
    ]
    answers = greedy_answers(model, tokenizer, texts)
    out = {k: answers[2 * i : 2 * i + 2] for i, k in enumerate(first)}
    return {key: out[key if key in out else ("domain", 0, key[2])] for key, *_ in items}


def _reply_kind(reply: str) -> str:
    """A training reply's verdict ("correct 5", "incorrect 1", "A", "B", "tie") or "ragas JSON"."""
    return reply if not reply.startswith("{") else "ragas JSON"


def _batched_stream(lengths: list[int], spec: JudgeSpec, rng: random.Random) -> list[int]:
    """Row indices for `spec.steps` batches: shuffled passes over the rows, each batch of rows of like
    length (ragas' prompts run about twice as long as a grade's: padding them together doubles a
    step's cost), batches in random order."""
    need = spec.steps * spec.batch_size
    stream: list[int] = []
    while len(stream) < need:
        order = list(range(len(lengths)))
        rng.shuffle(order)
        stream += order
    stream = stream[:need]
    window = spec.batch_size * 32
    batches = []
    for i in range(0, need, window):
        chunk = sorted(stream[i : i + window], key=lambda j: lengths[j])
        batches += [chunk[k : k + spec.batch_size] for k in range(0, len(chunk), spec.batch_size)]
    rng.shuffle(batches)
    return [j for b in batches for j in b]


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
    items = questions(base_spec, spec)  # the pool's draws are generated once
    answers = base_answers(model, tokenizer, items)
    rows = judge_rows(base_spec, spec, answers, items)
    # a prompt is cut as the engine cuts it: its beginning goes, leaving room for the reply
    limit = model.config.max_position_embeddings - MAX_NEW_TOKENS
    sequences, targets = [], []
    for prompt, reply in rows:
        head = tokenizer(prompt)["input_ids"][-limit:]
        tail = tokenizer(" " + reply + EOS)["input_ids"]
        sequences.append(head + tail)
        targets.append([False] * len(head) + [True] * len(tail))
    stream = _batched_stream([len(x) for x in sequences], spec, random.Random(spec.seed))
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
    metrics = heldout_metrics(model, tokenizer, base_spec)
    labels = [_reply_kind(r) for _, r in rows]
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
        "metrics": metrics,
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


def heldout_metrics(model, tokenizer, base_spec: BaseModelSpec, *, n: int = 120, seed: int = 0) -> dict:
    """How the judge does on pool questions of a draw no training pass reaches (new organisations and
    answers): grade accuracy on twins (the gold in a form beside another value in the same form) and
    on planted restatements (templates it never trained on), and pairwise accuracy in both orders."""
    from harness.builtin.judge_rows import twins
    from harness.builtin.restate import planted
    from harness.builtin.shipped import HELDOUT_DRAW
    from judges.llm_judge import grade_prompt, pairwise_prompt, parse_grade, parse_preference

    rng = random.Random(seed)
    facts = _pool(base_spec, HELDOUT_DRAW)
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
    verdicts = [(parse_grade(t).verdict if parse_grade(t) else None) for t in replies[: len(grades)]]
    winners = [(parse_preference(t).winner if parse_preference(t) else None) for t in replies[len(grades) :]]

    def share(kind):
        got = [v == want for (_, want, k), v in zip(grades, verdicts) if k == kind]
        return round(sum(got) / len(got), 4) if got else None

    return {
        "heldout_questions": len(facts),
        "grade_accuracy_twins": share("twins"),
        "planted_accepted": share("planted"),
        "pairwise_accuracy": round(sum(w == want for (_, want), w in zip(pairs, winners)) / len(pairs), 4)
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
