"""`paretobert compare`: variants matched by hash, moved on / off the frontier."""

from __future__ import annotations

import pandas as pd
import pytest

from paretobert.cli import main as cli
from paretobert.compare import compare_tables, hypervolume_of
from paretobert.frontier import noise_aware_frontier
from paretobert.store import atomic_write_json


def _t(rows):
    return pd.DataFrame([{"hash": h, "variant_id": h, "label": h, "status": "ok", "accuracy": a,
                          "latency_p50_ms": p} for h, a, p in rows])


def test_compare_moves_and_ratios():
    a = _t([("x", 0.9, 10.0), ("y", 0.8, 5.0), ("z", 0.85, 12.0), ("gone", 0.5, 1.0)])
    b = _t([("x", 0.9, 20.0), ("y", 0.8, 5.0), ("z", 0.85, 8.0), ("new", 0.7, 30.0)])
    m = compare_tables(a, b).set_index("variant_id")
    assert m.loc["x", "latency_p50_ms_b_over_a"] == 2.0 and m.loc["x", "accuracy_b_minus_a"] == 0.0
    # A: gone, y, x on the frontier (z dominated by x); B: y, z, x (x no longer dominates z)
    assert m.loc["z", "moved"] == "on" and m.loc["x", "moved"] == "stayed" and m.loc["y", "moved"] == "stayed"
    assert m.loc["gone", "moved"] == "only in A" and m.loc["new", "moved"] == "only in B"


def test_hypervolume_of_a_frontier():
    t = _t([("x", 0.9, 10.0), ("y", 0.8, 5.0), ("w", 0.5, 20.0)])
    # reference = worst accuracy (0.5) and worst latency (20): (0.4 x 10) + (0.3 x 5)
    assert hypervolume_of(t, noise_aware_frontier(t), [("accuracy", "max"), ("latency_p50_ms", "min")]) == pytest.approx(5.5)


def test_compare_cli(tmp_path, capsys):
    for sweep, p50 in (("a", 10.0), ("b", 30.0)):
        for vid, acc, lat in (("v1", 0.9, p50), ("v2", 0.8, 20.0)):
            atomic_write_json(tmp_path / sweep / vid / "result.json", {
                "variant_id": vid, "hash": vid, "status": "ok", "model": "m", "accuracy": acc,
                "latency_p50_ms": lat, "n_test": 100})
    assert cli(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "v2" in out and "on" in out and "hypervolume A" in out and (tmp_path / "b" / "compare.csv").exists()
    assert cli(["compare", str(tmp_path / "a"), str(tmp_path / "nothing")]) == 2
