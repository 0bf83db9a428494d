"""The review page and people's labels: the page keeps hostile model output as inert text, a labels
file attaches to its run with the agreement figures (kappa checked by hand), every bad labels file
is one line naming the file and the field with exit code 2 and nothing written, and the gate fails
closed on labels of another suite."""

import json
import re

import pytest

from judges.agreement import agreement, binary_kappas, cohen_kappa
from reports import gate
from reports.review import render_review, review_data
from tests.conftest import assert_input_error, invoke, write_config
from tests.review_run import HOSTILE, labels_file, make_rows, make_run


def test_review_page_keeps_hostile_text_inert():
    rows = make_rows()
    manifest = {"run_id": "r1", "run_name": "<b>review</b>", "suite": {"corpus_digest": "c0"}}
    html = render_review(rows, manifest)
    for payload in HOSTILE:
        assert payload not in html
    assert "window.pwned" in html  # still there, as escaped data
    assert html.count("<script") == 2 and html.count("</script>") == 2  # the data block and the page's script
    assert "<b>review</b>" not in html and "&lt;b&gt;review&lt;/b&gt;" in html
    assert "innerHTML" not in html and "textContent" in html
    block = re.search(
        r'<script type="application/json" id="review-data">(.*?)</script>', html, re.DOTALL
    ).group(1)
    data = json.loads(block)  # the escapes are JSON's own: the page reads back exactly the run's text
    assert data == review_data(rows, manifest)
    texts = {a["text"] for q in data["items"] for a in q["answers"]}
    assert set(HOSTILE) <= texts
    q0 = data["items"][0]
    assert q0["passages"] == [{"id": "p0", "text": f"Passage 0 {HOSTILE[0]}"}]
    assert data["suite"] == gate.run_fingerprint(rows, manifest)


def test_variants_with_the_same_answer_share_one_card():
    rows = make_rows()
    for r in rows:
        if r["question_id"] == "q2":
            r["answer"] = "same"
    q2 = review_data(rows, {"run_id": "r"})["items"][2]
    assert q2["answers"] == [{"text": "same", "variants": ["base", "rag"]}]


