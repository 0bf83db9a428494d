"""A run folder read back (`reports.runfolder`, the one reader of run folders), and the baseline
blessed from it: `read_run` (what the run compared), `bless` (per variant and metric, the mean and
every question's value, with what each question was: a digest of its text, gold answers and gold
passages, and the corpus's digest) and `load_baseline` (the blessed file, validated as a
`reports.records.Baseline`). The gate (`reports.gate`) compares runs with it."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypedDict, TypeVar, cast

from pydantic import ValidationError

from core.cache import digest, replacing
from core.errors import InputError
from core.values import determined
from reports.records import BASELINE_FORMAT, Baseline, ResultRow, Summary, plain
from reports.rows import by_variant
from reports.runfolder import RunFolder, ScoredRow, read_json_file, read_run_folder

DEFAULT_BLESSED = "bench/baseline.json"  # where a config that names no blessed file has it


class GateError(Exception):
    """The gate could not be evaluated at all (unreadable or malformed run or baseline): exit code 2."""


MALFORMED = (KeyError, TypeError, ValueError, AttributeError, IndexError)  # a file of the wrong shape
P = ParamSpec("P")
R = TypeVar("R")


def checked_shape(what: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Turn a malformed run or baseline (a missing key, a number where a table was) into a GateError
    naming it, rather than a traceback."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except MALFORMED as e:
                raise GateError(f"{what} is malformed: {type(e).__name__}: {e}") from None

        return inner

    return wrap


def read_run(run_dir: Path) -> tuple[list[ResultRow], Summary, dict[str, Any]]:
    """(rows, summary, manifest) of a run folder, each file checked (`reports.runfolder`: an InputError
    of one line naming the file when one is missing, unreadable or of the wrong shape). The rows are
    those the run compared: with `leakage.exclude`, its leaked questions are left out here as they
    were in the run's own gate. Fails closed (GateError) when the run's `labels.json` covers another
    suite than the run."""
    run = read_run_folder(run_dir, ScoredRow)
    _check_labels_suite(run)
    return cast("list[ResultRow]", run.compared()), run.summary, run.manifest


def read_run_files(run_dir: Path) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    """(every row, summary, manifest) of a run folder, checked as `read_run` checks them, the summary
    as its JSON form: no question left out."""
    run = read_run_folder(run_dir, ScoredRow)
    return run.rows, run.summary.model_dump(), run.manifest


class GateSettings(TypedDict):
    """What the gate is given besides a run's rows, the blessed file and the rules."""

    samples: int  # the bootstrap's
    seed: int
    metric_info: dict[str, dict[str, Any]]  # each metric's kind and direction
    corpus_digest: str | None  # this run's, compared with the blessed one


def run_settings(summary: Summary, manifest: dict[str, Any]) -> GateSettings:
    """What a run's own gate was given besides its rows, baseline and rules (`check_run`'s keywords),
    read back from its folder: the bootstrap's samples and seed, the metrics' kinds and directions,
    the corpus's digest."""
    config = manifest.get("config") or {}
    return {
        "samples": config.get("bootstrap_samples", 2000),
        "seed": config.get("seed", 0),
        "metric_info": summary.metric_info,
        "corpus_digest": (manifest.get("suite") or {}).get("corpus_digest"),
    }


def blessed_file(gate_config: Mapping[str, Any]) -> Path:
    """The blessed file a config's `gate` section names (as a run's manifest records it: `blessed`, or
    `baseline` in runs made before the rename), else the default."""
    return Path(gate_config.get("blessed") or gate_config.get("baseline") or DEFAULT_BLESSED)


def suite_fingerprint(rows: Sequence[Mapping[str, Any]], corpus_digest: str | None) -> str:
    """One hash of what the gate compares of a suite: every question's text, gold answers and gold
    passages (`question_content`) and the corpus. Labels from people carry it (`reports.labels`)."""
    return digest({"questions": question_content(rows), "corpus": corpus_digest})


def run_fingerprint(rows: Sequence[Mapping[str, Any]], manifest: Mapping[str, Any]) -> str:
    """The suite fingerprint of a run: over all its rows (`read_run_files`), leaked ones included."""
    return suite_fingerprint(rows, (manifest.get("suite") or {}).get("corpus_digest"))


def _check_labels_suite(run: RunFolder) -> None:
    """People's labels attached to a run are about its questions; labels of another suite mean the
    run folder was tampered with or mixed up, and nothing about it can be trusted to gate on."""
    path = run.path / "labels.json"
    if not path.exists():
        return
    data = read_json_file(path)
    theirs = data.get("suite") if isinstance(data, dict) else None
    if not isinstance(theirs, str):
        raise InputError(str(path), "expected the labels' suite fingerprint, a string", field="suite")
    mine = run_fingerprint(run.rows, run.manifest)
    if theirs != mine:
        raise GateError(
            f"{path}: suite: the labels cover another suite (fingerprint {theirs}; the run's is {mine})"
        )


