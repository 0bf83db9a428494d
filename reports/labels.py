"""People's labels on a run: check a labels file (what the review page exports) against the run, and
attach it: `labels.json` in the run folder, `human_agreement` in its summary, and its reports
re-rendered with the agreement section. A bad file is one `InputError` naming the file and the field,
raised before anything is written."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from core.errors import InputError
from judges.agreement import ANSWER_LABELS, QUESTION_LABELS, human_agreement
from reports.export import render_markdown
from reports.gate import GateError, read_run_files, run_fingerprint
from reports.html import render

LABEL_KEYS = {"question_id", "variant", "label", "fixed_answer", "answer"}
TOP_KEYS = {"run", "suite", "labels"}


def read_labels(path: Path, rows: list[dict], *, suite: str, run_id: str | None) -> dict:
    """The labels file at `path`, checked against the run's rows and suite fingerprint: returns
    {"run", "suite", "labels"}. An answer label may carry the `answer` it was given to (the review
    page writes it): it must be the run's answer, and a file made on another run must carry it."""
    name = str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(name, "file not found") from None
    except json.JSONDecodeError as e:
        raise InputError(name, f"not valid JSON: {e.msg}", line=e.lineno) from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(name, f"cannot read it: {getattr(e, 'strerror', None) or e}") from None
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
    answers = {}
    for r in rows:
        answers.setdefault((r["question_id"], r["variant"]), r["answer"])  # the first seed's, as shown
    questions = {q for q, _ in answers}
    variants = {v for _, v in answers}
    seen: set[tuple] = set()
    out = []
    for i, lab in enumerate(data["labels"]):
        where = f"labels[{i}]"

        def bad(field: str, message: str, where: str = where) -> InputError:
            return InputError(name, message, field=f"{where}.{field}" if field else where)

        if not isinstance(lab, dict):
            raise bad("", "expected an object with question_id, variant and label")
        if extra := sorted(set(lab) - LABEL_KEYS):
            raise bad(extra[0], f"unknown key (expected {', '.join(sorted(LABEL_KEYS))})")
        q, v, label = lab.get("question_id"), lab.get("variant"), lab.get("label")
        if not isinstance(q, str) or q not in questions:
            raise bad("question_id", f"{q!r} is not a question of run {run_id}")
        if v is not None and (not isinstance(v, str) or v not in variants):
            raise bad("variant", f"{v!r} is not a variant of run {run_id} ({', '.join(sorted(variants))})")
        allowed = QUESTION_LABELS if v is None else tuple(ANSWER_LABELS)
        if label not in allowed:
            what = "a question's label" if v is None else "an answer's label"
            raise bad("label", f"{label!r} is not {what} ({' or '.join(allowed)})")
        if (q, v) in seen:
            raise bad("question_id", f"a second label for ({q}, {v})")
        seen.add((q, v))
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
            if "answer" in lab and lab["answer"] != answers[q, v]:
                raise bad(
                    "answer", f"not the answer {v} gave to {q} in run {run_id}: labelled on another run"
                )
            if "answer" not in lab and data["run"] != run_id:
                raise bad(
                    "answer", f"labels made on run {data['run']} must carry each answer to apply to {run_id}"
                )
            entry["answer"] = answers[q, v]
        elif "answer" in lab:
            raise bad("answer", "only an answer's label (with a variant) carries an answer")
        out.append(entry)
    return {"run": data["run"], "suite": data["suite"], "labels": out}


def attach_labels(run_dir: Path, path: Path, *, exclude_invalid: bool | None = None) -> dict:
    """Check the labels at `path` against the run, then write `labels.json`, `summary.json` (with
    `human_agreement`), `report.html` and `report.md` in `run_dir`, each atomically; returns
    `human_agreement`. Nothing is written when the run or the labels are bad. `exclude_invalid`
    None: the run's config's `labels.exclude_invalid`."""
    run_dir = Path(run_dir)
    try:
        rows, summary, manifest = read_run_files(run_dir)
    except GateError as e:
        raise InputError(str(run_dir), str(e).removeprefix(f"{run_dir}: ")) from None
    suite = run_fingerprint(rows, manifest)
    labels = read_labels(path, rows, suite=suite, run_id=manifest.get("run_id"))
    config = manifest.get("config") or {}
    compared = rows
    if (config.get("leakage") or {}).get("exclude"):  # out of every comparison, as in the run itself
        compared = [r for r in rows if not r.get("leaked")]
    figures = human_agreement(
        compared,
        labels["labels"],
        exclude_invalid=bool(
            (config.get("labels") or {}).get("exclude_invalid", False)
            if exclude_invalid is None
            else exclude_invalid
        ),
        samples=config.get("bootstrap_samples", 2000),
        seed=config.get("seed", 0),
    )
    summary["human_agreement"] = {"labels_file": "labels.json", "suite": suite, "labelled_run": labels["run"]}
    summary["human_agreement"] |= figures
    html = render(rows=rows, summary=summary, manifest=manifest)
    markdown = render_markdown(summary, manifest)
    for name, text in (
        ("labels.json", json.dumps(labels, indent=1, ensure_ascii=False)),
        ("summary.json", json.dumps(summary, indent=2)),
        ("report.html", html),
        ("report.md", markdown),
    ):
        try:
            write_atomic(run_dir / name, text)
        except OSError as e:
            raise InputError(str(run_dir / name), f"cannot write it: {e.strerror or e}") from None
    return summary["human_agreement"]


def describe(figures: dict, run_dir: Path) -> str:
    """One line for the console on labels just attached."""
    judge = (figures.get("judge") or {}).get("overall") or {}
    kappa = "–" if judge.get("kappa") is None else f"{judge['kappa']:.2f}"
    verdict = f"judge vs people κ {kappa}" if figures.get("judge") else "no judge in this run"
    return (
        f"attached {figures['labelled_answers']} answer and {figures['labelled_questions']} question labels "
        f"to {run_dir} ({verdict}; {len(figures['disagreements'])} disagreements): wrote labels.json, "
        "summary.json, report.html, report.md"
    )


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it into place."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
