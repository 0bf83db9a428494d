"""The review page (`ragvft review`): one self-contained HTML file on which domain experts label a
run's questions (valid, invalid, or a fixed gold answer) and its answers (correct, incorrect), kept
in the browser's localStorage and exported as the JSON `ragvft labels import` reads.

Every question, passage and answer is untrusted text: it travels as JSON inside a
`<script type="application/json">` block with `<`, `>` and `&` escaped (so `</script>` in an answer
cannot end the block) and the page's script shows it with `textContent`, never as markup. Answers
are shown blind (variant names hidden until asked for) in an order shuffled per question, and
variants that gave the very same answer to a question share one card.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from core.cache import digest, write_atomic
from core.errors import InputError
from reports.blessed import run_fingerprint
from reports.runfolder import read_run_folder

_env = Environment(loader=PackageLoader("reports", "templates"), autoescape=select_autoescape(["html", "j2"]))


def script_json(data: object) -> Markup:
    """`data` as JSON safe to place inside a `<script>` element: no `<`, `>` or `&` survives as such
    (each is a JSON `\\u` escape, which `JSON.parse` turns back into the character)."""
    text = json.dumps(data, ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return Markup(text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _passage_texts(rows: list[dict]) -> dict[str, str]:
    """{passage id: text} of every passage a row carries: its gold passages (`gold_passage_text`) and
    what was retrieved for it."""
    out: dict[str, str] = {}
    for r in rows:
        for pid, text in zip(r.get("gold_passage_ids") or [], r.get("gold_passage_text") or [], strict=False):
            if text is not None:
                out.setdefault(pid, text)
        for hit, text in zip(r.get("retrieved") or [], r.get("retrieved_text") or [], strict=False):
            out.setdefault(hit["id"], text)
    return out


def review_data(rows: list[dict], manifest: dict) -> dict:
    """What the page shows, as plain data: the run, its suite fingerprint, and per question its text,
    gold answers, gold passages and answers (variants with the same answer grouped)."""
    texts = _passage_texts(rows)
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    items: dict[str, dict] = {}
    for r in rows:
        q = items.setdefault(
            r["question_id"],
            {
                "id": r["question_id"],
                "question": r["question"],
                "gold": list(r["gold_answers"]),
                "category": r.get("category"),
                "slice": r.get("slice"),
                "passages": [{"id": p, "text": texts.get(p)} for p in r.get("gold_passage_ids") or []],
                "by_variant": {},
            },
        )
        q["by_variant"].setdefault(r["variant"], r["answer"])  # several seeds: the first seed's answer
    for q in items.values():
        groups: dict[str, list[str]] = {}
        for v in variants:
            if v in q["by_variant"]:
                groups.setdefault(q["by_variant"][v], []).append(v)
        answers = [{"text": text, "variants": vs} for text, vs in groups.items()]
        random.Random(digest(q["id"])).shuffle(answers)  # blind: no variant always comes first
        q["answers"] = answers
        del q["by_variant"]
    return {
        "run": manifest.get("run_id") or "",
        "run_name": manifest.get("run_name") or "",
        "suite": run_fingerprint(rows, manifest),
        "variants": variants,
        "items": list(items.values()),
    }


def render_review(rows: list[dict], manifest: dict) -> str:
    """The review page's HTML for a run's rows (every row of `results.jsonl`) and manifest."""
    data = review_data(rows, manifest)
    n_answers = sum(len(a["variants"]) for q in data["items"] for a in q["answers"])
    return _env.get_template("review.html.j2").render(
        data=data, data_json=script_json(data), n_answers=n_answers
    )


def write_review(path: Path, rows: list[dict], manifest: dict) -> None:
    """The review page, written whole or not at all (no temporary file left: `core.cache.replacing`)."""
    write_atomic(Path(path), render_review(rows, manifest))


def write_run_review(run_dir: Path, out: Path) -> str:
    """Write the review page of the run folder `run_dir` to `out`; returns what to tell the user. A
    folder that is no run (`reports.runfolder`), or a page that cannot be written, is an `InputError`."""
    out = Path(out)
    if out.is_dir():  # checked before the work
        raise InputError(str(out), f"is a folder: name the page's file (e.g. {out / 'review.html'})")
    run = read_run_folder(run_dir)
    try:
        write_review(out, run.rows, run.manifest)
    except OSError as e:
        raise InputError(str(out), f"cannot write it: {e.strerror or e}") from None
    rows = run.rows
    return f"wrote {out}: {len({r['question_id'] for r in rows})} questions, {len(rows)} answers to label"
