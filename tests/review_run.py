"""The review tests' run: four questions (q0..q3) answered by two variants, base and rag, with hostile
text in answers, questions and passages; what the judge, exact match and people say of each answer;
and a labels file for it as the review page exports one. Used by tests/test_review.py and the browser
test of the page (tests/test_review_browser.py)."""

import json
from types import SimpleNamespace

from harness.run.write import write_run
from reports import gate
from reports.aggregate import summarize

HOSTILE = ["<script>window.pwned=1</script>", "</script><script>alert(1)</script>"]

# judge and exact match per question (q0..q3) for each variant, and what people say of each answer
JUDGE = {"base": [1, 1, 0, 0], "rag": [1, 1, 1, 0]}
EM = {"base": [1, 0, 0, 0], "rag": [1, 0, 0, 0]}
PEOPLE = {"base": [1, 0, 0, 0], "rag": [1, 1, 0, 0]}


def make_rows() -> list[dict]:
    rows = []
    for v in ("base", "rag"):
        for i in range(4):
            answer = f"{v} answer {i}"
            if i == 0:
                answer = HOSTILE[v == "rag"]
            rows.append(
                {
                    "variant": v,
                    "question_id": f"q{i}",
                    "question": f"Question {i} {HOSTILE[1]}?" if i == 1 else f"Question {i}?",
                    "category": "c",
                    "slice": "trained",
                    "gold_answers": [f"gold {i}"],
                    "gold_passage_ids": [f"p{i}"],
                    "gold_passage_text": [f"Passage {i} {HOSTILE[0]}"],
                    "answer": answer,
                    "retrieved": [{"id": f"p{i}", "score": 1.0}] if v == "rag" else None,
                    "retrieved_text": [f"Passage {i} {HOSTILE[0]}"] if v == "rag" else None,
                    "scores": {
                        "em": {"value": float(EM[v][i]), "reason": ""},
                        "judge": {"value": float(JUDGE[v][i]), "reason": f"because {HOSTILE[0]}"},
                    },
                }
            )
    return rows


def make_run(tmp_path, rows=None, config=None):
    """A run folder written as `ragvft bench` writes one (no model): returns its path."""
    rows = make_rows() if rows is None else rows
    cfg = SimpleNamespace(
        metrics=["em", "judge"],
        seed=0,
        bootstrap_samples=200,
        baseline="base",
        variants=[SimpleNamespace(name="base"), SimpleNamespace(name="rag")],
    )
    summary = summarize(rows, cfg, suite_name="s") | {"gate": {"status": "not configured"}}
    manifest = {
        "run_name": "<b>review</b>",
        "config": {"seed": 0, "bootstrap_samples": 200, **(config or {})},
        "suite": {"questions": 4, "passages": 4, "corpus_digest": "c0"},
        "git": {"commit": None, "dirty": None},
        "model": {},
        "hardware": {},
        "timings": {},
        "cache": {},
        "seeds": {},
    }
    return write_run(tmp_path / "runs", rows, summary, manifest)


def labels_file(run_dir, folder, /, labels=None, **top):
    """A labels file for `run_dir` as the page exports it; `labels` and `top` override parts of it."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    rows = [json.loads(x) for x in (run_dir / "results.jsonl").read_text().splitlines()]
    if labels is None:
        labels = [{"question_id": "q1", "variant": None, "label": "valid", "fixed_answer": "gold one"}]
        labels += [{"question_id": "q3", "variant": None, "label": "invalid"}]
        labels += [
            {"question_id": f"q{i}", "variant": v, "label": "correct" if people[i] else "incorrect"}
            for v, people in PEOPLE.items()
            for i in range(4)
        ]
    data = {"run": manifest["run_id"], "suite": gate.run_fingerprint(rows, manifest), "labels": labels} | top
    path = folder / "labels.json"
    path.write_text(json.dumps(data))
    return path
