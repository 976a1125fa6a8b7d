"""Intervals (against known values), noise-aware dominance rules, hypervolume (by hand)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from paretobert.stats import bootstrap_interval, hypervolume_2d, noise_aware_status, wilson_interval


def test_wilson_known_values():
    lo, hi = wilson_interval(8, 10)  # textbook: 0.4902 .. 0.9433
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(1729, 1842)  # livedoor-sized: about +-1.1 points
    assert lo < 1729 / 1842 < hi and hi - lo == pytest.approx(0.0222, abs=2e-3)
    with pytest.raises(ValueError):
        wilson_interval(3, 0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_bootstrap_interval_of_the_median():
    assert bootstrap_interval([5.0] * 20) == (5.0, 5.0)
    rng = np.random.default_rng(1)
    small = bootstrap_interval(rng.normal(10, 1, 50), seed=0)
    large = bootstrap_interval(rng.normal(10, 1, 2000), seed=0)
    assert small[0] < 10 < small[1] and large[0] < 10 < large[1]
    assert large[1] - large[0] < small[1] - small[0]
    # reproducible for a seed; the normal-theory width of a median is about 2*1.96*1.2533/sqrt(n)
    assert bootstrap_interval(rng.normal(0, 1, 400), seed=3) != bootstrap_interval(rng.normal(0, 1, 400), seed=4)
    width = large[1] - large[0]
    assert width == pytest.approx(2 * 1.96 * 1.2533 / math.sqrt(2000), rel=0.35)
    with pytest.raises(ValueError):
        bootstrap_interval([])


def _status(points):
    est = np.array([[a, lat] for a, _, lat, _ in points])
    lo = np.array([[a - da, lat - dl] for a, da, lat, dl in points])
    hi = np.array([[a + da, lat + dl] for a, da, lat, dl in points])
    return noise_aware_status(est, lo, hi, ["max", "min"])


def test_noise_aware_dominance_rules():
    # (accuracy, +-, latency, +-)
    # b is worse than a on both point estimates, but the intervals overlap: indistinguishable
    assert _status([(0.90, 0.01, 10.0, 1.0), (0.895, 0.01, 10.5, 1.0)]) == ["frontier", "indistinguishable"]
    # clearly slower, same accuracy: dominated
    assert _status([(0.90, 0.01, 10.0, 0.5), (0.90, 0.01, 20.0, 0.5)]) == ["frontier", "dominated"]
    # clearly faster but clearly less accurate: a trade-off, both on the frontier
    assert _status([(0.90, 0.01, 10.0, 0.5), (0.80, 0.01, 5.0, 0.5)]) == ["frontier", "frontier"]
    # clearly faster, less accurate within the noise: still a trade-off, the more accurate one stays
    assert _status([(0.97, 0.02, 13.0, 0.1), (0.95, 0.02, 6.0, 0.1)]) == ["frontier", "frontier"]
    # faster within the noise and as accurate: indistinguishable; beyond the noise: dominated
    assert _status([(0.90, 0.01, 10.0, 1.0), (0.90, 0.01, 10.5, 1.0), (0.90, 0.01, 14.0, 1.0)]) == [
        "frontier", "indistinguishable", "dominated"]
    # NaN never on the frontier and never dominates
    assert _status([(0.90, 0.01, 10.0, 0.5), (float("nan"), 0.01, 1.0, 0.5)]) == ["frontier", "dominated"]
    # with zero-width intervals the rule is the ordinary Pareto rule
    assert _status([(0.9, 0, 10, 0), (0.8, 0, 12, 0), (0.95, 0, 30, 0)]) == ["frontier", "dominated", "frontier"]
    with pytest.raises(ValueError):
        noise_aware_status(np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((2, 3)), ["max", "min"])


def test_hypervolume_by_hand():
    # union of [0, 0.9] x [10, 20] and [0, 0.8] x [5, 20] (accuracy x latency): 9 + 4
    assert hypervolume_2d([(0.9, 10.0), (0.8, 5.0)], reference=(0.0, 20.0)) == pytest.approx(1.3 * 10)
    # a dominated point adds nothing; a point beyond the reference adds nothing
    assert hypervolume_2d([(0.9, 10.0), (0.8, 5.0), (0.7, 15.0), (0.99, 25.0)], reference=(0.0, 20.0)) == pytest.approx(13.0)
    assert hypervolume_2d([], reference=(0.0, 20.0)) == 0.0
    assert hypervolume_2d([(2.0, 1.0)], reference=(5.0, 3.0), directions=("min", "min")) == pytest.approx(6.0)


def test_mcnemar_exact_known_values():
    from paretobert.stats import mcnemar_exact

    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(5, 5) == 1.0
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)  # all 6 discordant pairs one way
    assert mcnemar_exact(10, 2) == pytest.approx(mcnemar_exact(2, 10)) == pytest.approx(0.0386, abs=1e-4)
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)