def test_cohen_kappa_by_hand():
    # p_o = 3/4; marginals 1/2 and 1/4 -> p_e = 1/2; kappa = (3/4 - 1/2) / (1 - 1/2)
    assert cohen_kappa([1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx(0.5)
    assert cohen_kappa([1, 1, 1], [1, 1, 1]) is None  # one label on both sides: undefined
    a = agreement([1, 1, 0, 0], [1, 1, 0, 0], samples=100)
    assert a["accuracy"] == 1.0 and a["kappa"] == 1.0 and a["kappa_ci95"][1] == 1.0


def test_the_bootstraps_vectorised_kappa_is_sklearns():
    import numpy as np

    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 2, size=(300, 5)), rng.integers(0, 2, size=(300, 5))
    x[:3], y[:3] = 1, np.array([[1] * 5, [0] * 5, [1, 0, 1, 0, 1]])  # constant sides, defined or not
    for row, k in zip(zip(x.tolist(), y.tolist(), strict=True), binary_kappas(x, y), strict=True):
        want = cohen_kappa(*row)
        assert (np.isnan(k) and want is None) or k == pytest.approx(want), row


def test_labels_import_attaches_agreement_to_the_report_and_summary(tmp_path):
    run = make_run(tmp_path)
    code, out = invoke("review", "--run", run)
    assert code == 0 and (run / "review.html").exists()
    code, out = invoke("labels", "import", labels_file(run, tmp_path), "--run", run)
    assert code == 0, out
    assert "attached 8 answer and 2 question labels" in out

    ha = json.loads((run / "summary.json").read_text())["human_agreement"]
    judge, em = ha["judge"], ha["em"]
    assert judge["by_variant"]["base"]["accuracy"] == 0.75
    assert judge["by_variant"]["base"]["kappa"] == pytest.approx(0.5)
    assert judge["by_variant"]["rag"]["kappa"] == pytest.approx(0.5)  # p_o 3/4, p_e 3/4*1/2 + 1/4*1/2
    # all 8: p_o 6/8; judge says correct 5/8, people 3/8: p_e = 2 * 15/64; kappa = 9/17
    assert judge["overall"]["accuracy"] == 0.75
    assert judge["overall"]["kappa"] == pytest.approx(9 / 17)
    lo, hi = judge["overall"]["kappa_ci95"]
    assert lo <= 9 / 17 <= hi
    assert em["by_variant"]["base"]["kappa"] == pytest.approx(1.0)
    assert em["by_variant"]["rag"]["kappa"] == pytest.approx(0.5)
    assert {(d["question_id"], d["variant"]) for d in ha["disagreements"]} == {("q1", "base"), ("q2", "rag")}
    assert ha["invalid_questions"] == ["q3"] and ha["fixed_answers"] == {"q1": "gold one"}
    assert ha["suite"] == json.loads((run / "labels.json").read_text())["suite"]

    html = (run / "report.html").read_text()
    assert "Agreement with people" in html and 'id="disagreements"' in html
    assert "0.529" in html
    for payload in HOSTILE:
        assert payload not in html
    assert "**Agreement with people** (8 labelled answers)" in (run / "report.md").read_text()


def test_exclude_invalid_leaves_those_questions_out(tmp_path):
    run = make_run(tmp_path, config={"labels": {"exclude_invalid": True}})
    assert invoke("labels", "import", labels_file(run, tmp_path), "--run", run)[0] == 0
    ha = json.loads((run / "summary.json").read_text())["human_agreement"]
    assert ha["excluded_invalid"] and ha["compared_answers"] == 6  # q3's two answers left out
    assert ha["judge"]["overall"]["n"] == 6


def _bad_cases(run, tmp_path):
    good = {"question_id": "q0", "variant": "base", "label": "correct"}
    return [
        ("unknown question", {"labels": [good | {"question_id": "q9"}]}, "labels[0].question_id"),
        ("unknown variant", {"labels": [good | {"variant": "sft"}]}, "labels[0].variant"),
        ("bad label", {"labels": [good | {"label": "right"}]}, "labels[0].label"),
        ("question label on answer", {"labels": [good | {"label": "valid"}]}, "labels[0].label"),
        ("fix on an answer", {"labels": [good | {"fixed_answer": "x"}]}, "labels[0].fixed_answer"),
        ("typo", {"labels": [good | {"lable": "x"}]}, "labels[0].lable"),
        ("duplicate", {"labels": [good, good]}, "labels[1].question_id"),
        ("other suite", {"suite": "0123456789abcdef"}, "suite"),
        ("other answer", {"labels": [good | {"answer": "not it"}]}, "labels[0].answer"),
        ("other run, no answers", {"labels": [good], "run": "another-run"}, "labels[0].answer"),
        ("no labels", {"labels": "all correct"}, "labels"),
    ]


def test_each_bad_labels_file_is_one_line_exit_2_and_writes_nothing(tmp_path):
    run = make_run(tmp_path)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    for what, parts, field in _bad_cases(run, tmp_path):
        path = labels_file(run, tmp_path, **parts)
        line = assert_input_error(invoke("labels", "import", path, "--run", run))
        assert line.startswith(f"error: {path}: {field}: "), (what, line)
        assert {p.name: p.read_bytes() for p in run.iterdir()} == before, what
    path.write_text("{not json")
    line = assert_input_error(invoke("labels", "import", path, "--run", run))
    assert line.startswith(f"error: {path}:1: not valid JSON")
    missing = invoke("labels", "import", tmp_path / "missing.json", "--run", run)
    assert_input_error(missing, "missing.json: file not found")
    nope = invoke("labels", "import", labels_file(run, tmp_path), "--run", tmp_path / "nope")
    assert_input_error(nope, "not a ragvft run folder")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_gate_fails_closed_on_labels_of_another_suite(tmp_path):
    run = make_run(tmp_path)
    assert invoke("labels", "import", labels_file(run, tmp_path), "--run", run)[0] == 0
    rows, _, _ = gate.read_run(run)  # labels of this very suite: the gate reads the run
    assert len(rows) == 8
    labels = json.loads((run / "labels.json").read_text())
    (run / "labels.json").write_text(json.dumps(labels | {"suite": "0123456789abcdef"}))
    with pytest.raises(gate.GateError, match="labels cover another suite"):
        gate.read_run(run)
    gated = invoke("gate", "--run", run, "--baseline", tmp_path / "baseline.json")
    assert_input_error(gated, "labels.json: suite: the labels cover another suite")


def test_labels_config_section_is_checked_and_taken_with_config(tmp_path, micro_config):
    from core.errors import InputError
    from harness.config import load_config

    assert load_config(micro_config).labels.exclude_invalid is False
    write_config(micro_config.parent, labels={"exclude_invalid": True})
    assert load_config(micro_config).labels.exclude_invalid is True
    run = make_run(tmp_path)  # its own config says nothing of labels: --config decides
    code, out = invoke("labels", "import", labels_file(run, tmp_path), "--run", run, "--config", micro_config)
    assert code == 0, out
    assert json.loads((run / "summary.json").read_text())["human_agreement"]["compared_answers"] == 6

    write_config(micro_config.parent, labels={"exclude_invalid": True, "skip": 1})
    with pytest.raises(InputError, match="labels.skip"):
        load_config(micro_config)
