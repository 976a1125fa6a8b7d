"""Timing loop and latency statistics. Pure Python: the clock is injectable for tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

__all__ = ["LatencyStats", "summarize", "time_loop"]


@dataclass
class LatencyStats:
    """Latency distribution in milliseconds; warm-up iterations are not included."""

    n: int
    p50: float
    p90: float
    p99: float
    mean: float
    std: float
    min: float
    max: float
    total_s: float
    unit: str = "ms"
    raw: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(values_ms: list[float], *, total_s: float | None = None) -> LatencyStats:
    """Percentiles (linear interpolation), mean and sample std of ``values_ms``."""
    if not values_ms:
        raise ValueError("no timings to summarize")
    a = np.asarray(values_ms, dtype=float)
    p50, p90, p99 = (float(x) for x in np.percentile(a, [50, 90, 99]))
    return LatencyStats(
        n=len(a), p50=p50, p90=p90, p99=p99, mean=float(a.mean()),
        std=float(a.std(ddof=1)) if len(a) > 1 else 0.0, min=float(a.min()), max=float(a.max()),
        total_s=float(a.sum() / 1000.0) if total_s is None else total_s, raw=[float(x) for x in a],
    )


def time_loop(
    fn: Callable[[int], Any],
    *,
    n_inputs: int,
    warmup: int,
    min_iters: int,
    min_seconds: float,
    max_seconds: float,
    clock: Callable[[], float] = time.perf_counter,
    desc: str = "time",
    progress: bool = False,
) -> list[float]:
    """Call ``fn(i % n_inputs)`` ``warmup`` times untimed, then time calls (ms each) until
    both ``min_iters`` calls and ``min_seconds`` have passed, or ``max_seconds`` (after at
    least one timed call). Inputs cycle in order so every variant sees the same texts.
    """
    if n_inputs < 1:
        raise ValueError("n_inputs must be >= 1")
    for i in range(warmup):
        fn(i % n_inputs)
    times: list[float] = []
    start = clock()
    bar = tqdm(total=min_iters, desc=desc, unit="it", disable=not progress, leave=False)
    i = 0
    while True:
        t0 = clock()
        fn(i % n_inputs)
        t1 = clock()
        times.append((t1 - t0) * 1000.0)
        i += 1
        if i <= min_iters:
            bar.update(1)
        elapsed = t1 - start
        if (i >= min_iters and elapsed >= min_seconds) or elapsed >= max_seconds:
            break
    bar.close()
    return times
