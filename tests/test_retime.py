"""`paretobert retime`: re-times a finished sweep from cached artifacts, interleaved."""

from __future__ import annotations

import json

import pytest

from paretobert import pipeline, schedule
from paretobert.cli import main as cli
from paretobert.config import BenchConfig
from paretobert.retime import RetimeError, retime_sweep, variant_from_dict


def test_variant_roundtrips_through_its_record(variant_of):
    v = variant_of(quant=True)
    assert variant_from_dict(json.loads(json.dumps(v.to_dict()))) == v


def test_retime_updates_every_result_without_retraining(tmp_path, variant_of, monkeypatch):
    sweep, cache = tmp_path / "sweep", tmp_path / "cache"
    bench = BenchConfig(warmup=1, min_iters=5, min_seconds=0.0, max_seconds=2.0, n_texts=4)
    for q in (False, True):
        v = variant_of(quant=q, bench=bench)
        assert pipeline.run_variant(v, out_dir=sweep / v.variant_id, cache_dir=cache, progress=False)["status"] == "ok"
    monkeypatch.setattr("paretobert.train.fine_tune", lambda *a, **k: pytest.fail("retime must not train"))
    recs = retime_sweep(sweep, rounds=2, cache_dir=cache, progress=False)
    assert len(recs) == 2
    for rec in recs:
        on_disk = json.loads((sweep / rec["variant_id"] / "result.json").read_text())
        assert on_disk["latency_rounds"] == 2 and len(on_disk["retime"]["p50_ms"]) == 2
        assert on_disk["retime"]["before"]["latency_rounds"] == 1 and on_disk["status"] == "ok"
        assert on_disk["latency_p50_ms_ci_lo"] <= on_disk["latency_p50_ms"] <= on_disk["latency_p50_ms_ci_hi"]
    # one hold of the machine for the interleaved rounds: the same window, not an overlap
    assert recs[0]["timing_window"] == recs[1]["timing_window"] and schedule.overlaps(recs) == []
    assert cli(["retime", str(sweep), "--rounds", "1", "--cache-dir", str(cache)]) == 0
    assert (sweep / "frontier.csv").exists()


def test_retime_errors_say_what_to_do(tmp_path, variant_of, capsys):
    with pytest.raises(RetimeError, match="run the sweep first"):
        retime_sweep(tmp_path, cache_dir=tmp_path)
    v = variant_of()
    pipeline.run_variant(v, out_dir=tmp_path / "s" / v.variant_id, cache_dir=tmp_path / "cache", progress=False)
    assert cli(["retime", str(tmp_path / "s"), "--cache-dir", str(tmp_path / "elsewhere")]) == 2
    assert "is gone; re-run the sweep" in capsys.readouterr().err
    assert cli(["frobnicate"]) == 2


def test_records_of_older_versions_get_todays_defaults(variant_of):
    d = json.loads(json.dumps(variant_of().to_dict()))
    del d["exit"], d["distill"]  # sections added after the record was written
    d["model"].pop("retokenize")
    v = variant_from_dict(d)
    assert v.exit.threshold is None and v.distill.teacher is None and v.model.retokenize is False
    del d["seq_len"]
    with pytest.raises(RetimeError, match="seq_len"):
        variant_from_dict(d)
