"""The fine-tuning step benchmarks run end to end on a micro model and write their records (no
figure is asserted: timing is not a test; the figures are in benchmarks/results and the README)."""

import json
from pathlib import Path

import pytest


@pytest.mark.parametrize(("script", "arm"), [("train_optimizer", "fused"), ("train_dropout", "fast")])
def test_the_benchmark_runs_and_writes_its_record(script, arm, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    bench = __import__(script)
    out = tmp_path / "r.json"
    assert bench.main(["--models", "micro", "--seq-lens", "8", "--steps", "1", "--rounds", "1", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    (row,) = record["rows"]
    assert record["benchmark"] == script and row["model"] == "micro" and row["seq_len"] == 8
    assert len(row["rounds"][arm]) == 1
