import pytest

from reports.stats import bootstrap_ci, mcnemar_exact, paired_delta


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


def test_binary_deltas_use_mcnemar_for_significance():
    base = [0] * 20 + [1] * 20
    # 6 wins, 0 losses: bootstrap interval excludes zero, McNemar p = 0.031 -> significant
    better = [1] * 6 + [0] * 14 + [1] * 20
    d = paired_delta(better, base, samples=500, seed=2)
    assert d["test"] == "mcnemar" and (d["wins"], d["losses"]) == (6, 0)
    assert d["p_value"] == pytest.approx(0.03125) and d["significant"]
    # 5 wins, 0 losses: the bootstrap interval excludes zero, but McNemar (p = 0.0625) does not call it
    five = [1] * 5 + [0] * 15 + [1] * 20
    d5 = paired_delta(five, base, samples=500, seed=2)
    assert d5["ci95"][0] > 0 and not d5["significant"]
    assert paired_delta([0.5, 0.2], [0.1, 0.2], samples=100)["test"] == "paired bootstrap"
