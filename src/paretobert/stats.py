"""Interval estimates and noise-aware dominance. Pure functions: numbers in, numbers out.

- :func:`wilson_interval`: 95% interval of an accuracy (a binomial proportion).
- :func:`bootstrap_interval`: percentile-bootstrap interval of a statistic (default the
  median) of latency samples.
- :func:`noise_aware_status`: frontier membership when every objective has an interval: a
  point is dominated only by one that is no worse on every objective and better beyond the
  intervals on one; points a plain point-estimate frontier would drop by margins inside the
  intervals are ``indistinguishable``.
- :func:`hypervolume_2d`: the area a 2-objective frontier dominates up to a reference point.
- :func:`mcnemar_exact`: paired test of two classifiers on the same test items.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["bootstrap_interval", "hypervolume_2d", "mcnemar_exact", "noise_aware_status", "wilson_interval"]


def wilson_interval(successes: int, n: int, *, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of ``successes / n`` (95% by default)."""
    if n <= 0:
        raise ValueError(f"need n > 0 trials, got {n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes={successes} outside 0..{n}")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_interval(values: Sequence[float], *, stat: Callable[[np.ndarray], float] = np.median,
                       level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat(values)`` (resampling with replacement)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("no values to bootstrap")
    if not 0 < level < 1:
        raise ValueError(f"level={level} outside (0, 1)")
    rng = np.random.default_rng(seed)
    samples = rng.choice(x, size=(n_boot, x.size), replace=True)
    stats = np.apply_along_axis(stat, 1, samples) if stat is not np.median else np.median(samples, axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))


def _oriented(lo: np.ndarray, hi: np.ndarray, est: np.ndarray, direction: str):
    """(lo, hi, est) in minimisation form: a max objective is negated (its bounds swap)."""
    if direction == "max":
        return -hi, -lo, -est
    if direction == "min":
        return lo, hi, est
    raise ValueError(f"direction {direction!r} is not min or max")


def noise_aware_status(estimates: np.ndarray, lows: np.ndarray, highs: np.ndarray,
                       directions: Sequence[str]) -> list[str]:
    """Per point: ``frontier``, ``indistinguishable`` or ``dominated``.

    Arrays are (points, objectives). Point a dominates b when a is no worse on every
    objective (point estimates) and better beyond the intervals on at least one (a's whole
    interval better than b's). So the plain Pareto frontier is always ``frontier``; a point
    the plain rule drops only by margins inside the intervals is ``indistinguishable``; only
    what is beaten beyond the noise is ``dominated``. (A point that is more accurate but
    slower is never dropped for being "indistinguishably" less accurate.)
    Rows with NaN anywhere are ``dominated`` (never on the frontier).
    """
    est, lo, hi = (np.asarray(a, dtype=float) for a in (estimates, lows, highs))
    if not est.shape == lo.shape == hi.shape or est.ndim != 2 or est.shape[1] != len(directions):
        raise ValueError("estimates, lows and highs must be (points, objectives) arrays matching directions")
    cols = [_oriented(lo[:, k], hi[:, k], est[:, k], d) for k, d in enumerate(directions)]
    L = np.column_stack([c[0] for c in cols])
    H = np.column_stack([c[1] for c in cols])
    E = np.column_stack([c[2] for c in cols])
    valid = np.isfinite(L).all(1) & np.isfinite(H).all(1) & np.isfinite(E).all(1)
    n = len(E)
    out = []
    for b in range(n):
        if not valid[b]:
            out.append("dominated")
            continue
        noisy = naive = False
        for a in range(n):
            if a == b or not valid[a]:
                continue
            if not (E[a] <= E[b]).all():
                continue
            if (H[a] < L[b]).any():  # no worse anywhere, better beyond the noise somewhere
                noisy = True
                break
            if (E[a] < E[b]).any():
                naive = True
        out.append("dominated" if noisy else "indistinguishable" if naive else "frontier")
    return out


def hypervolume_2d(points: Sequence[Sequence[float]], reference: Sequence[float],
                   directions: Sequence[str] = ("max", "min")) -> float:
    """Area dominated by ``points`` (2 objectives) and bounded by ``reference``.

    Default orientation: accuracy (max) and latency (min), reference e.g. (0.0 accuracy,
    the slowest latency). Points not better than the reference on both objectives add nothing.
    """
    if len(reference) != 2 or len(directions) != 2:
        raise ValueError("hypervolume_2d needs exactly 2 objectives")
    sign = np.array([-1.0 if d == "max" else 1.0 for d in directions])
    ref = np.asarray(reference, dtype=float) * sign
    pts = [np.asarray(p, dtype=float) * sign for p in points]
    pts = sorted((p for p in pts if np.isfinite(p).all() and (p < ref).all()), key=lambda p: (p[0], p[1]))
    area, best_y = 0.0, ref[1]
    for x, y in pts:  # sweep along the first objective; keep the best second objective so far
        if y < best_y:
            area += (ref[0] - x) * (best_y - y)
            best_y = y
    return float(area)


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: ``only_a`` items only classifier A got right, ``only_b``
    only B (a binomial test of the discordant pairs at 1/2)."""
    if only_a < 0 or only_b < 0:
        raise ValueError(f"need counts >= 0, got {only_a}, {only_b}")
    n, k = only_a + only_b, min(only_a, only_b)
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)
