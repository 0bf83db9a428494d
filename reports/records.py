"""What crosses between the stages and onto disk, typed: a result row (`results.jsonl`), the summary
(`summary.json`), the blessed baseline (`ragvft bless`) and the gate's result.

A row is a TypedDict (plain dicts at run time, as every reader takes them); the others are pydantic
models. The models declare their fields in the order the JSON files hold them, so a model dumped is
the same bytes as the dict it came from; the deep, open-ended parts (per-metric statistics, the
judge's figures) stay dicts.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict, cast

from pydantic import BaseModel, ConfigDict, Field

BASELINE_FORMAT = "ragvft-baseline-1"


class ScoreRecord(TypedDict):
    """One metric's score of one answer."""

    value: float | None  # None: undetermined
    reason: str
    label: NotRequired[str]  # a label metric's predicted label (PubMedQA's yes/no/maybe)


class Hit(TypedDict):
    id: str
    score: float


class ResultRow(TypedDict):
    """One line of `results.jsonl`: a variant's answer to a question, its prompt and its scores
    (`harness.run.rows.make_row`; the judge stage adds scores and `judge`, the pipeline `leaked`)."""

    variant: str
    question_id: str
    question: str
    category: str | None
    slice: str | None
    gold_answers: list[str]
    gold_passage_ids: list[str]
    gold_passage_text: list[str | None]  # None: a gold passage the corpus lacks
    prompt: str
    answer: str
    retrieved: list[Hit] | None  # None: a closed-book variant
    retrieved_text: list[str] | None
    retrieval: dict[str, Any] | None  # retrieval metrics against the gold passages
    scores: dict[str, ScoreRecord]
    tokens_in: int
    tokens_out: int
    latency_s: float
    adapter: str | None  # the adapter's identity
    seed: int | None  # the adapter's training seed
    generation_key: str
    judge: NotRequired[dict[str, Any]]  # the judge's verdicts: {"grade": ..., "pairwise": ...}
    leaked: NotRequired[bool]  # the question overlaps the training data (`suites.leakage`)


def plain(rows: list[ResultRow]) -> list[dict[str, Any]]:
    """The same rows, as the readers still typed `list[dict]` take them (no copy)."""
    return cast("list[dict[str, Any]]", rows)


Stats = dict[str, Any]  # one metric's statistics: mean, ci95, n, undetermined, ...
ByVariant = dict[str, dict[str, Stats]]  # variant -> metric -> statistics


class Summary(BaseModel):
    """`summary.json`: `reports.aggregate.summarize`, then what the pipeline adds, in file order."""

    model_config = ConfigDict(extra="allow")  # later additions (`human_agreement`, from labels)

    suite: str = ""
    retrieval: dict[str, dict[str, Any]] = Field(default_factory=dict)
    baseline_variant: str | None = None
    metrics: list[str]
    variants: ByVariant
    breakdown: dict[str, dict[str, ByVariant]] = Field(default_factory=dict)  # slice/category -> group
    deltas: dict[str, dict[str, Stats | None]] = Field(default_factory=dict)  # against the baseline variant
    multiple_comparisons: dict[str, Any] = Field(default_factory=dict)
    length_controlled: dict[str, Any] = Field(default_factory=dict)
    judge_reliability: dict[str, Any] = Field(default_factory=dict)
    gate: dict[str, Any] = Field(default_factory=dict)  # a GateResult's JSON form
    metric_info: dict[str, dict[str, Any]] = Field(default_factory=dict)  # each metric's scorer
    forgetting: dict[str, Any] = Field(default_factory=dict)
    leakage: dict[str, Any] = Field(default_factory=dict)
    adapter_checks: dict[str, dict[str, Any] | None] = Field(default_factory=dict)
    attribution: dict[str, Any] = Field(default_factory=dict)
    metric_gap: dict[str, Any] = Field(default_factory=dict)
    decision: dict[str, Any] = Field(default_factory=dict)
    power: dict[str, dict[str, Any]] = Field(default_factory=dict)  # each gate rule's power


Value = int | float | None  # a score as the file holds it (int kept int: the JSON's own number)


class BlessedMetric(BaseModel):
    mean: Value
    per_question: dict[str, Value] | None = None  # question id -> value


class Baseline(BaseModel):
    """The blessed baseline `ragvft bless` writes (sorted keys) and the gate compares with."""

    format: Literal["ragvft-baseline-1"]
    run_id: str | None = None
    blessed_at: str | None = None
    git: dict[str, Any] | None = None
    suite: dict[str, Any] | None = None  # the blessed run's manifest `suite`: name, digests, sizes
    # question id -> digests of its text, gold answers and gold passages; None: blessed by an older ragvft
    questions: dict[str, dict[str, str]] | None = None
    variants: dict[str, dict[str, BlessedMetric]] = Field(default_factory=dict)


class GateFamily(BaseModel):
    """The rules taken together: each at its one-sided level, the gate passing only if all pass."""

    rules: int
    rule_level: float
    pass_error: float
    false_alarm_unchanged: float | None  # the chance an unchanged run fails some rule by chance


class GateResult(BaseModel):
    """The gate's verdict (`summary["gate"]`, `ragvft gate`). Its JSON form (`dump`) holds only the
    fields set: a comparison has `family`, a run of another suite `suite_differences`, a gated bench
    `baseline` (the blessed file), a bench with no gate the status alone."""

    status: Literal["pass", "fail", "error", "not configured"]
    blessed_run: str | None = None
    rules: list[dict[str, Any]] = Field(default_factory=list)  # rule, its settings, passed, reason, ...
    failed: int = 0
    family: GateFamily | None = None
    suite_differences: list[str] | None = None
    baseline: str | None = None

    def dump(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)
