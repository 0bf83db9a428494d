"""The length-controlled pairwise win rate: what a length-driven judge's raw win rate hides, and a
defined number on every hard case. Rows are built by hand; no model is trained."""

import math
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from reports.aggregate import summarize
from reports.export import render_markdown
from reports.html import render
from reports.length_control import fit, fit_resamples, length_controlled_win_rate
from tests.conftest import MANIFEST

RESULT = {1.0: "win", 0.5: "tie", 0.0: "loss", None: None}


def _row(q: str, answer: str, against: str, value: float | None, variant: str = "long", seed=None) -> dict:
    detail = {"against": "base", "answer": answer, "against_answer": against, "result": RESULT[value]}
    detail["consistent"] = None if answer == against else value is not None
    if answer == against:
        detail["identical"] = True
    return {
        "variant": variant,
        "question_id": q,
        "seed": seed,
        "scores": {
            "pairwise": {"value": value, "reason": "r"}
            | ({"label": RESULT[value]} if value is not None else {})
        },
        "judge": {"pairwise": detail},
    }


def _length_judge_rows(n: int = 120, seed: int = 0) -> list[dict]:
    """Answers of equal quality, the variant's longer on average; the judge picks the longer one."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        mine, theirs = int(rng.integers(5, 60)) + 20, int(rng.integers(5, 60))
        value = 1.0 if mine > theirs else 0.0 if mine < theirs else 0.5
        rows.append(_row(f"q{i}", "a" * mine, "b" * theirs, value))
    return rows


def _lc(rows: list[dict], seed: int = 0, samples: int = 200) -> dict | None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no divide-by-zero, no convergence warning either
        return length_controlled_win_rate(rows, "long", seed=seed, samples=samples)


def _finite(result: dict) -> bool:
    numbers = [result["win_rate"], result["lc_win_rate"], result["length_coef"], *result["lc_ci95"]]
    return all(math.isfinite(x) for x in numbers) and result["lc_ci95"][0] <= result["lc_ci95"][1]


def test_a_length_driven_judge_wins_raw_but_not_length_controlled():
    result = _lc(_length_judge_rows())
    assert result["win_rate"] > 0.7
    assert abs(result["lc_win_rate"] - 0.5) < 0.15
    assert result["length_coef"] > 1
    assert result["n"] == 120 and _finite(result)


def test_without_length_difference_the_lc_win_rate_is_the_raw_one():
    values = [1.0, 0.0, 1.0, 0.5, 1.0, 0.0, 1.0]
    same_length = [_row(f"q{i}", f"a{i}", f"b{i}", v) for i, v in enumerate(values)]
    result = _lc(same_length)
    assert result["lc_win_rate"] == pytest.approx(result["win_rate"]) == pytest.approx(4.5 / 7)
    assert result["length_coef"] == 0
    always_longer = [_row(f"q{i}", f"aaa{i}", f"b{i}", v) for i, v in enumerate(values)]  # no variation
    assert _lc(always_longer)["lc_win_rate"] == pytest.approx(4.5 / 7)


@pytest.mark.parametrize(
    ("rows", "lc"),
    [
        ([_row(f"q{i}", "a" * (i + 1), "bb", 1.0) for i in range(6)], 1.0),  # all wins
        ([_row(f"q{i}", "a" * (i + 1), "bb", 0.0) for i in range(6)], 0.0),  # all losses
        ([_row(f"q{i}", "a" * (i + 1), "bb", 0.5) for i in range(6)], 0.5),  # only ties
        ([_row("q0", "a long answer", "short", 1.0)], 1.0),  # one row
        ([_row("q0", "a long answer", "short", 1.0), _row("q1", "x", "a longer one", 0.0)], None),
        ([_row("q0", "same", "same", 0.5), _row("q1", "same", "same", 0.5)], 0.5),  # identical answers
        ([_row(f"q{i}", "a" * i, "a" * 5, 1.0 if i > 5 else 0.0) for i in range(1, 11)], None),  # separation
    ],
    ids=["all-wins", "all-losses", "only-ties", "one-row", "two-rows", "identical", "separation"],
)
def test_hard_cases_give_finite_numbers(rows, lc):
    result = _lc(rows)
    assert _finite(result)
    lo, hi = result["lc_ci95"]
    assert lo - 1e-9 <= result["lc_win_rate"] <= hi + 1e-9  # scikit-learn's fit is exact to rounding
    if lc is not None:
        assert result["lc_win_rate"] == pytest.approx(lc)


def test_undetermined_verdicts_are_left_out_and_counted():
    rows = [_row("q0", "aaaa", "b", 1.0), _row("q1", "a", "bbbb", 0.0), _row("q2", "aa", "b", None)]
    rows += [_row("q3", "a", "b", 1.0, variant="other")]  # another variant's verdict is not this one's
    result = _lc(rows)
    assert (result["n"], result["undetermined"], result["win_rate"]) == (2, 1, 0.5)
    assert _finite(result)
    assert _lc([_row("q0", "a", "b", None)]) is None
    assert _lc([]) is None


def test_seeded_rows_of_a_question_resample_together():
    rows = [_row(f"q{i % 5}", "a" * (i + 1), "bbb", float(i % 2), seed=i // 5) for i in range(10)]
    result = _lc(rows)
    assert result["n"] == 10 and _finite(result)


def test_interval_contains_the_estimate_and_repeats_with_its_seed():
    rows = _length_judge_rows(n=60, seed=1)
    first, again, other = _lc(rows, seed=7), _lc(rows, seed=7), _lc(rows, seed=8)
    assert first == again
    assert first["lc_ci95"] != other["lc_ci95"]
    lo, hi = first["lc_ci95"]
    assert lo < first["lc_win_rate"] < hi


def test_resampled_fits_match_scikit_learn():
    rng = np.random.default_rng(0)
    deltas = rng.integers(-30, 30, 40).astype(float)
    for values in (rng.choice([0.0, 0.5, 1.0], 40), np.where(deltas > 0, 1.0, 0.0)):
        counts = rng.multinomial(40, np.full(40, 1 / 40), size=10)
        batched = fit_resamples(values, deltas, counts)
        one_by_one = [
            fit(values[np.repeat(np.arange(40), c)], deltas[np.repeat(np.arange(40), c)])[0] for c in counts
        ]
        assert batched == pytest.approx(one_by_one, abs=1e-6)


def test_summary_html_and_markdown_show_the_lc_win_rate():
    rows = []
    for r in _length_judge_rows(n=40):
        base = dict(r, variant="base", answer=r["judge"]["pairwise"]["against_answer"], scores={}, judge={})
        rows += [r | {"answer": r["judge"]["pairwise"]["answer"]}, base]
    for r in rows:
        r |= {"question": "Q", "category": "c", "slice": None, "gold_answers": ["x"], "gold_passage_ids": []}
        r |= {"retrieved": None, "retrieved_text": None, "leaked": False}
        r["scores"]["em"] = {"value": 0.0, "reason": ""}
    config = SimpleNamespace(
        metrics=["em", "pairwise"],
        seed=0,
        bootstrap_samples=200,
        baseline="base",
        variants=[SimpleNamespace(name="base"), SimpleNamespace(name="long")],
    )
    summary = summarize(rows, config, suite_name="s")
    lc = summary["length_controlled"]["long"]
    assert set(summary["length_controlled"]) == {"long"}  # not the baseline against itself
    assert lc == _lc([r for r in rows if r["variant"] == "long"])
    assert lc["win_rate"] == pytest.approx(summary["variants"]["long"]["pairwise"]["mean"])
    summary["judge_reliability"] = {"judge": "j", "calls_made": 0, "calls_cached": 0}
    judge = render(rows=rows, summary=summary, manifest=MANIFEST).split('<section id="judge">')[1]
    judge = judge.split("</section>")[0]
    assert "LC win rate [95% CI]" in judge
    wins = sum(r["scores"]["pairwise"]["value"] == 1.0 for r in rows if r["variant"] == "long")
    assert f'<td><b>long</b></td><td class="num">{wins}</td>' in judge
    assert (
        f'{lc["lc_win_rate"]:.3f} <span class="ci">[{lc["lc_ci95"][0]:.3f}, {lc["lc_ci95"][1]:.3f}]' in judge
    )
    markdown = render_markdown(summary, MANIFEST)
    assert f"| long | {lc['win_rate']:.3f} | {lc['lc_win_rate']:.3f} [" in markdown
