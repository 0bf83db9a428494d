"""People's labels on a run: check a labels file (what the review page exports) against the run, and
attach it: `labels.json` in the run folder, `human_agreement` in its summary, and its reports
re-rendered with the agreement section. A bad file (an empty one included) is one `InputError` naming
the file and the field, raised before anything is written. Labels already attached are kept: a file's
labels are added to them, and one that labels an answer or question otherwise than they do is refused,
unless `replace` (the command's `--replace`) says the file's labels replace them all."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import TemplateError

from core.cache import replacing
from core.errors import InputError
from judges.agreement import ANSWER_LABELS, QUESTION_LABELS, human_agreement
from reports.blessed import MALFORMED, run_fingerprint
from reports.export import render_markdown
from reports.html import render
from reports.runfolder import RunFolder, check_reportable, read_json_file, read_run_folder

LABEL_KEYS = {"question_id", "variant", "label", "fixed_answer", "answer"}
TOP_KEYS = {"run", "suite", "labels"}


def read_labels(path: Path, rows: list[dict], *, suite: str, run_id: str | None) -> dict:
    """The labels file at `path`, checked against the run's rows and suite fingerprint: returns
    {"run", "suite", "labels"}. An answer label may carry the `answer` it was given to (the review
    page writes it): it must be the run's answer, and a file made on another run must carry it."""
    name = str(path)
    data = read_json_file(path)
    _check_head(name, data, suite=suite, run_id=run_id)
    answers: dict[tuple[str, str], str] = {}
    for r in rows:
        answers.setdefault((r["question_id"], r["variant"]), r["answer"])  # the first seed's, as shown
    reader = _LabelReader(name, answers, run_id=run_id, labelled_run=data["run"])
    out = [reader.read(f"labels[{i}]", lab) for i, lab in enumerate(data["labels"])]
    return {"run": data["run"], "suite": data["suite"], "labels": out}


def _check_head(name: str, data: Any, *, suite: str, run_id: str | None) -> None:
    """The file's top level: {"run", "suite", "labels"}, of this run's suite."""
    if not isinstance(data, dict):
        raise InputError(name, "expected a JSON object with run, suite and labels", line=1)
    if extra := sorted(set(data) - TOP_KEYS):
        raise InputError(name, "unknown key (expected run, suite, labels)", field=extra[0])
    for key in ("run", "suite"):
        if not isinstance(data.get(key), str):
            raise InputError(name, "expected a string", field=key)
    if data["suite"] != suite:
        raise InputError(
            name,
            f"the labels cover another suite (fingerprint {data['suite']}; run {run_id}'s is {suite})",
            field="suite",
        )
    if not isinstance(data.get("labels"), list):
        raise InputError(name, "expected a list of labels", field="labels")
    if not data["labels"]:
        raise InputError(name, "no labels in it: nothing to import (those attached stay)", field="labels")


