import numpy as np
import pytest
from scipy.stats import norm

from reports.stats import bootstrap_ci, holm, mcnemar, paired_delta, power, tango_interval


def test_identical_variants_differ_by_zero():
    a = [1, 0, 1, 1, 0, 0, 1, 0] * 10
    d = paired_delta(a, a, samples=500, seed=1)  # 0/1: no flip, and still an honest interval around 0
    assert d["mean"] == 0 and not d["significant"] and d["ci95"][0] == pytest.approx(-d["ci95"][1])
    assert 0 < d["ci95"][1] < 0.05
    g = paired_delta([0.3, 0.5] * 40, [0.3, 0.5] * 40, samples=500, seed=1)  # graded: the bootstrap
    assert g["mean"] == 0 and g["ci95"] == [0.0, 0.0] and not g["significant"]


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


def test_mcnemar_against_hand_computed_cases():
    # z = (b - c) / sqrt(b + c): b=1, c=9 -> z = -8 / sqrt(10) = -2.530, p = 0.01141
    assert mcnemar(1, 9) == pytest.approx(0.011412, abs=1e-5)
    assert mcnemar(9, 1) == mcnemar(1, 9)  # symmetric
    assert mcnemar(3, 3) == 1.0 and mcnemar(0, 0) == 1.0
    # b=0, c=4: z = 2, p = 0.0455
    assert mcnemar(0, 4) == pytest.approx(0.0455, abs=1e-4)


def test_binary_deltas_use_mcnemar_for_the_mark_and_the_interval_alike():
    base = [0] * 20 + [1] * 20
    better = [1] * 6 + [0] * 14 + [1] * 20  # 6 wins, 0 losses: z = 2.449, p = 0.0143
    d = paired_delta(better, base, samples=500, seed=2)
    assert d["test"] == "mcnemar" and (d["wins"], d["losses"]) == (6, 0)
    assert d["p_value"] == pytest.approx(0.0143, abs=1e-4) and d["significant"] and d["ci95"][0] > 0
    three = [1] * 3 + [0] * 17 + [1] * 20  # 3 wins: z = 1.732, p = 0.083: not significant, and the
    d3 = paired_delta(three, base, samples=500, seed=2)  # interval says the same (defect: the bootstrap
    assert not d3["significant"] and d3["ci95"][0] <= 0 <= d3["ci95"][1]  # interval excluded zero here)
    assert paired_delta([0.5, 0.2], [0.1, 0.2], samples=100)["test"] == "paired bootstrap"


def test_the_mcnemar_interval_excludes_zero_exactly_when_p_is_below_five_percent():
    for n in (12, 60, 208):
        for b in range(13):
            for c in range(13):
                if b + c <= n:
                    lo, hi = tango_interval(b, c, n)
                    assert (mcnemar(b, c) < 0.05) == (lo > 0 or hi < 0), (n, b, c)
                    assert lo <= (b - c) / n <= hi


def test_the_score_interval_is_not_fixed_by_the_flips_seen():
    """With no flip at all the difference is still uncertain: Tango's interval is +-z^2 / (n + z^2);
    and 13 flips all one way are a drop of 0.0625 with room below it (defect: an interval conditional
    on the flips put the lower bound at the estimate itself)."""
    z2 = 1.959964**2
    assert tango_interval(0, 0, 208) == pytest.approx((-z2 / (208 + z2), z2 / (208 + z2)), abs=1e-6)
    lo, hi = tango_interval(0, 13, 208)
    assert lo < -0.0625 - 0.03 and hi < 0


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


def test_binary_interval_covers_the_true_difference_close_to_95_percent_of_the_time():
    """Tango's score interval is asymptotic: it keeps close to its nominal level (94-99% of 400)."""
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
    se = 0.5025**0.5 / 200**0.5
    assert p["se"] == pytest.approx(se, rel=1e-3) and p["basis"] == "uncorrelated bound"
    assert p["min_detectable_drop"] == pytest.approx(2.8016 * se, rel=1e-3)
    # the rule fails when the lower bound drops below -margin: a true drop of margin - 1.12 se fails
    # it with 80% probability, and an unchanged model fails it with probability Phi(1.96 - margin/se)
    assert p["drop_caught"] == pytest.approx(0.1 - 1.1168 * se, abs=1e-3)
    assert p["false_alarm"] == pytest.approx(norm.cdf(1.959964 - 0.1 / se), rel=1e-3)
    assert p["questions_for_margin"] == pytest.approx((2.8016 * 0.5025**0.5 / 0.1) ** 2, abs=1)
    bigger = power(values * 4, values * 4, margin=0.1)
    assert bigger["min_detectable_drop"] == pytest.approx(p["min_detectable_drop"] / 2, rel=0.01)
    assert bigger["false_alarm"] < p["false_alarm"] and bigger["drop_caught"] > p["drop_caught"]
    # margin 0: an unchanged model fails about half the time or more; it is still reported
    assert power(values, values, margin=0.0)["false_alarm"] >= 0.5


def test_a_bootstrap_p_value_is_never_zero_and_one_question_is_never_significant():
    d = paired_delta([0.5, 0.7, 0.9] * 30, [0.1, 0.3, 0.5] * 30, kind="graded", samples=999)
    assert d["significant"] and d["p_value"] == pytest.approx(2 / 1000)
    one = paired_delta([0.9], [0.1], kind="graded", samples=200)
    assert not one["significant"] and one["n"] == 1
