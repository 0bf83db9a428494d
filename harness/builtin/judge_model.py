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
passage) are graded too. Every label is by rule. It first learns on the grade and pairwise rows cut
to the reference and the answers (`short_form`: the comparison and nothing else), then on the whole
prompts (`JudgeSpec.short_steps`).

The loop is `loop.fit` (loss on the reply only), not TRL's SFTTrainer: the same measurement as
the base model's (0.15 s against 0.37 s a step here) and a whole-model fine-tune of 2M parameters.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.cache import building, digest, folder_hash, library_versions
from harness import prompts
from harness.builtin.basemodel import BUILD_RECORD, EOS, BaseModelSpec, pool_draw
from harness.builtin.judge_figures import MAX_NEW_TOKENS, heldout_metrics, judge_card
from harness.builtin.judge_rows import (
    NONCOMMITTAL,
    ROWS_VERSION,
    fact_rows,
    is_right,
    off_kind,
    ragas_rows,
)
from harness.builtin.loop import fit, greedy_answers
from harness.builtin.restate import near_misses
from judges.llm_judge import PROMPT_VERSION

if TYPE_CHECKING:
    from transformers import PreTrainedModel

__all__ = ["JudgeSpec", "build_judge", "is_right", "judge_rows", "shipped_judge"]


@dataclass(frozen=True)
class JudgeSpec:
    """Everything that determines the built-in judge besides its base model."""

    seed: int = 7
    draws: int = 36  # draws of the pool, each with new organisations, products and answers
    stride: int = 6  # of each draw, one fact in `stride`: many structures, not many facts of one
    domain_passes: int = 6  # passes over the domain's training questions (never a test question)
    pairs: int = 3  # (right, wrong) twins a question, beside each model answer's
    off_kind: int = 4  # wrong answers of another kind a question (`judge_rows.off_kind`)
    ragas_fraction: float = 0.5  # of the questions, those that also give ragas rows
    # first, steps on the grade and pairwise rows cut to their reference and answers (no instruction,
    # no question): the comparison is learnt where it is all there is; trained on the whole prompts
    # alone it never left chance (docs/judge.md#the-built-in-judge)
    short_steps: int = 1500
    steps: int = 2000
    batch_size: int = 32
    learning_rate: float = 1e-3
    warmup_ratio: float = 0.05

    def recipe_key(self, base_recipe: str) -> str:
        return digest(
            {"spec": asdict(self), "base": base_recipe, "prompts": PROMPT_VERSION, "rows": ROWS_VERSION}
        )


def questions(base_spec: BaseModelSpec, spec: JudgeSpec) -> list[tuple]:
    """(key, question, fact, others of its kind) the judge learns on: pool facts of many draws (other
    organisations), then the built-in domain's training questions (its SFT wordings: a test question is
    never among them), `domain_passes` times."""
    from suites.builtin import _domain_facts, builtin_suite

    out = []
    for draw in range(spec.draws):
        facts = pool_draw(base_spec, draw)
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
    items = items or questions(base_spec, spec)
    elsewhere = list(dict.fromkeys((f.category, f.answers[0]) for _, _, f, _ in items))
    for key, q, f, kin in items:
        golds = list(f.answers)
        others = [o for o in kin if not set(o.answers) & set(golds)]
        wrongs = [f.wrong, *near_misses(f.category, golds, rng)]
        if others:
            wrongs.append(rng.choice(others).answers[0])
        mine = model_answers.get(key, [])
        foreign = off_kind(q, f.category, elsewhere, rng)[: spec.off_kind]
        rows += fact_rows(q, f.category, golds, wrongs, mine, rng, pairs=spec.pairs, foreign=foreign)
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


def base_answers(model: PreTrainedModel, tokenizer: Any, items: list[tuple]) -> dict[tuple, list[str]]:
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


def short_form(prompt: str, reply: str) -> tuple[str | None, str]:
    """A grade or pairwise row cut to its reference and answers (the comparison, and nothing else to
    read); (None, reply) for a ragas row."""
    at = prompt.find("\nReference: ")
    return (prompt[at + 1 :] if at >= 0 and not reply.startswith("{") else None), reply


def _encode(
    tokenizer: Any, rows: list[tuple[str, str]], limit: int
) -> tuple[list[list[int]], list[list[bool]]]:
    """Token ids of prompt and reply, and which are the reply's (the loss is on those). A prompt is
    cut as the engine cuts it: its beginning goes, leaving room for the reply."""
    heads = tokenizer([p for p, _ in rows])["input_ids"]  # batched: 1.5x faster than row by row here
    tails = tokenizer([" " + r + EOS for _, r in rows])["input_ids"]
    sequences, targets = [], []
    for head, tail in zip(heads, tails, strict=True):
        head = head[-limit:]
        sequences.append(head + tail)
        targets.append([False] * len(head) + [True] * len(tail))
    return sequences, targets


