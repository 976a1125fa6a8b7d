"""`paretobert retime`: re-times a finished sweep from cached artifacts, interleaved."""

from __future__ import annotations

import dataclasses
import json

import pytest

from paretobert import measure, pipeline, schedule
from paretobert.cli import main as cli
from paretobert.config import BenchConfig, ConfigError, load_bench_preset
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


def test_retime_can_time_every_variant_with_one_bench_preset(tmp_path, variant_of, monkeypatch, capsys):
    """A sweep run with a short bench is re-timed on the texts and loop another preset says,
    and the record says which protocol its latency now comes from."""
    sweep, cache = tmp_path / "sweep", tmp_path / "cache"
    v = variant_of(quant=True)  # its own bench: 4 texts
    assert pipeline.run_variant(v, out_dir=sweep / v.variant_id, cache_dir=cache, progress=False)["status"] == "ok"
    timed = []
    real = measure.time_round

    def spy(model, feeds, b, **kw):
        timed.append((len(feeds), b.min_iters))
        return real(model, feeds, b, **kw)

    monkeypatch.setattr(measure, "time_round", spy)
    retime_sweep(sweep, rounds=1, cache_dir=cache, progress=False)
    other = BenchConfig(warmup=0, min_iters=3, min_seconds=0.0, max_seconds=1.0, n_texts=2)
    (rec,) = retime_sweep(sweep, rounds=1, cache_dir=cache, progress=False, bench=other)
    assert timed == [(4, 5), (2, 3)]
    assert rec["retime"]["bench"]["n_texts"] == 2 and rec["variant"] == v.to_dict()  # the variant is unchanged
    assert cli(["retime", str(sweep), "--rounds", "1", "--cache-dir", str(cache), "--bench", "quick"]) == 0
    quick = load_bench_preset("quick")  # 20 texts: as many as the small test split has
    assert timed[-1][1] == quick.min_iters and 4 < timed[-1][0] <= quick.n_texts
    on_disk = json.loads((sweep / v.variant_id / "result.json").read_text())
    assert on_disk["retime"]["bench"] == dataclasses.asdict(load_bench_preset("quick"))
    with pytest.raises(SystemExit):
        cli(["retime", str(sweep), "--bench", "nope"])
    assert "invalid choice: 'nope'" in capsys.readouterr().err


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


def test_bench_presets_load_as_hydra_composes_them():
    assert load_bench_preset("default") == BenchConfig()
    assert load_bench_preset("quick").n_texts < BenchConfig().n_texts
    with pytest.raises(ConfigError, match="bench preset 'nope' not found; accepted: default | quick"):
        load_bench_preset("nope")
