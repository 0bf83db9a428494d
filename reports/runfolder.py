"""A run folder read back and checked: the one reader of `runs/<run-id>/` that every command taking one
uses (`ragvft gate`, `bless`, `review`, `labels import`). Each file it reads is UTF-8 JSON (results.jsonl
one object a line) holding no text that is not valid Unicode, of the shape its readers take: a row
(`ScoredRow`: what the gate and the baseline read of one; `AnsweredRow`: what the review page, the
labels and the reports read too), the
summary (`reports.records.Summary`, with every variant's statistics for every metric) and the manifest
(`ManifestShape`: the run's id, its config's seed, bootstrap, variants, gate, leakage and labels, its
suite). Anything else is one `InputError` naming the file, with the line (a row's) and the field. The
shapes only check: what is read is returned as written."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import InputError, lone_surrogate, read_bytes
from reports.records import Summary

SEEDS = 2**32  # what a run's seed may be (numpy's generators' range), as the config checks it


class _Shape(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")  # strict: a "1" or a true is no number


Interval = Annotated[list[float], Field(min_length=2, max_length=2)]  # [low, high]


class ScoreShape(_Shape):
    value: float | None
    reason: str = ""
    label: str = ""


class HitShape(_Shape):
    id: str
    score: float


class ScoredRow(_Shape):
    """What the gate and the baseline read of a row of results.jsonl (`reports.records.ResultRow`)."""

    variant: str
    question_id: str
    question: str
    gold_answers: list[str]
    gold_passage_ids: list[str] | None = None
    scores: dict[str, ScoreShape]
    seed: int | None = None
    leaked: bool = False


class AnsweredRow(ScoredRow):
    """What the review page, the labels and the reports read of a row too: the answer and the rest."""

    category: str | None
    slice: str | None
    answer: str
    gold_passage_text: list[str | None] | None = None
    retrieved: list[HitShape] | None = None
    retrieved_text: list[str] | None = None
    judge: dict[str, Any] | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    latency_s: float | None = None


class StatsShape(_Shape):
    """One metric's statistics in the summary (`reports.aggregate.metric_stats`)."""

    mean: float | None
    ci95: Interval | None
    n: int = Field(ge=0)
    undetermined: int = Field(ge=0)


class DeltaShape(_Shape):
    """A variant's difference from the baseline variant on one metric (`reports.stats.paired_delta`)."""

    mean: float
    ci95: Interval
    n: int = Field(ge=0)
    p_value: float | None
    significant: bool
    p_holm: float | None = None
    significant_holm: bool = False
    test: str = ""


class ComparisonsShape(_Shape):
    """The summary's `multiple_comparisons` (`reports.aggregate.adjust_family`)."""

    family: str
    size: int
    significant_raw: int
    significant_holm: int


class GitShape(_Shape):
    commit: str | None
    dirty: bool | None


class ReportManifestShape(_Shape):
    """What the reports show of a manifest besides `ManifestShape`: where and how the run ran."""

    model: dict[str, Any]
    git: GitShape
    seeds: dict[str, Any]
    hardware: dict[str, Any]
    timings: dict[str, float]
    cache: dict[str, Any]


class RuleShape(_Shape):
    variant: str
    metric: str
    margin: float | None = None
    floor: float | None = None


class GateShape(_Shape):
    blessed: str | None = None
    baseline: str | None = None  # its name in runs made before the rename
    rules: list[RuleShape] | None = None


class VariantShape(_Shape):
    name: str
    adapter: str | None = None
    adapter_path: str | None = None
    retriever: str | None = None
    k: int | None = None


class LeakageShape(_Shape):
    exclude: bool = False


class LabelsShape(_Shape):
    exclude_invalid: bool = False


class RunConfigShape(_Shape):
    """What is read of the run's config, as its manifest records it."""

    seed: int = Field(0, ge=0, lt=SEEDS)
    bootstrap_samples: int = Field(2000, ge=1, le=100_000)
    variants: list[VariantShape] | None = None
    gate: GateShape | None = None
    leakage: LeakageShape | None = None
    labels: LabelsShape | None = None


class SuiteShape(_Shape):
    corpus_digest: str | None = None


class ManifestShape(_Shape):
    run_id: str | None = None
    run_name: str | None = None
    config: RunConfigShape | None = None
    suite: SuiteShape | None = None
    adapters: dict[str, dict[str, Any]] | None = None
    cache: dict[str, Any] | None = None
    git: dict[str, Any] | None = None


@dataclass
class RunFolder:
    """A run folder, read and checked (`read_run_folder`)."""

    path: Path
    rows: list[dict[str, Any]]  # every row of results.jsonl, as written: leaked ones too
    summary: Summary
    manifest: dict[str, Any]

    @property
    def config(self) -> dict[str, Any]:
        """The run's config, as its manifest records it ({} when it records none)."""
        return self.manifest.get("config") or {}

    def compared(self) -> list[dict[str, Any]]:
        """The rows the run compared: with `leakage.exclude`, its leaked questions left out."""
        if (self.config.get("leakage") or {}).get("exclude"):
            return [r for r in self.rows if not r.get("leaked")]
        return self.rows