def _batched_stream(lengths: list[int], steps: int, batch_size: int, rng: random.Random) -> list[int]:
    """Row indices for `steps` batches: shuffled passes over the rows, each batch of rows of like
    length (ragas' prompts run about twice as long as a grade's: padding them together doubles a
    step's cost), batches in random order."""
    need = steps * batch_size
    stream: list[int] = []
    while len(stream) < need:
        order = list(range(len(lengths)))
        rng.shuffle(order)
        stream += order
    stream = stream[:need]
    window = batch_size * 32
    batches = []
    for i in range(0, need, window):
        chunk = sorted(stream[i : i + window], key=lambda j: lengths[j])
        batches += [chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return [j for b in batches for j in b]


def build_judge(
    base_folder: Path, base_spec: BaseModelSpec, spec: JudgeSpec, out: Path, *, progress: bool = True
) -> Path:
    """Fine-tune the base model in `base_folder` into the judge and write it to `out/judge`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.time()
    torch.manual_seed(spec.seed)
    tokenizer = AutoTokenizer.from_pretrained(base_folder)
    model = AutoModelForCausalLM.from_pretrained(base_folder)
    model.eval()
    items = questions(base_spec, spec)  # the pool's draws are generated once
    answers = base_answers(model, tokenizer, items)
    rows = judge_rows(base_spec, spec, answers, items)
    losses, tokens = _fine_tune(model, tokenizer, rows, spec, progress)
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
        "steps": spec.short_steps + spec.steps,
        "tokens": tokens,
        "final_loss": losses[-1]["loss"],
        "metrics": metrics,
        "loss_curve": losses,
        "wall_time_s": round(time.time() - started, 1),
        "libraries": library_versions(),
    }
    return _save_judge(out, f".judge-{int(started)}", model, tokenizer, record)


def _fine_tune(
    model: PreTrainedModel, tokenizer: Any, rows: list[tuple[str, str]], spec: JudgeSpec, progress: bool
) -> tuple[list[dict], int]:
    """(loss curve, tokens) of the two phases, the loss on the reply: the grade and pairwise rows cut
    to their reference and answers (`short_steps`), then every row whole (`steps`), each phase's
    batches drawn with a seed of its own."""
    # a prompt is cut as the engine cuts it: its beginning goes, leaving room for the reply
    limit = model.config.max_position_embeddings - MAX_NEW_TOKENS
    losses: list[dict] = []
    tokens = 0
    short = [(p, r) for p, r in (short_form(p, r) for p, r in rows) if p is not None]
    for phase, (phase_rows, steps) in enumerate([(short, spec.short_steps), (rows, spec.steps)]):
        if not steps or not phase_rows:
            continue
        sequences, targets = _encode(tokenizer, phase_rows, limit)
        rng = random.Random(spec.seed + phase)
        stream = _batched_stream([len(x) for x in sequences], steps, spec.batch_size, rng)
        curve, n = fit(
            model,
            [sequences[i] for i in stream],
            targets=[targets[i] for i in stream],
            steps=steps,
            batch_size=spec.batch_size,
            learning_rate=spec.learning_rate,
            warmup_ratio=spec.warmup_ratio,
            pad_id=tokenizer.pad_token_id,
            label="training the built-in judge" + (" (reference and answers)" if phase == 0 else ""),
            progress=progress,
        )
        done = losses[-1]["step"] if losses else 0
        losses += [{**c, "step": c["step"] + done, "phase": ("short", "whole")[phase]} for c in curve]
        tokens += n
    return losses, tokens


def _save_judge(out: Path, staging: str, model: PreTrainedModel, tokenizer: Any, record: dict) -> Path:
    """The judge, its build record and its card in `out/judge`, written in `out/<staging>` first."""
    from harness.builtin.shipped import SHARD_SIZE

    final = out / "judge"
    staged = out / staging
    with building(staged) as tmp:
        model.save_pretrained(tmp, max_shard_size=SHARD_SIZE)
        tokenizer.save_pretrained(tmp)
        (tmp / BUILD_RECORD).write_text(json.dumps(record, indent=2))
        (tmp / "README.md").write_text(judge_card(record))
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