class _LabelReader:
    """Checks the labels of one file, one at a time, against the run's answers (`(question id,
    variant) -> answer`): known question and variant, a label of the right kind, no second label."""

    def __init__(
        self, name: str, answers: dict[tuple[str, str], str], *, run_id: str | None, labelled_run: str
    ) -> None:
        self.name, self.answers, self.run_id, self.labelled_run = name, answers, run_id, labelled_run
        self.questions = {q for q, _ in answers}
        self.variants = {v for _, v in answers}
        self.seen: set[tuple[str, str | None]] = set()

    def read(self, where: str, lab: Any) -> dict[str, Any]:
        """The label at `where` (e.g. "labels[3]"), as {"question_id", "variant", "label"} with its
        `fixed_answer` (a question's) or `answer` (an answer's)."""

        def bad(field: str, message: str) -> InputError:
            return InputError(self.name, message, field=f"{where}.{field}" if field else where)

        q, v, label = self._identify(lab, bad)
        entry = {"question_id": q, "variant": v, "label": label}
        if "fixed_answer" in lab:
            fixed = lab["fixed_answer"]
            if v is not None:
                raise bad(
                    "fixed_answer", "a fixed gold answer belongs on the question's label (variant null)"
                )
            if not isinstance(fixed, str) or not fixed.strip():
                raise bad("fixed_answer", "expected a non-empty string")
            entry["fixed_answer"] = fixed.strip()
        if v is not None:
            entry["answer"] = self._answer(lab, q, v, bad)
        elif "answer" in lab:
            raise bad("answer", "only an answer's label (with a variant) carries an answer")
        return entry

    def _identify(self, lab: Any, bad: Callable[[str, str], InputError]) -> tuple[str, str | None, str]:
        """(question id, variant or None for a question's label, label), each checked, the pair new."""
        if not isinstance(lab, dict):
            raise bad("", "expected an object with question_id, variant and label")
        if extra := sorted(set(lab) - LABEL_KEYS):
            raise bad(extra[0], f"unknown key (expected {', '.join(sorted(LABEL_KEYS))})")
        q, v, label = lab.get("question_id"), lab.get("variant"), lab.get("label")
        if not isinstance(q, str) or q not in self.questions:
            raise bad("question_id", f"{q!r} is not a question of run {self.run_id}")
        if v is not None and (not isinstance(v, str) or v not in self.variants):
            variants = ", ".join(sorted(self.variants))
            raise bad("variant", f"{v!r} is not a variant of run {self.run_id} ({variants})")
        if v is not None and (q, v) not in self.answers:
            raise bad("variant", f"{v} has no answer to {q} in run {self.run_id}")
        allowed = QUESTION_LABELS if v is None else tuple(ANSWER_LABELS)
        if label not in allowed:
            what = "a question's label" if v is None else "an answer's label"
            raise bad("label", f"{label!r} is not {what} ({' or '.join(allowed)})")
        if (q, v) in self.seen:
            raise bad("question_id", f"a second label for ({q}, {v})")
        self.seen.add((q, v))
        return q, v, label

    def _answer(self, lab: dict, q: str, v: str, bad: Callable[[str, str], InputError]) -> str:
        """The run's answer an answer's label is about: the one the label carries must be it, and a
        label made on another run must carry it."""
        if "answer" in lab and lab["answer"] != self.answers[q, v]:
            raise bad(
                "answer", f"not the answer {v} gave to {q} in run {self.run_id}: labelled on another run"
            )
        if "answer" not in lab and self.labelled_run != self.run_id:
            raise bad(
                "answer",
                f"labels made on run {self.labelled_run} must carry each answer to apply to {self.run_id}",
            )
        return self.answers[q, v]


def attach_labels(
    run_dir: Path, path: Path, *, exclude_invalid: bool | None = None, replace: bool = False
) -> tuple[dict, int]:
    """Check the labels at `path` against the run and add them to those attached (with `replace`:
    in their place), then write `labels.json`, `summary.json` (with `human_agreement`), `report.html`
    and `report.md` in `run_dir`, each whole to a temporary file before any is renamed; returns
    `human_agreement` and how many attached labels were kept beside the file's. Nothing is written
    when the run or the labels are bad.
    `exclude_invalid` None: the run's config's `labels.exclude_invalid`."""
    run = read_run_folder(run_dir)
    suite = run_fingerprint(run.rows, run.manifest)
    labels = read_labels(path, run.rows, suite=suite, run_id=run.manifest.get("run_id"))
    kept = 0 if replace else _merge_attached(run, labels, suite, path)
    label_settings = run.config.get("labels") or {}
    if exclude_invalid is None:
        exclude_invalid = label_settings.get("exclude_invalid", False)
    figures = human_agreement(
        run.compared(),  # with `leakage.exclude`, out of every comparison, as in the run itself
        labels["labels"],
        exclude_invalid=bool(exclude_invalid),
        samples=run.config.get("bootstrap_samples", 2000),
        seed=run.config.get("seed", 0),
    )
    summary = run.summary.model_dump()
    summary["human_agreement"] = {"labels_file": "labels.json", "suite": suite, "labelled_run": labels["run"]}
    summary["human_agreement"] |= figures
    files = {
        "labels.json": json.dumps(labels, indent=1, ensure_ascii=False),
        "summary.json": json.dumps(summary, indent=2),
        **_reports(run, summary),
    }
    _write_all(Path(run_dir), files)
    return summary["human_agreement"], kept


