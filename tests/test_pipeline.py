"""run_variant end to end on a tiny random BERT and a few dozen examples (seconds)."""

from __future__ import annotations

import csv
import json

import pytest

from paretobert import pipeline
from paretobert.config import BenchConfig, Config, DatasetConfig, ModelConfig, TrainConfig
from paretobert.variant import Variant


@pytest.fixture()
def variant_of(tmp_path, corpus):
    texts, labels, names = corpus
    data = tmp_path / "data.csv"
    with open(data, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows((t, names[y]) for t, y in zip(texts, labels, strict=True))

    def make(**kw):
        cfg = Config(
            model=ModelConfig(name="micro", layers=1, hidden=32, heads=2, intermediate=64, max_position=128,
                              tokenizer="wordpiece", vocab_size=150),
            dataset=DatasetConfig(name="csv", path=str(data)),
            train=TrainConfig(epochs=2, batch_size=8, max_length=64, lr=1e-3),
            bench=BenchConfig(warmup=1, min_iters=5, min_seconds=0.0, max_seconds=2.0, n_texts=4),
            weights="scratch", seq_len=32, allow_network=False,
        )
        for k, v in kw.items():
            setattr(cfg, k, v)
        return Variant.from_config(cfg)

    pipeline._SPLITS.clear()
    return make


def test_variant_runs_and_records_everything(tmp_path, variant_of):
    v = variant_of(quant=True)
    rec = pipeline.run_variant(v, out_dir=tmp_path / "job", cache_dir=tmp_path / "cache", progress=False)
    assert rec["status"] == "ok", rec.get("traceback")
    on_disk = json.loads((tmp_path / "job" / "result.json").read_text())
    assert on_disk["hash"] == v.hash and on_disk["variant_id"] == v.variant_id
    assert rec["weights_source"] == "scratch" and rec["pretrained"] is False
    assert rec["n_test"] == 9 and 0.0 <= rec["accuracy"] <= 1.0 and 0.0 <= rec["macro_f1"] <= 1.0
    lat = rec["latency"]
    assert lat["unit"] == "ms" and rec["latency_n"] == len(lat["raw"]) >= 5 and rec["latency_p50_ms"] > 0
    assert rec["latency_p50_ms"] <= rec["latency_p99_ms"] <= rec["latency_max_ms"]
    assert rec["tokenize_p50_ms"] > 0 and rec["session_create_ms"] > 0 and rec["model_mb"] > 0
    assert rec["onnx_max_abs_diff"] < 1e-3 and rec["onnx_path"].endswith("model.int8.onnx")
    assert rec["mean_tokens"] <= 32
    env = rec["environment"]
    assert env["threads"] == 1 and "onnxruntime" in env["versions"] and env["machine_id"]
    assert set(rec["stage_seconds"]) >= {"data", "weights", "fine-tune", "export", "quantize", "evaluate", "bench"}


def test_rerun_skips_and_other_variants_share_the_checkpoint(tmp_path, variant_of, monkeypatch):
    cache = tmp_path / "cache"
    first = pipeline.run_variant(variant_of(), out_dir=tmp_path / "a", cache_dir=cache, progress=False)
    assert first["status"] == "ok" and first["train_cached"] is False

    # same variant: the result is reused without touching any stage
    monkeypatch.setattr(pipeline, "_split", lambda *a: pytest.fail("a done variant must be skipped"))
    again = pipeline.run_variant(variant_of(), out_dir=tmp_path / "a", cache_dir=cache, progress=False)
    assert again["started_at"] == first["started_at"]
    # a fresh job dir (another sweep) finds it in the shared results cache
    elsewhere = pipeline.run_variant(variant_of(), out_dir=tmp_path / "b", cache_dir=cache, progress=False)
    assert elsewhere["reused_from"].startswith(str(cache)) and (tmp_path / "b" / "result.json").exists()
    monkeypatch.undo()

    # another seq_len and int8: new measurement, same fine-tuned checkpoint
    other = pipeline.run_variant(variant_of(seq_len=16, quant=True), out_dir=tmp_path / "c", cache_dir=cache,
                                 progress=False)
    assert other["status"] == "ok" and other["train_cached"] is True and other["train_key"] == first["train_key"]
    measured = []
    real_measure = pipeline._measure
    monkeypatch.setattr(pipeline, "_measure", lambda *a, **k: measured.append(1) or real_measure(*a, **k))
    forced = pipeline.run_variant(variant_of(), out_dir=tmp_path / "a", cache_dir=cache, force=True, progress=False)
    assert measured == [1]  # force=true measures again ...
    assert forced["train_cached"] is True and "reused_from" not in forced  # ... from the cached checkpoint


def test_failure_is_recorded_not_raised_and_rerun(tmp_path, variant_of, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr("paretobert.export.export_onnx", broken)
    rec = pipeline.run_variant(variant_of(), out_dir=tmp_path / "j", cache_dir=tmp_path / "cache", progress=False)
    assert rec["status"] == "failed" and "exporter exploded" in rec["error"]
    assert "Traceback" in rec["traceback"] and json.loads((tmp_path / "j" / "result.json").read_text())["status"] == "failed"
    assert not list((tmp_path / "cache" / "results").glob("*.json"))  # failures never enter the shared cache
    monkeypatch.undo()
    ok = pipeline.run_variant(variant_of(), out_dir=tmp_path / "j", cache_dir=tmp_path / "cache", progress=False)
    assert ok["status"] == "ok" and ok["train_cached"] is True  # the failed variant is redone


def test_format_result_line(tmp_path):
    assert pipeline.format_result_line({"variant_id": "x", "status": "failed", "error": "E: boom"}) == "x: FAILED E: boom"
