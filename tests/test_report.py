"""The HTML report treats model output and passages as untrusted text."""

from types import SimpleNamespace

from reports.aggregate import summarize
from reports.html import render
from tests.conftest import MANIFEST, PAYLOADS


def _rows():
    rows = []
    for i, payload in enumerate(PAYLOADS):
        for variant in ("base", "rag"):
            rows.append(
                {
                    "variant": variant,
                    "question_id": f"q{i}",
                    "question": f"Q {payload}",
                    "category": "c",
                    "slice": "trained",
                    "gold_answers": ["x"],
                    "gold_passage_ids": ["p1"],
                    "answer": payload,
                    "retrieved": [{"id": "p1", "score": 1.0}] if variant == "rag" else None,
                    "retrieved_text": [payload] if variant == "rag" else None,
                    "scores": {
                        "em": {"value": float(variant == "rag"), "reason": payload},
                        "f1": {"value": 0.5, "reason": ""},
                    },
                }
            )
    return rows


def test_answers_and_passages_are_escaped():
    config = SimpleNamespace(
        metrics=["em", "f1"],
        seed=0,
        bootstrap_samples=100,
        baseline="base",
        variants=[SimpleNamespace(name="base"), SimpleNamespace(name="rag")],
    )
    rows = _rows()
    summary = summarize(rows, config, suite_name="s")
    manifest = {**MANIFEST, "run_name": "<b>n</b>"}
    before = [dict(r) for r in rows]
    html = render(rows=rows, summary=summary, manifest=manifest)
    assert rows == before  # rendering leaves the caller's rows alone
    for payload in PAYLOADS:
        assert payload not in html
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=" in html
    assert html.count("<script>") == 1  # only the report's own filter script
    assert html.count('class="flip-up"') == 2  # rag is right where base is wrong, on both questions
