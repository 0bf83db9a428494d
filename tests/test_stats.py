import numpy as np
import pytest

from reports.stats import bootstrap_ci, holm, mcnemar_exact, mcnemar_interval, paired_delta, power


def test_paired_bootstrap_on_identical_variants_is_zero():
    a = [1, 0, 1, 1, 0, 0, 1, 0] * 10
    d = paired_delta(a, a, samples=500, seed=1)
    assert d["mean"] == 0 and d["ci95"] == [0.0, 0.0] and not d["significant"]


def test_paired_delta_detects_a_consistent_improvement():
    base = [0, 1] * 50
    better = [1, 1] * 50
    d = paired_delta(better, base, samples=500, seed=1)
    assert d["mean"] == pytest.approx(0.5) and d["significant"] and d["ci95"][0] > 0


def test_undetermined_values_are_dropped_pairwise():
    d = paired_delta([1, None, 1], [0, 1, None], samples=200)
    assert d["n"] == 1 and d["mean"] == 1


def test_bootstrap_interval_contains_the_mean_and_is_deterministic():
    x = [0.1, 0.5, 0.9, 0.3, 0.7] * 8
    lo, hi = bootstrap_ci(x, samples=1000, seed=4)
    assert lo < sum(x) / len(x) < hi
    assert (lo, hi) == bootstrap_ci(x, samples=1000, seed=4)
    assert bootstrap_ci([], samples=10) is None


def test_mcnemar_exact_against_hand_computed_cases():
    # b=1, c=9: n=10, P(X<=1) = (1 + 10) / 1024, two-sided 22/1024.
    assert mcnemar_exact(1, 9) == pytest.approx(22 / 1024)
    assert mcnemar_exact(9, 1) == pytest.approx(22 / 1024)  # symmetric
    # b=0, c=5: 2 * 1/32 = 0.0625, not significant at 0.05 however lopsided.
    assert mcnemar_exact(0, 5) == pytest.approx(0.0625)
    # b=0, c=6: 2/64 = 0.03125.
    assert mcnemar_exact(0, 6) == pytest.approx(0.03125)
    assert mcnemar_exact(5, 5) == 1.0 and mcnemar_exact(0, 0) == 1.0


def test_binary_deltas_use_mcnemar_for_the_mark_and_the_interval_alike():
    base = [0] * 20 + [1] * 20
    # 6 wins, 0 losses: McNemar p = 0.031 -> significant, and its exact interval excludes zero
    better = [1] * 6 + [0] * 14 + [1] * 20
    d = paired_delta(better, base, samples=500, seed=2)
    assert d["test"] == "mcnemar" and (d["wins"], d["losses"]) == (6, 0)
    assert d["p_value"] == pytest.approx(0.03125) and d["significant"] and d["ci95"][0] > 0
    # 5 wins, 0 losses: p = 0.0625, and the interval now says the same (defect: the bootstrap interval
    # shown beside McNemar's verdict excluded zero while the mark said not significant)
    five = [1] * 5 + [0] * 15 + [1] * 20
    d5 = paired_delta(five, base, samples=500, seed=2)
    assert not d5["significant"] and d5["ci95"][0] <= 0 <= d5["ci95"][1]
    assert paired_delta([0.5, 0.2], [0.1, 0.2], samples=100)["test"] == "paired bootstrap"


def test_the_mcnemar_interval_excludes_zero_exactly_when_p_is_below_five_percent():
    for n in (12, 60, 208):
        for b in range(0, 13):
            for c in range(0, 13):
                if b + c <= n:
                    lo, hi = mcnemar_interval(b, c, n)
                    assert (mcnemar_exact(b, c) < 0.05) == (lo > 0 or hi < 0), (n, b, c)
                    assert lo <= (b - c) / n <= hi


def test_deltas_pair_questions_by_id_not_by_position():
    mine = {"q1": 1.0, "q2": 0.0, "q3": 1.0}
    theirs = {"q3": 1.0, "q1": 0.0, "q2": 0.0}  # another order: only q1 differs
    d = paired_delta(mine, theirs, samples=200)
    assert d["mean"] == pytest.approx(1 / 3) and (d["wins"], d["losses"]) == (1, 0)
    # a question only one side has is left out, not paired with a neighbour
    d2 = paired_delta({"q0": 0.0} | mine, theirs, samples=200)
    assert d2["n"] == 3 and d2["mean"] == pytest.approx(1 / 3)


def test_graded_interval_covers_the_true_difference_about_95_percent_of_the_time():
    """A seeded simulation: 400 suites of 200 questions whose paired differences have mean 0.1."""
    rng = np.random.default_rng(1)
    covered = 0
    for i in range(400):
        d = rng.normal(0.1, 0.3, size=200)
        lo, hi = paired_delta(list(d), [0.0] * 200, kind="graded", samples=1000, seed=i)["ci95"]
        covered += lo <= 0.1 <= hi
    assert 0.93 <= covered / 400 <= 0.97


def test_binary_interval_covers_the_true_difference_at_least_95_percent_of_the_time():
    """Exact (Clopper-Pearson) intervals are conservative: coverage at or above the nominal level."""
    rng = np.random.default_rng(2)
    covered = 0
    for _ in range(400):
        a, b = (rng.random(200) < 0.6).astype(float), (rng.random(200) < 0.5).astype(float)
        lo, hi = paired_delta(list(a), list(b), kind="binary")["ci95"]
        covered += lo <= 0.1 <= hi
    assert 0.94 <= covered / 400 <= 0.99


def test_holm_adjusts_a_family_step_down():
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([]) == [] and holm([0.2]) == [0.2]


def test_power_of_a_gate_rule_follows_the_suite_size():
    values = [1.0, 0.0] * 100  # sd 0.5 on each side
    p = power(values, values, margin=0.1)
    assert p["se"] == pytest.approx(0.5025**0.5 / 200**0.5, rel=1e-3)
    assert p["min_detectable_drop"] == pytest.approx(2.8016 * p["se"], rel=1e-3)
    # the questions it takes to catch a 0.1 drop: (2.80 * sd / 0.1)^2
    assert p["questions_for_margin"] == pytest.approx((2.8016 * 0.5025**0.5 / 0.1) ** 2, abs=1)
    bigger = power(values * 4, values * 4, margin=0.1)
    assert bigger["min_detectable_drop"] == pytest.approx(p["min_detectable_drop"] / 2, rel=0.01)
    assert bigger["false_alarm"] < p["false_alarm"]
