"""LLM-as-judge: the prompts ragvft writes, and the parsers that read a judge's verdict.

Two modes, the same for every judge backend (the built-in judge, an in-process HF model, any
OpenAI-compatible server):

* ``grade``: reference-guided grading of one answer: a verdict (correct / incorrect) and a rubric
  score from 1 to 5, with the judge's rationale.
* ``pairwise``: a variant's answer against the baseline variant's, judged in both orders (A/B, then
  B/A); a pair whose two verdicts disagree is a tie (position bias cancels out).

A reply that does not parse is asked once more with a reminder, then recorded as undetermined
(value None): it is counted as such and never averaged in as zero.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from judges.types import Score

Parsed = TypeVar("Parsed")  # what a parser makes of the judge's text: Grade or Preference

PROMPT_VERSION = "judge-v1"  # part of every judge call's cache key: bump when a template changes

GRADE_TEMPLATE = (
    "Grade the answer against the reference answer.\n"
    'Reply with JSON only: {{"verdict": "correct" or "incorrect", "score": 1 to 5, "rationale": "why"}}\n'
    "Question: {question}\nReference: {reference}\nAnswer: {answer}\nJSON:"
)
PAIRWISE_TEMPLATE = (
    "Which answer is better, given the reference answer?\n"
    'Reply with JSON only: {{"winner": "A", "B" or "tie", "rationale": "why"}}\n'
    "Question: {question}\nReference: {reference}\nAnswer A: {a}\nAnswer B: {b}\nJSON:"
)
REMINDER = "Your reply was not a JSON object of that form. Reply with that JSON object only.\nJSON:"


def reference_text(answers: Sequence[str]) -> str:
    return " / ".join(answers)


def grade_prompt(question: str, answers: Sequence[str], answer: str) -> str:
    return GRADE_TEMPLATE.format(question=question, reference=reference_text(answers), answer=answer)


def pairwise_prompt(question: str, answers: Sequence[str], a: str, b: str) -> str:
    return PAIRWISE_TEMPLATE.format(question=question, reference=reference_text(answers), a=a, b=b)


def retry_prompt(prompt: str) -> str:
    """The same request once more, with a reminder of the reply's form."""
    return prompt.removesuffix("JSON:") + REMINDER


@dataclass(frozen=True)
class Grade:
    verdict: str  # "correct" | "incorrect"
    score: int  # 1..5
    rationale: str


@dataclass(frozen=True)
class Preference:
    winner: str  # "A" | "B" | "tie"
    rationale: str


def _json_object(text: str) -> dict | None:
    """The first JSON object in `text` (judges often wrap it in prose or a code fence)."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    return None


_COMPACT_GRADE = re.compile(r"^\W*(correct|incorrect)\W+([1-5])\b", re.IGNORECASE)
_COMPACT_WINNER = re.compile(r"^\W*(A|B|[Tt]ie)\b")  # case-sensitive: "a tie" is not "A"


def parse_grade(text: str) -> Grade | None:
    """A JSON object {"verdict", "score", "rationale"}, or the compact form "correct 5"."""
    obj = _json_object(text or "")
    if obj is None:
        m = _COMPACT_GRADE.match(text or "")
        return Grade(m[1].lower(), int(m[2]), "") if m else None
    verdict = str(obj.get("verdict", "")).strip().lower()
    try:
        score = int(obj["score"])
    except (KeyError, TypeError, ValueError):
        return None
    if verdict not in ("correct", "incorrect") or not 1 <= score <= 5:
        return None
    return Grade(verdict, score, str(obj.get("rationale") or "").strip())


def parse_preference(text: str) -> Preference | None:
    """A JSON object {"winner", "rationale"}, or the compact form "A", "B" or "tie"."""
    obj = _json_object(text or "")
    if obj is None:
        m = _COMPACT_WINNER.match(text or "")
        return Preference({"a": "A", "b": "B", "tie": "tie"}[m[1].lower()], "") if m else None
    said = str(obj.get("winner", "")).strip()
    winner = {"a": "A", "b": "B", "tie": "tie"}.get(said.lower())
    if winner is None:
        return None
    return Preference(winner, str(obj.get("rationale") or "").strip())


def ask(
    complete: Callable[[list[str], bool], list[str | None]],
    prompts: list[str],
    parse: Callable[[str], Parsed | None],
) -> list[tuple[Parsed | None, str | None, int]]:
    """Ask every prompt; ask the unparseable ones once more with a reminder.

    `complete(prompts, first)` returns the judge's raw text per prompt (None when the call failed);
    `first` is False for the second asking. Returns (parsed or None, raw text or None, attempts).
    """
    first = complete(prompts, True)
    out = [(parse(t) if t is not None else None, t, 1) for t in first]
    again = [i for i, (p, t, _) in enumerate(out) if p is None and t is not None]
    if again:
        second = complete([retry_prompt(prompts[i]) for i in again], False)
        for i, t in zip(again, second, strict=False):
            parsed = parse(t) if t is not None else None
            out[i] = (parsed, t if t is not None else out[i][1], 2)
    return out


def grade_scores(parsed: Grade | None, raw: str | None, error: str | None = None) -> dict[str, Score]:
    """The `judge` (1 correct / 0 incorrect) and `judge_score` (rubric 1-5) scores of one grading."""
    if parsed is None:
        why = error or f"undetermined: unparseable judge output {(raw or '')[:120]!r}"
        return {"judge": Score("judge", None, why), "judge_score": Score("judge_score", None, why)}
    reason = parsed.rationale or f"judge said {parsed.verdict}, {parsed.score}/5"
    return {
        "judge": Score("judge", float(parsed.verdict == "correct"), reason, parsed.verdict),
        "judge_score": Score("judge_score", float(parsed.score), reason),
    }


def combine_orders(ab: Preference | None, ba: Preference | None) -> tuple[str | None, bool | None]:
    """The variant's result against the baseline from both orders (the variant is A in `ab` and B
    in `ba`): "win", "loss", "tie", or None (undetermined); and whether the two orders agreed."""
    if ab is None or ba is None:
        return None, None
    first = {"A": "win", "B": "loss", "tie": "tie"}[ab.winner]
    second = {"B": "win", "A": "loss", "tie": "tie"}[ba.winner]
    if first == second:
        return first, True
    return "tie", False


PAIRWISE_VALUE = {"win": 1.0, "tie": 0.5, "loss": 0.0}
