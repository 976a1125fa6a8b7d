import numpy as np
import pytest

from paretobert.bench.timing import summarize, time_loop


class FakeClock:
    """Each fn call costs `cost` seconds; reading the clock is free."""

    def __init__(self, cost: float) -> None:
        self.now, self.cost = 0.0, cost

    def __call__(self) -> float:
        return self.now

    def work(self, i: int) -> None:
        self.now += self.cost


def test_stops_when_both_count_and_duration_met():
    clock, seen = FakeClock(1 / 64), []  # binary-exact costs, so the sums are exact
    times = time_loop(lambda i: (seen.append(i), clock.work(i)), n_inputs=3, warmup=2, min_iters=5,
                      min_seconds=10 / 64, max_seconds=10, clock=clock)
    assert len(times) == 10  # 10 calls' worth of seconds dominates the 5-iteration minimum
    assert times == pytest.approx([1000 / 64] * 10)
    assert seen[:2] == [0, 1] and seen[2:5] == [0, 1, 2]  # warm-up untimed, then inputs cycle from 0


def test_min_iters_dominates_for_slow_calls():
    clock = FakeClock(1.0)
    assert len(time_loop(clock.work, n_inputs=1, warmup=0, min_iters=4, min_seconds=0.5, max_seconds=100,
                         clock=clock)) == 4


def test_max_seconds_caps_and_at_least_one_timed_call():
    clock = FakeClock(5.0)
    assert len(time_loop(clock.work, n_inputs=1, warmup=0, min_iters=100, min_seconds=0, max_seconds=12,
                         clock=clock)) == 3
    assert len(time_loop(clock.work, n_inputs=1, warmup=0, min_iters=100, min_seconds=0, max_seconds=1,
                         clock=clock)) == 1


def test_summarize_matches_numpy():
    vals = [5.0, 1.0, 3.0, 2.0, 4.0, 100.0]
    s = summarize(vals)
    assert s.n == 6 and s.unit == "ms" and s.raw == vals
    assert s.p50 == pytest.approx(3.5) and s.p90 == pytest.approx(np.percentile(vals, 90))
    assert s.mean == pytest.approx(np.mean(vals)) and s.std == pytest.approx(np.std(vals, ddof=1))
    assert (s.min, s.max) == (1.0, 100.0)
    assert summarize([2.0]).std == 0.0
    with pytest.raises(ValueError):
        summarize([])
