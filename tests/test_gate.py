"""The release gate: bless, non-inferiority with a margin, floors, and failing closed."""

import json
import math

import pytest

from reports import gate


def _rows(values: dict[str, list[float | None]], metric="em"):
    return [
        {"variant": v, "question_id": f"q{i:03d}", "scores": {metric: {"value": x, "reason": ""}}}
        for v, xs in values.items()
        for i, x in enumerate(xs)
    ]


def _baseline(values, metric="em"):
    per_q = gate.per_question(_rows(values, metric))
    return {
        "format": gate.BASELINE_FORMAT,
        "run_id": "blessed",
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
        ({"rag": [1.0] * 10}, "missing from this run"),
        ({"sft": [1.0] * 59 + [None] + [0.0] * 40}, "undetermined"),
        ({"sft": [1.0] * 59 + [math.nan] + [0.0] * 40}, "undetermined"),
        ({"sft": [1.0] * 50}, "questions differ"),
    ],
)
def test_the_gate_fails_closed(rows, reason):
    result = gate.check(_rows(rows), _baseline(GOOD), [RULE], samples=200)
    assert result["status"] == "fail" and reason in result["rules"][0]["reason"]


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
