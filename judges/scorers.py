"""The scorer registry: every metric a run can report, with its name, kind and direction in one place.

One signature for a scorer that reads one answer: `score(Answer) -> Score` (value and reason). The
judge's metrics (grade, pairwise) and ragas' metrics need a judge model and are written by the judge
stage, in batches with cached calls; they are registered here all the same (`source` says who writes
them), so that config validation, the report, the console and the gate learn a metric's kind and
direction from this table alone.

Adding a scorer: a function `Answer -> Score` and one line in `SCORERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from judges.exact import answer_match, exact_match, label_accuracy, token_f1
from judges.types import Score


@dataclass(frozen=True)
class Answer:
    """What a scorer reads: the question, the answer given, the gold answers, the passages in the
    prompt (None for a closed-book variant) and the gold passages' texts."""

    question: str
    answer: str
    golds: tuple[str, ...]
    passages: tuple[str, ...] | None = None
    gold_passages: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scorer:
    """A metric.

    `kind`: "binary" (0/1 per answer) or "graded". `higher_is_better`: the direction the gate and the
    report read deltas in. `source`: "answer" (scored here, by `score`), "judge:grade",
    "judge:pairwise" or "ragas" (written by the judge stage). `corpus_level`: the metric is a statistic
    of the whole set of answers (macro-F1), not a mean of per-answer values, so it cannot be paired or
    gated per question. `leaderboard`: shown in the leaderboard (else in the judge's section).
    `version` goes into every score key: bump it when `score` changes behaviour.
    """

    name: str
    kind: Literal["binary", "graded"]
    score: Callable[[Answer], Score] | None = None
    source: str = "answer"
    higher_is_better: bool = True
    corpus_level: bool = False
    leaderboard: bool = True
    version: str = "exact-v1"  # answer scorers only: judge and ragas calls are keyed by their prompts
    needs: tuple[str, ...] = ()  # what the judge stage must supply: "llm" (the judge), "embedder"
    help: str = ""

    def info(self) -> dict:
        """What a run's summary says of the metric (reports read this, not the registry)."""
        return {
            "kind": self.kind,
            "higher_is_better": self.higher_is_better,
            "source": self.source,
            "corpus_level": self.corpus_level,
            "leaderboard": self.leaderboard,
            "help": self.help,
        }


def judged(info: dict, metrics: list[str]) -> list[str]:
    """Of `metrics`, those the judge stage writes (by a summary's `metric_info`; unknown: answer)."""
    return [m for m in metrics if (info.get(m) or {}).get("source", "answer") != "answer"]


def _ragas(name: str, help: str, needs: tuple[str, ...] = ()) -> Scorer:
    return Scorer(name, "graded", source="ragas", leaderboard=False, needs=needs, help=help)


SCORERS: dict[str, Scorer] = {
    "em": Scorer("em", "binary", lambda a: exact_match(a.answer, a.golds), help="SQuAD exact match"),
    "f1": Scorer("f1", "graded", lambda a: token_f1(a.answer, a.golds), help="SQuAD token F1"),
    "match": Scorer(
        "match",
        "binary",
        lambda a: answer_match(a.answer, a.golds),
        help="the normalised gold answer contained in the normalised answer, as whole words",
    ),
    "accuracy": Scorer(
        "accuracy",
        "binary",
        lambda a: label_accuracy(a.answer, a.golds),
        help="label (yes/no/maybe) accuracy",
    ),
    "macro_f1": Scorer(
        "macro_f1",
        "graded",
        lambda a: label_accuracy(a.answer, a.golds),  # the per-answer label; the F1 is over the corpus
        corpus_level=True,
        version="corpus-v2",  # v1 stored per-answer accuracy as the row's value
        help="macro-F1 over the gold labels",
    ),
    "judge": Scorer(
        "judge", "binary", source="judge:grade", help="the judge's verdict: 1 correct, 0 incorrect"
    ),
    "judge_score": Scorer(
        "judge_score", "graded", source="judge:grade", leaderboard=False, help="rubric 1-5"
    ),
    "pairwise": Scorer(
        "pairwise", "graded", source="judge:pairwise", help="against the baseline: win 1, tie 1/2, loss 0"
    ),
    "faithfulness": _ragas("faithfulness", "claims of the answer supported by the passages", ("llm",)),
    "answer_relevancy": _ragas("answer_relevancy", "the answer addresses the question", ("llm", "embedder")),
    "context_precision": _ragas("context_precision", "retrieved passages that are relevant", ("llm",)),
    "context_recall": _ragas("context_recall", "reference claims found in the passages", ("llm",)),
    "nonllm_context_precision": _ragas("nonllm_context_precision", "retrieved passages like a gold one"),
    "nonllm_context_recall": _ragas("nonllm_context_recall", "gold passages found among the retrieved"),
}


def metrics_of(source: str) -> list[str]:
    """The registered metrics a source writes, in registry order."""
    return [name for name, s in SCORERS.items() if s.source == source]


def first_paired(metrics: list[str]) -> str | None:
    """The first of `metrics` that pairs question by question (a corpus-level one, as macro-F1, cannot):
    what the decision reads unless `decision.metric` says otherwise."""
    return next((m for m in metrics if not SCORERS[m].corpus_level), None)
