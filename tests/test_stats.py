import pytest

from reports.stats import bootstrap_ci, paired_delta


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
