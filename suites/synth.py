"""Synthetic questions from documents: the rules every generated candidate must pass before it joins a
suite, each drop counted by its reason.

A candidate is a generator model's reply for one passage, a JSON object `{"question", "answer",
"type"}`. `check_candidates` keeps it only when the reply parses, its type is one asked for, its
answer occurs in the passage (as written or after SQuAD normalisation), every name, code and number
its question gives is a word of the passage (else it asks about something else), it is no
near-duplicate of a training example of the suite (`suites.leakage`, the leakage check), a reader
given the passage gives the same answer (EM, or token F1 at or above a threshold: the round trip), it
is no near-duplicate of a question already kept, and its type's share of the kept questions stays
under the cap. The reader is passed in (`read`), so this module never loads a model.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from judges.exact import exact_match_score, f1_score, normalize_answer
from suites.leakage import find_leaks
from suites.schema import Passage, QAPair, Question, TrainingSets

# The kinds of answer a generated question may ask for; a config picks among them (`synth.types`).
QUESTION_TYPES = ("numeric", "duration", "section", "person", "place", "other")
# The built-in domain's (and reading pool's) categories as question types: what the built-in
# question writer learns to label its questions with.
TYPE_OF_CATEGORY = {
    "pricing": "numeric",
    "warranty": "duration",
    "policy": "duration",
    "regulation": "section",
    "support": "person",
    "manufacturing": "place",
}

# Why a candidate was dropped, in the order the checks run.
REASONS = {
    "unparseable": "the reply is not a JSON object with string fields question, answer and type",
    "type_not_asked": "its type is not among the types asked for (synth.types)",
    "unsupported": "its answer does not occur in its passage (as written or normalised)",
    "ungrounded": "its question names what its passage does not (a name, a code or a number)",
    "leak": "a near-duplicate of a training example of the suite (the leakage check)",
    "round_trip": "a reader given the passage answers it otherwise (EM 0 and F1 under the threshold)",
    "duplicate": "a near-duplicate of a question already kept",
    "type_cap": "its type already holds its share of the kept questions (synth.max_type_share)",
}


@dataclass
class Candidate:
    """One generated question for one passage, and what the checks found."""

    passage: Passage
    reply: str  # the generator's raw reply
    question: str = ""
    answer: str = ""
    type: str = ""
    reader_answer: str | None = None  # what the reader said (the round trip), once asked
    round_trip_f1: float | None = None
    reason: str | None = None  # why it was dropped (a key of REASONS); None: kept
    detail: str = ""  # the evidence: the training question it repeats, the kept one it duplicates


@dataclass
class Outcome:
    """Every candidate with its verdict: `kept` in suite order, `dropped` with their reasons."""

    candidates: list[Candidate]
    kept: list[Candidate] = field(default_factory=list)

    @property
    def dropped(self) -> list[Candidate]:
        return [c for c in self.candidates if c.reason is not None]

    def counts(self) -> dict[str, int]:
        """Drops per reason, every reason listed (0 when none)."""
        found = Counter(c.reason for c in self.dropped)
        return {r: found.get(r, 0) for r in REASONS}

    def by_type(self) -> dict[str, dict[str, int]]:
        """{type: {"kept": n, "dropped": n}} over the candidates that parsed."""
        out: dict[str, dict[str, int]] = {}
        for c in self.candidates:
            if c.reason == "unparseable":
                continue
            row = out.setdefault(c.type, {"kept": 0, "dropped": 0})
            row["kept" if c.reason is None else "dropped"] += 1
        return dict(sorted(out.items()))


def parse_reply(reply: str) -> dict[str, str] | None:
    """The reply's first JSON object with non-blank string fields question, answer and type (text
    around it, a code fence say, is ignored), stripped, the type lower-cased; None when there is none."""
    decoder = json.JSONDecoder()
    start = reply.find("{")
    while start >= 0:
        try:
            obj, _ = decoder.raw_decode(reply, start)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            break
        start = reply.find("{", start + 1)
    else:
        return None
    out = {}
    for key in ("question", "answer", "type"):
        value = obj.get(key)
        if not isinstance(value, str) or not value.strip():
            return None
        out[key] = value.strip()
    out["type"] = out["type"].lower()
    return out


def supported(answer: str, passage: str) -> bool:
    """The answer occurs in the passage: as written (case aside), or after SQuAD normalisation, on
    word boundaries."""
    if answer.lower() in passage.lower():
        return True
    norm = normalize_answer(answer)
    return bool(norm) and f" {norm} " in f" {normalize_answer(passage)} "


# a question's names, codes and numbers: a capitalised word (not the question's first), or one with a
# digit; each must be a word of the passage
_NAMED = re.compile(r"(?<!^)(?<![.?!] )\b[A-Z][\w'-]*|\b\w*\d[\w.,-]*\w|\b\d\b")


def ungrounded(question: str, passage: str) -> list[str]:
    """The names, codes and numbers of `question` that are no word of `passage` (case aside): a
    question about "the Vewem D63" asked of a passage about the Vewem D36 is about something else,
    though its answer may occur in the passage."""
    words = set(re.findall(r"[\w'.,-]+", passage.lower()))
    words |= {w.strip(".,-'") for w in words}
    return [n for n in _NAMED.findall(question.strip()) if n.lower().strip(".,-'") not in words]


def round_trip(reader_answer: str, answer: str, threshold: float) -> tuple[bool, float]:
    """(whether the reader's answer matches the generated one: EM, or F1 >= threshold; the F1)."""
    f1 = f1_score(reader_answer, answer)
    return bool(exact_match_score(reader_answer, answer)) or f1 >= threshold, f1


def check_candidates(
    candidates: list[Candidate],
    *,
    read: Callable[[list[tuple[str, Passage]]], list[str]],
    training: TrainingSets,
    types: Sequence[str] = QUESTION_TYPES,
    round_trip_f1: float = 0.8,
    duplicate_threshold: float = 0.8,
    max_type_share: float = 1.0,
    seed: int = 0,
) -> Outcome:
    """Run every check on `candidates` (in order; each candidate's `reason` is set when it drops) and
    return the outcome. `read` answers (question, passage) pairs, in order: the round trip's reader,
    asked once for all candidates that passed the cheaper checks."""
    for c in candidates:
        _check_alone(c, types)
    alive = [c for c in candidates if c.reason is None]
    leaks = find_leaks(
        tuple(Question(str(i), c.question, (c.answer,)) for i, c in enumerate(alive)),
        training,
        threshold=duplicate_threshold,
    )
    for i, c in enumerate(alive):
        if (leak := leaks.get(str(i))) is not None:
            c.reason = "leak"
            c.detail = (
                f"{leak['kind']} ({leak['similarity']}) of {leak['where']}: {leak['training_question']}"
            )
    alive = [c for c in alive if c.reason is None]
    # `read` answers each pair once, in order
    for c, said in zip(alive, read([(c.question, c.passage) for c in alive]) if alive else [], strict=False):
        ok, c.round_trip_f1 = round_trip(said, c.answer, round_trip_f1)
        c.reader_answer = said
        if not ok:
            c.reason = "round_trip"
    kept = _distinct([c for c in alive if c.reason is None], duplicate_threshold)
    over = _over_cap(kept, max_type_share, seed)
    for c in over:
        c.reason = "type_cap"
    return Outcome(candidates, [c for c in kept if c.reason is None])


def _check_alone(c: Candidate, types: Sequence[str]) -> None:
    """The checks a candidate passes or fails on its own: its reply parses, its type was asked for,
    its answer is in the passage and the names its question uses are too."""
    parsed = parse_reply(c.reply)
    if parsed is None:
        c.reason = "unparseable"
        return
    c.question, c.answer, c.type = parsed["question"], parsed["answer"], parsed["type"]
    if c.type not in types:
        c.reason, c.detail = "type_not_asked", c.type
    elif not supported(c.answer, c.passage.text):
        c.reason = "unsupported"
    elif missing := ungrounded(c.question, c.passage.text):
        c.reason, c.detail = "ungrounded", ", ".join(missing)


def _distinct(candidates: list[Candidate], threshold: float) -> list[Candidate]:
    """The candidates kept in order, each one a near-duplicate of none kept before it (dropped)."""
    kept: list[Candidate] = []
    for c in candidates:
        prior = TrainingSets(sft=tuple(QAPair(k.question, k.answer) for k in kept))
        twin = find_leaks((Question("c", c.question, (c.answer,)),), prior, threshold=threshold)
        if twin:
            c.reason, c.detail = "duplicate", twin["c"]["training_question"]
        else:
            kept.append(c)
    return kept


def _over_cap(kept: list[Candidate], share: float, seed: int) -> list[Candidate]:
    """The candidates to drop so that no type holds more than `share` of what stays (at least an
    equal share of the types present), a seeded sample of each type over its cap."""
    have = Counter(c.type for c in kept)
    if not have:
        return []
    share = max(share, 1 / len(have))
    allowed = dict(have)
    while True:  # each pass lowers the caps of the others; it settles in a few passes
        total = sum(allowed.values())
        capped = {t: min(have[t], int(share * total + 1e-9)) for t in have}
        if capped == allowed:
            break
        allowed = capped
    rng = random.Random(seed)
    over: list[Candidate] = []
    for t, n in have.items():
        mine = [c for c in kept if c.type == t]
        over += rng.sample(mine, n - allowed[t])
    return over


def spread(passages: Sequence[Passage], n: int | None) -> list[Passage]:
    """At most `n` passages evenly spread over the corpus (every document gets its turn), in order."""
    if n is None or len(passages) <= n:
        return list(passages)
    step = len(passages) / n
    return [passages[int(i * step)] for i in range(n)]


def suite_rows(kept: Sequence[Candidate]) -> list[dict]:
    """The kept candidates as question rows of the JSONL suite format (`suites.jsonl`)."""
    return [
        {
            "id": f"syn-{i:04d}",
            "question": c.question,
            "answers": [c.answer],
            "gold_passage_ids": [c.passage.id],
            "category": c.type,
        }
        for i, c in enumerate(kept)
    ]


def corpus_rows(passages: Sequence[Passage]) -> list[dict]:
    """Passages as corpus rows of the JSONL suite format."""
    return [{"id": p.id, "text": p.text} | ({"source": p.source} if p.source else {}) for p in passages]