def per_question(rows: list[ResultRow]) -> dict[str, dict[str, dict[str, float | None]]]:
    """{variant: {metric: {question_id: value}}}, seeds averaged (see `reports.rows`)."""
    return by_variant(plain(rows))


def question_content(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """{question id: digests of its text, gold answers and gold passage ids}, from result rows."""
    out: dict[str, dict[str, str]] = {}
    for r in rows:
        out.setdefault(
            r["question_id"],
            {
                "question": digest(r["question"]),
                "gold answers": digest(sorted(r["gold_answers"])),
                "gold passages": digest(sorted(r.get("gold_passage_ids") or [])),
            },
        )
    return out


@checked_shape("the run")
def bless(run_dir: Path, out: Path) -> dict[str, Any]:
    """Write the blessed baseline of `run_dir` to `out` (atomically) and return it, as written (a
    `Baseline`'s JSON form). A run whose gated values are undetermined cannot be blessed: the gate
    could never compare against them."""
    rows, summary, manifest = read_run(run_dir)
    values = per_question(rows)
    rules = ((manifest.get("config") or {}).get("gate") or {}).get("rules") or []
    for rule in rules:
        v, m = rule["variant"], rule["metric"]
        bad = [q for q, x in (values.get(v, {}).get(m) or {}).items() if not determined(x)]
        if bad:
            raise GateError(
                f"{run_dir}: cannot bless: {v}.{m} has {len(bad)} undetermined values (e.g. {bad[0]}), "
                "and the gate checks it; fix the scorer or the rule first"
            )
    out = Path(out)
    if out.is_dir():  # checked before the work: nothing half-done, nothing left beside it
        raise GateError(f"{out}: is a folder: name the baseline's file (e.g. {out / 'baseline.json'})")
    baseline = {
        "format": BASELINE_FORMAT,
        "run_id": manifest.get("run_id"),
        "blessed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git": manifest.get("git"),
        "suite": manifest.get("suite"),
        "questions": question_content(rows),
        "variants": {  # a metric that does not apply to a variant (pairwise of the baseline) has none
            v: {
                m: {"mean": summary.variants[v][m]["mean"], "per_question": values.get(v, {}).get(m, {})}
                for m in summary.metrics
            }
            for v in summary.variants
        },
    }
    _write_atomically(out, baseline)
    return baseline


def _write_atomically(out: Path, baseline: dict[str, Any]) -> None:
    """Through a temporary file beside `out` (`core.cache.replacing`): removed on any failure."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with replacing(out) as tmp:
            tmp.write_text(json.dumps(baseline, indent=1, sort_keys=True), encoding="utf-8")
    except OSError as e:
        raise GateError(f"{out}: cannot write the baseline: {e.strerror or e}") from None


def load_baseline(path: Path) -> Baseline:
    """The blessed baseline at `path`, validated (`Baseline`): a GateError of one line naming the file
    (and the field) when it is missing, unreadable or of the wrong shape."""
    path = Path(path)
    if not path.exists():
        raise GateError(
            f"{path}: baseline not found; bless a run first: ragvft bless --run runs/latest --out {path}"
        )
    if path.is_dir():
        raise GateError(f"{path}: cannot read the baseline: it is a folder, not a file")
    try:
        data = read_json_file(path)  # UTF-8 JSON, valid Unicode: the run folders' reader
    except InputError as e:
        raise GateError(str(e)) from None
    return as_baseline(data, where=str(path))


def as_baseline(data: Baseline | Mapping[str, Any], where: str = "the baseline") -> Baseline:
    """`data` as a Baseline (a GateError naming `where` and the field when it is none)."""
    if isinstance(data, Baseline):
        return data
    try:
        return Baseline.model_validate(data)
    except ValidationError as e:
        loc = e.errors()[0]["loc"]
        if not loc or loc[0] == "format":  # not an object, or not of ours
            raise GateError(f"{where}: not a ragvft baseline (format {BASELINE_FORMAT!r} expected)") from None
        raise GateError(f"{where}: the baseline is malformed: {_first_error(e)}") from None


def _first_error(e: ValidationError) -> str:
    """A validation error's first problem in one line: the field's dotted path, then what is wrong."""
    first = e.errors()[0]
    return ".".join(str(x) for x in first["loc"]) + f": {first['msg']}"