def _merge_attached(run: RunFolder, labels: dict, suite: str, path: Path) -> int:
    """Put the labels already attached to the run (its `labels.json`, checked as a labels file) before
    the file's in `labels`; returns how many were kept. A file that labels an answer or a question
    otherwise is refused, naming the label: replacing takes `--replace`."""
    attached = run.path / "labels.json"
    if not attached.exists():
        return 0
    try:
        before = read_labels(attached, run.rows, suite=suite, run_id=run.manifest.get("run_id"))
    except InputError as e:
        hint = "; to replace the labels attached, import with --replace"
        raise InputError(e.file, e.message + hint, line=e.line, field=e.field) from None
    new = {(lab["question_id"], lab["variant"]): (i, lab) for i, lab in enumerate(labels["labels"])}
    kept = []
    for old in before["labels"]:
        key = (old["question_id"], old["variant"])
        if key not in new:
            kept.append(old)
        elif new[key][1] != old:
            i, lab = new[key]
            said = lab.get("fixed_answer") or lab["label"]
            raise InputError(
                str(path),
                f"{attached} has {old.get('fixed_answer') or old['label']!r} for ({key[0]}, {key[1]}), this "
                f"file {said!r}: import with --replace to replace the labels attached",
                field=f"labels[{i}]",
            )
    labels["labels"] = kept + labels["labels"]
    return len(kept)


RENDERING = (*MALFORMED, ArithmeticError, TemplateError)  # what a hand-edited summary or manifest raises


def _reports(run: RunFolder, summary: dict) -> dict[str, str]:
    """The run's report.html and report.md, re-rendered with `summary`."""
    check_reportable(run)
    try:
        return {
            "report.html": render(rows=run.rows, summary=summary, manifest=run.manifest),
            "report.md": render_markdown(summary, run.manifest),
        }
    except RENDERING as e:  # what the shape checks of the run's files let through
        raise InputError(
            str(run.path),
            f"cannot render the reports from summary.json and manifest.json ({type(e).__name__}: {e})",
        ) from None


def _write_all(run_dir: Path, files: dict[str, str]) -> None:
    """Write every file of `files` ({name: text}) in `run_dir`: each to a temporary file first, then all
    renamed into place; a failure to write one renames none, and no temporary file is left."""
    for name in files:
        if (run_dir / name).is_dir():
            raise InputError(str(run_dir / name), "a folder where the run keeps this file: move it away")
    name = ""
    try:
        with contextlib.ExitStack() as stack:
            for name, text in files.items():
                stack.enter_context(replacing(run_dir / name)).write_text(text, encoding="utf-8")
    except OSError as e:  # writing one (`name`), or renaming one into place (`filename2`)
        raise InputError(str(e.filename2 or run_dir / name), f"cannot write it: {e.strerror or e}") from None


def describe(figures: dict, run_dir: Path, kept: int = 0) -> str:
    """One line for the console on labels just attached (`kept`: labels attached before, kept)."""
    judge = (figures.get("judge") or {}).get("overall") or {}
    kappa = "–" if judge.get("kappa") is None else f"{judge['kappa']:.2f}"
    verdict = f"judge vs people κ {kappa}" if figures.get("judge") else "no judge in this run"
    before = f" ({kept} of them kept from before)" if kept else ""
    return (
        f"attached {figures['labelled_answers']} answer and {figures['labelled_questions']} question labels"
        f"{before} to {run_dir} ({verdict}; {len(figures['disagreements'])} disagreements): "
        "wrote labels.json, summary.json, report.html, report.md"
    )
