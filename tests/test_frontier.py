import math

import numpy as np
import pandas as pd
import pytest

from paretobert.frontier import frontier, pareto_mask, parse_objectives


def df(rows):
    return pd.DataFrame(rows, columns=["variant_id", "status", "accuracy", "latency_p50_ms"])


def test_basic_dominance():
    d = df([("a", "ok", 0.9, 10.0), ("b", "ok", 0.8, 5.0), ("c", "ok", 0.7, 8.0), ("d", "ok", 0.95, 20.0)])
    assert pareto_mask(d).tolist() == [True, True, False, True]
    assert frontier(d)["variant_id"].tolist() == ["b", "a", "d"]  # by latency


def test_single_point_and_empty():
    assert pareto_mask(df([("a", "ok", 0.5, 1.0)])).tolist() == [True]
    assert pareto_mask(df([])).tolist() == []
    assert len(frontier(df([]))) == 0


def test_exact_ties_both_kept_and_partial_tie_dominated():
    d = df([("a", "ok", 0.9, 10.0), ("b", "ok", 0.9, 10.0), ("c", "ok", 0.9, 12.0), ("e", "ok", 0.8, 10.0)])
    # a and b identical: neither dominates; c same accuracy but slower; e same latency, less accurate
    assert pareto_mask(d).tolist() == [True, True, False, False]


def test_nan_and_failed_rows_never_on_frontier_and_never_dominate():
    d = df([("a", "ok", 0.9, 10.0), ("b", "failed", 0.99, 1.0), ("c", "ok", math.nan, 1.0),
            ("d", "ok", 0.95, np.inf), ("e", "ok", 0.5, 5.0)])
    assert pareto_mask(d).tolist() == [True, False, False, False, True]


def test_both_directions_and_custom_objectives():
    d = pd.DataFrame({"status": ["ok"] * 3, "accuracy": [0.9, 0.8, 0.7], "model_mb": [100.0, 10.0, 50.0]})
    assert pareto_mask(d, [("accuracy", "max"), ("model_mb", "min")]).tolist() == [True, True, False]
    # flipping both directions: now the worst/biggest corner wins
    assert pareto_mask(d, [("accuracy", "min"), ("model_mb", "max")]).tolist() == [True, False, True]


def test_three_objectives():
    d = pd.DataFrame({"a": [1.0, 2.0, 1.0], "b": [1.0, 1.0, 2.0], "c": [3.0, 1.0, 3.0]})
    assert pareto_mask(d, [("a", "min"), ("b", "min"), ("c", "min")]).tolist() == [True, True, False]


def test_no_status_column_and_missing_column_error():
    d = pd.DataFrame({"accuracy": [0.5, 0.6], "latency_p50_ms": [1.0, 2.0]})
    assert pareto_mask(d).tolist() == [True, True]
    with pytest.raises(KeyError, match="model_mb"):
        pareto_mask(d, [("model_mb", "min")])


def test_parse_objectives():
    assert parse_objectives(["accuracy:max", "latency_p99_ms:min"]) == (("accuracy", "max"), ("latency_p99_ms", "min"))
    for bad in (["accuracy"], ["accuracy:up"], [":max"], []):
        with pytest.raises(ValueError):
            parse_objectives(bad)


def test_frontier_per_group():
    from paretobert.frontier import noise_aware_frontier

    df = pd.DataFrame({
        "variant_id": ["a1", "b1", "a2", "b2", "c2"], "status": ["ok"] * 5, "threads": [1, 1, 2, 2, 2],
        "accuracy": [0.9, 0.8, 0.9, 0.8, 0.95], "latency_p50_ms": [10.0, 20.0, 6.0, 3.0, 50.0],
    })
    assert noise_aware_frontier(df)["variant_id"].tolist() == ["b2", "a2", "c2"]  # one frontier: b1, a1 dominated
    per = noise_aware_frontier(df, by="threads")
    assert per["variant_id"].tolist() == ["a1", "b2", "a2", "c2"]  # b1 dominated within threads=1
    with pytest.raises(KeyError, match="group column"):
        noise_aware_frontier(df, by="machine")


def test_separated_dominance_only_judges_pairs_apart_on_every_objective():
    from paretobert.frontier import separated_dominance

    df = pd.DataFrame({
        "variant_id": ["a", "b", "c", "d"], "status": "ok",
        "accuracy": [0.9, 0.7, 0.88, 0.5], "accuracy_ci_lo": [0.85, 0.65, 0.83, 0.45],
        "accuracy_ci_hi": [0.95, 0.75, 0.93, 0.55],
        "latency_p50_ms": [5.0, 10.0, 5.5, 1.0], "latency_p50_ms_ci_lo": [4.8, 9.5, 5.2, 0.9],
        "latency_p50_ms_ci_hi": [5.2, 10.5, 5.8, 1.1],
    })
    rel = separated_dominance(df)
    assert rel[("a", "b")] == "a" and rel[("b", "c")] == "c"  # better on both, beyond the intervals
    assert rel[("a", "d")] == rel[("b", "d")] == "neither"  # d: faster, less accurate
    assert ("a", "c") not in rel  # overlapping accuracy intervals (and latency ones): not judged
    assert set(rel) == {("a", "b"), ("a", "d"), ("b", "c"), ("b", "d"), ("c", "d")}
