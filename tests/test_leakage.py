"""Leakage: a test question in the fine-tuning data is found (exact or near-duplicate), flagged in
the report, and can be excluded; the built-in domain's paraphrases are not leaks."""

import json

from harness.config import load_config
from harness.run import bench
from suites.builtin import builtin_suite
from suites.leakage import find_leaks
from suites.schema import QAPair, TrainingSets
from tests.conftest import BASE, DROP, write_config


def test_the_builtin_domain_has_no_leaks():
    suite = builtin_suite(7)
    assert find_leaks(suite.questions, suite.training) == {}


def test_a_leaked_question_is_flagged_and_can_be_excluded(tmp_path, cache_dir):
    suite = builtin_suite(3, scale=4)
    q1, q2 = suite.questions[0], suite.questions[1]
    rows = [
        {"question": q1.text, "answer": q1.answers[0]},  # verbatim
        {"question": q2.text.replace("?", " ?").upper(), "answer": q2.answers[0]},  # same after normalising
        {"question": "An unrelated question about something else entirely?", "answer": "no"},
    ]
    (tmp_path / "extra.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    near = q1.text + " ok"  # one word more: not the same text, nearly the same
    near_leaks = find_leaks(suite.questions, TrainingSets(sft=(QAPair(near, "x"),)))
    assert near_leaks[q1.id]["kind"] == "near" and near_leaks[q1.id]["similarity"] >= 0.8

    path = write_config(tmp_path, training={"extra_sft": "extra.jsonl"})
    result = bench(load_config(path))
    leak = result.summary["leakage"]
    assert leak["leaked"] == 2 and set(leak["questions"]) == {q1.id, q2.id} and not leak["excluded"]
    assert leak["questions"][q1.id]["kind"] == "exact" and leak["questions"][q1.id]["where"] == "sft"
    html = (result.run_dir / "report.html").read_text()
    assert "Leakage: 2 test questions in the fine-tuning data" in html and ">leaked<" in html
    n = len(suite.questions)
    assert result.summary["variants"]["base"]["em"]["n"] == n

    # Excluded: out of every number, the adapter check and the gate included (defect: only the summary
    # got the filtered rows, so the gate still compared the leaked questions).
    from reports.gate import bless

    bless(result.run_dir, tmp_path / "blessed.json")
    write_config(
        tmp_path,
        training={"extra_sft": "extra.jsonl"},
        leakage={"exclude": True},
        variants=[BASE, {"name": "sft", "adapter": "sft"}],
        gate={"blessed": "blessed.json", "rules": [{"variant": "base", "metric": "em", "floor": 0.0}]},
        bootstrap_samples=DROP,
    )
    excluded = bench(load_config(path))
    assert excluded.summary["leakage"]["excluded"]
    assert excluded.summary["variants"]["base"]["em"]["n"] == n - 2
    assert excluded.summary["adapter_checks"]["sft"]["n"] == n - 2
    assert excluded.summary["gate"]["status"] == "error"  # a suite of n - 2 questions is not the blessed one
    assert "questions differ (2 missing" in excluded.summary["gate"]["rules"][0]["reason"]
    assert "excluded</b> from every number" in (excluded.run_dir / "report.html").read_text()
