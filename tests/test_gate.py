"""The release gate: bless, non-inferiority with a margin, floors, and failing closed."""

import json
import math

import numpy as np
import pytest

from reports import gate


def _rows(values: dict[str, list[float | None]], metric="em", gold=lambda i: [f"answer {i}"]):
    return [
        {
            "variant": v,
            "question_id": f"q{i:03d}",
            "question": f"question {i}?",
            "gold_answers": gold(i),
            "gold_passage_ids": [f"p{i}"],
            "scores": {metric: {"value": x, "reason": ""}},
        }
        for v, xs in values.items()
        for i, x in enumerate(xs)
    ]


def _baseline(values, metric="em"):
    rows = _rows(values, metric)
    per_q = gate.per_question(rows)
    return {
        "format": gate.BASELINE_FORMAT,
        "run_id": "blessed",
        "questions": gate.question_content(rows),
        "variants": {
            v: {metric: {"mean": sum(xs) / len(xs), "per_question": per_q[v][metric]}}
            for v, xs in values.items()
        },
    }


GOOD = {"sft": [1.0] * 60 + [0.0] * 40}
RULE = {"variant": "sft", "metric": "em", "margin": 0.05, "floor": None}


def test_an_unchanged_run_passes_and_a_real_drop_fails_naming_the_metric():
    base = _baseline(GOOD)
    same = gate.check(_rows(GOOD), base, [RULE], samples=500)
    assert same["status"] == "pass" and same["rules"][0]["delta"] == 0
    worse = {"sft": [1.0] * 40 + [0.0] * 60}  # 20 questions right -> wrong
    result = gate.check(_rows(worse), base, [RULE], samples=500)
    assert result["status"] == "fail" and result["failed"] == 1
    r = result["rules"][0]
    assert r["rule"].startswith("sft.em") and "dropped -0.200" in r["reason"]


def test_noise_within_the_margin_passes():
    noisy = {"sft": [1.0] * 59 + [0.0] + [1.0] + [0.0] * 39}  # one flip each way
    assert gate.check(_rows(noisy), _baseline(GOOD), [RULE], samples=500)["status"] == "pass"


def test_floor():
    rule = {"variant": "sft", "metric": "em", "margin": None, "floor": 0.7}
    r = gate.check(_rows(GOOD), _baseline(GOOD), [rule], samples=200)["rules"][0]
    assert not r["passed"] and "below the floor 0.7" in r["reason"]


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        ({"rag": [1.0] * 100}, "missing from this run"),
        ({"sft": [1.0] * 59 + [None] + [0.0] * 40}, "undetermined"),
        ({"sft": [1.0] * 59 + [math.nan] + [0.0] * 40}, "undetermined"),
    ],
)
def test_the_gate_fails_closed(rows, reason):
    result = gate.check(_rows(rows), _baseline(GOOD), [RULE], samples=200)
    assert result["status"] == "fail" and reason in result["rules"][0]["reason"]


def test_a_blessed_value_that_is_undetermined_fails_closed_and_never_crashes():
    """Defect: paired_delta dropped undetermined blessed values silently, and a blessed side that was
    all undetermined crashed the gate (an uncaught TypeError: exit 1, read as a regression)."""
    base = _baseline(GOOD)
    base["variants"]["sft"]["em"]["per_question"]["q007"] = None
    result = gate.check(_rows(GOOD), base, [RULE], samples=200)
    assert (
        result["status"] == "fail"
        and "1 undetermined values in the blessed run (e.g. q007)" in result["rules"][0]["reason"]
    )
    for q in base["variants"]["sft"]["em"]["per_question"]:
        base["variants"]["sft"]["em"]["per_question"][q] = None
    assert gate.check(_rows(GOOD), base, [RULE], samples=200)["status"] == "fail"


@pytest.mark.parametrize(
    ("rows", "needle"),
    [
        (
            _rows(GOOD, gold=lambda i: ["changed"] if i == 5 else [f"answer {i}"]),
            "1 questions' gold answers changed (e.g. q005)",
        ),
        (_rows({"sft": [1.0] * 50}), "questions differ (50 missing, 0 new"),
        (
            [r | {"question": "reworded"} if r["question_id"] == "q002" else r for r in _rows(GOOD)],
            "questions' question changed (e.g. q002)",
        ),
        (
            [r | {"gold_passage_ids": ["p99"]} if r["question_id"] == "q003" else r for r in _rows(GOOD)],
            "gold passages changed (e.g. q003)",
        ),
    ],
)
def test_a_run_of_another_suite_is_an_error_not_a_pass(rows, needle):
    """Defect: the gate compared question ids only, so a run whose gold answers changed under the same
    ids passed against the old baseline."""
    result = gate.check(rows, _baseline(GOOD), [RULE], samples=200)
    assert result["status"] == "error" and needle in result["rules"][0]["reason"], result["rules"][0][
        "reason"
    ]


def test_a_changed_corpus_is_an_error():
    base = _baseline(GOOD) | {"suite": {"corpus_digest": "aaaa"}}
    result = gate.check(_rows(GOOD), base, [RULE], samples=200, corpus_digest="bbbb")
    assert result["status"] == "error" and "the corpus changed" in result["rules"][0]["reason"]
    assert gate.check(_rows(GOOD), base, [RULE], samples=200, corpus_digest="aaaa")["status"] == "pass"