def read_run_folder(run_dir: Path, rows: type[ScoredRow] = AnsweredRow) -> RunFolder:
    """The run folder `run_dir`: its rows (each of the shape `rows`), summary and manifest, each
    checked (see the module)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        what = "no such folder" if not run_dir.exists() else "a file, not a folder"
        raise InputError(str(run_dir), f"not a ragvft run folder ({what})")
    for name in ("results.jsonl", "summary.json", "manifest.json"):
        if not (run_dir / name).exists():
            raise InputError(str(run_dir), f"not a ragvft run folder ({name} missing)")
    found = read_rows(run_dir / "results.jsonl", rows)
    summary = read_summary(run_dir / "summary.json")
    manifest = read_json_file(run_dir / "manifest.json")
    _check(ManifestShape, manifest, run_dir / "manifest.json", what="a JSON object (the run's manifest)")
    return RunFolder(run_dir, found, summary, manifest)


def read_text(path: Path) -> str:
    """The UTF-8 text of `path`, or an InputError naming it (and, past the first line, the line of the
    first byte that is not UTF-8)."""
    raw = read_bytes(path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        start = raw.rfind(b"\n", 0, e.start) + 1
        where = f"byte {e.start}" if line == 1 else f"byte {e.start - start} of the line"
        raise InputError(str(path), f"not UTF-8 text ({where})", line=line) from None


def parse_json(text: str, path: Path, line: int | None = None) -> Any:
    """JSON `text` (the whole of `path`, or its line `line`) parsed, every string valid Unicode; else an
    InputError naming the file, the line and (for a lone surrogate) the field."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(str(path), f"not valid JSON: {e.msg}", line=line or e.lineno) from None
    except RecursionError:
        raise InputError(str(path), "not valid JSON: nested too deeply", line=line) from None
    except ValueError:  # digits past Python's limit on reading an integer
        raise InputError(str(path), "not valid JSON: a number too long to read", line=line) from None
    bad = lone_surrogate(data)
    if bad is not None:
        place, what = bad
        raise InputError(
            str(path),
            f"not valid Unicode: a lone surrogate {what} (a \\u escape naming half a UTF-16 pair)",
            line=line,
            field=_dotted(place) or None,
        )
    return data


def read_json_file(path: Path) -> Any:
    """The JSON file `path`, read and parsed (`read_text`, `parse_json`)."""
    text = read_text(path)
    if not text.strip():
        raise InputError(str(path), "the file is empty")
    return parse_json(text, path)


def read_rows(path: Path, shape: type[ScoredRow] = AnsweredRow) -> list[dict[str, Any]]:
    """Every row of a run's results.jsonl, each a JSON object of the shape `shape` (blank lines
    skipped). Lines end at a newline only: an answer may hold U+2028, which `str.splitlines` splits at."""
    rows = []
    for number, line in enumerate(read_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        row = parse_json(line, path, line=number)
        _check(shape, row, path, what="a JSON object (a result row)", line=number)
        rows.append(row)
    return rows


def read_summary(path: Path) -> Summary:
    """A run's summary.json as a `Summary`, with the statistics of every metric for every variant."""
    data = read_json_file(path)
    _check(Summary, data, path, what="a JSON object (the run's summary)")
    summary = Summary.model_validate(data)
    _check_stats(summary.variants, summary.metrics, path, "variants")
    return summary


def check_reportable(run: RunFolder) -> None:
    """What the run's reports (`reports.html`, `reports.export`) read besides what `read_run_folder`
    checks: the manifest's record of where and how the run ran; the summary's breakdown by slice and
    category (the statistics of every metric for every variant), its deltas and their family."""
    _check(ReportManifestShape, run.manifest, run.path / "manifest.json", what="a JSON object")
    path, summary = run.path / "summary.json", run.summary
    for field, groups in summary.breakdown.items():
        for group, variants in groups.items():
            at = f"breakdown.{field}.{group}"
            _check_stats(variants, summary.metrics, path, at, every=summary.variants)
    for variant, deltas in summary.deltas.items():
        for metric, delta in deltas.items():
            if delta is not None:
                _check(DeltaShape, delta, path, what="an object or null", field=f"deltas.{variant}.{metric}")
    if summary.multiple_comparisons:
        family = summary.multiple_comparisons
        _check(ComparisonsShape, family, path, what="an object", field="multiple_comparisons")


def _check_stats(
    variants: dict[str, dict[str, Any]], metrics: list[str], path: Path, at: str, every: Any = None
) -> None:
    """Each variant (each of `every`, when given) has the statistics of each metric, of `StatsShape`."""
    for variant in every if every is not None else variants:
        stats = variants.get(variant)
        for metric in metrics:
            if stats is None:
                raise InputError(str(path), f"no statistics of variant {variant!r}", field=at)
            if metric not in stats:
                raise InputError(str(path), f"no statistics of metric {metric!r}", field=f"{at}.{variant}")
            _check(StatsShape, stats[metric], path, what="an object", field=f"{at}.{variant}.{metric}")


def _check(
    shape: type[BaseModel], data: Any, path: Path, *, what: str, line: int | None = None, field: str = ""
) -> None:
    """`data` is of `shape`, else an InputError naming `path` (and `line`) and the first wrong field
    (under `field`)."""
    if not isinstance(data, dict):
        raise InputError(str(path), f"expected {what}, got {_kind(data)}", line=line, field=field or None)
    try:
        shape.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        dotted = ".".join(x for x in (field, _dotted(first["loc"])) if x)
        raise InputError(str(path), _message(first), line=line, field=dotted or None) from None


def _message(error: Any) -> str:
    """A validation error's message, with what was there when it is short."""
    got = error.get("input")
    if error["type"] == "missing":
        return "missing"
    shown = repr(got) if isinstance(got, (bool, int, float, str)) or got is None else _kind(got)
    return f"{error['msg']}, got {shown[:60]}"


def _dotted(where: tuple | list) -> str:
    return ".".join(str(x) for x in where)


def _kind(value: Any) -> str:
    """What a JSON value is, in words."""
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return kinds.get(type(value), "a number")
