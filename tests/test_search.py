"""The search core (Optuna ask/tell over a discrete space) and the hypervolume it is judged by."""

from __future__ import annotations

import pandas as pd
import pytest

from paretobert.frontier import DEFAULT_OBJECTIVES, hypervolume
from paretobert.search import grid_size, run_search

SPACE = {"a": [0, 1, 2, 3], "b": [True, False], "c": ["x", "y", "z"]}


def _fake(calls):
    def evaluate(combo):
        calls.append(combo)
        if combo["c"] == "z" and combo["a"] == 3:
            return None  # a failing variant
        return [0.5 + 0.1 * combo["a"] - 0.05 * combo["b"], 1.0 + combo["a"] + (combo["c"] == "y")]
    return evaluate


@pytest.mark.parametrize("sampler", ["tpe", "nsga2", "random"])
def test_each_distinct_variant_is_evaluated_once_within_the_budget(sampler):
    calls = []
    res = run_search(SPACE, _fake(calls), DEFAULT_OBJECTIVES, budget=10, sampler=sampler, seed=1)
    assert len(res.evaluated) == len(calls) == 10  # the budget counts distinct variants
    assert len({tuple(sorted(c.items())) for c in calls}) == 10 and res.asked >= 10
    assert all(set(c) == set(SPACE) and all(c[k] in SPACE[k] for k in c) for c in calls)


def test_the_search_stops_when_the_space_is_exhausted_and_failures_go_on():
    calls = []
    res = run_search(SPACE, _fake(calls), DEFAULT_OBJECTIVES, budget=100, sampler="random", seed=0)
    assert len(calls) == grid_size(SPACE) == 24 and len(res.evaluated) == 24
    assert sum(v is None for v in res.evaluated.values()) == 2  # a=3, c=z, b either: told FAIL, not fatal


def test_the_same_seed_searches_the_same_way():
    a = run_search(SPACE, _fake([]), DEFAULT_OBJECTIVES, budget=8, sampler="tpe", seed=3).combos()
    b = run_search(SPACE, _fake([]), DEFAULT_OBJECTIVES, budget=8, sampler="tpe", seed=3).combos()
    assert a == b


def test_bad_sampler_and_budget_say_what_is_accepted():
    with pytest.raises(ValueError, match="tpe"):
        run_search(SPACE, _fake([]), DEFAULT_OBJECTIVES, budget=3, sampler="grid")
    with pytest.raises(ValueError, match="at least 1"):
        run_search(SPACE, _fake([]), DEFAULT_OBJECTIVES, budget=0)


def _df(points):
    return pd.DataFrame([{"status": "ok", "accuracy": a, "latency_p50_ms": ms} for a, ms in points])


def test_hypervolume_two_objectives():
    # accuracy up from 0.5, log10 latency down from 100 ms (2)
    one = _df([(0.9, 10.0)])
    assert hypervolume(one, reference=[0.5, 100.0]) == pytest.approx(0.4 * 1.0)
    two = _df([(0.9, 10.0), (0.7, 1.0)])  # adds the strip 0.2 x 1 below the first
    assert hypervolume(two, reference=[0.5, 100.0]) == pytest.approx(0.4 + 0.2 * 1.0)
    dominated = _df([(0.9, 10.0), (0.8, 20.0), (0.4, 1.0)])  # dominated / beyond the reference: nothing
    assert hypervolume(dominated, reference=[0.5, 100.0]) == pytest.approx(0.4)
    assert hypervolume(_df([]).reindex(columns=["status", "accuracy", "latency_p50_ms"]), reference=[0.5, 100.0]) == 0
    lin = hypervolume(one, reference=[0.5, 100.0], log=())
    assert lin == pytest.approx(0.4 * 90.0)


def test_the_command_line_wins_over_an_experiments_axes():
    from paretobert import compose

    space, fixed = compose.sweep_space(["+experiment=smoke", "quant=false", "seq_len=16,32,64"])
    assert space == {"seq_len": ["16", "32", "64"]} and "quant=false" in fixed
    assert len(compose.grid(space, fixed)) == 3