def test_a_metric_where_lower_is_better_fails_on_a_rise():
    rule = {"variant": "sft", "metric": "em", "margin": 0.05, "floor": 0.7}
    info = {"em": {"kind": "binary", "higher_is_better": False}}
    worse = {"sft": [1.0] * 80 + [0.0] * 20}
    r = gate.check(_rows(worse), _baseline(GOOD), [rule], samples=200, metric_info=info)["rules"][0]
    assert not r["passed"] and "rose +0.200" in r["reason"] and "above the ceiling 0.7" in r["reason"]
    assert r["rule"] == "sft.em: non-inferior within 0.05 and mean <= 0.7"


def test_rules_report_their_test_and_power():
    result = gate.check(
        _rows(GOOD), _baseline(GOOD), [RULE], samples=200, metric_info={"em": {"kind": "binary"}}
    )
    r = result["rules"][0]
    assert r["test"] == "mcnemar" and r["power"]["n"] == 100
    assert 0 < r["power"]["min_detectable_drop"] < 1 and r["power"]["questions_for_margin"] > 100
    assert result["family"]["pass_error"] == 0.025 and 0 < result["family"]["false_alarm_unchanged"] < 1


def test_a_variant_missing_from_the_baseline_and_no_rules_fail():
    result = gate.check(_rows(GOOD), _baseline({"rag": [1.0] * 100}), [RULE], samples=200)
    assert result["status"] == "fail" and "missing from the blessed baseline" in result["rules"][0]["reason"]
    assert gate.check(_rows(GOOD), _baseline(GOOD), [], samples=200)["status"] == "fail"
    assert gate.check([], _baseline(GOOD), [RULE], samples=200)["status"] == "fail"


def test_unreadable_baselines_are_errors(tmp_path):
    with pytest.raises(gate.GateError, match="baseline not found"):
        gate.load_baseline(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "ragvft-baseline-1",\n  oops}')
    with pytest.raises(gate.GateError, match=r"bad.json:2: not valid JSON"):
        gate.load_baseline(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    with pytest.raises(gate.GateError, match="not a ragvft baseline"):
        gate.load_baseline(other)


def test_power_uses_the_noise_measured_between_training_seeds_when_there_is_some():
    """Two seeds that disagree on 10 of 100 questions: the rerun noise is measured from them, far
    below the uncorrelated bound (which treats every question as a fresh coin)."""
    one = [1.0] * 60 + [0.0] * 40
    two = [1.0] * 55 + [0.0] * 5 + [1.0] * 5 + [0.0] * 35
    rows = [r | {"seed": 1} for r in _rows({"sft": one})] + [r | {"seed": 2} for r in _rows({"sft": two})]
    base = _baseline({"sft": [(a + b) / 2 for a, b in zip(one, two, strict=True)]})
    result = gate.check(rows, base, [RULE], samples=200)
    p = result["rules"][0]["power"]
    assert p["basis"] == "between seeds"
    diffs = np.array([a - b for a, b in zip(one, two, strict=True)]) / np.sqrt(2)
    assert p["sd_difference"] == pytest.approx(diffs.std(ddof=1))
    bound = gate.check(_rows(GOOD), _baseline(GOOD), [RULE], samples=200)["rules"][0]["power"]
    assert bound["basis"] == "uncorrelated bound" and bound["sd_difference"] > 2 * p["sd_difference"]


def test_a_question_undetermined_in_one_seed_fails_closed():
    """With several seeds, a question undetermined in one of them is undetermined: it is not averaged
    over the others (that would let a broken scorer pass the gate on the seeds that worked)."""
    one = [1.0] * 60 + [0.0] * 40
    two = list(one)
    two[7] = None
    rows = [r | {"seed": 1} for r in _rows({"sft": one})] + [r | {"seed": 2} for r in _rows({"sft": two})]
    result = gate.check(rows, _baseline(GOOD), [RULE], samples=200)
    assert (
        result["status"] == "fail"
        and "1 undetermined values in this run (e.g. q007)" in result["rules"][0]["reason"]
    )


def test_bless_keeps_a_metric_that_does_not_apply_to_a_variant(tmp_path):
    """The baseline variant has no pairwise score against itself, a closed-book one no context
    metric: blessing such a run must not crash (it raised KeyError)."""
    rows = _rows({"base": [1.0, 0.0], "sft": [1.0, 1.0]})
    for r in rows:
        if r["variant"] == "sft":
            r["scores"]["pairwise"] = {"value": 1.0, "reason": ""}
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    stats = {"mean": 0.5, "ci95": None, "n": 2, "undetermined": 0}
    summary = {
        "metrics": ["em", "pairwise"],
        "variants": {v: {"em": stats, "pairwise": stats} for v in ("base", "sft")},
    }
    (run / "summary.json").write_text(json.dumps(summary))
    (run / "manifest.json").write_text(json.dumps({"run_id": "r1", "config": {}}))
    baseline = gate.bless(run, tmp_path / "b.json")
    assert baseline["variants"]["base"]["pairwise"]["per_question"] == {}
    assert baseline["variants"]["sft"]["pairwise"]["per_question"] == {"q000": 1.0, "q001": 1.0}
