"""Every runtime x precision on a tiny random BERT: it runs and is scored and timed by the same
protocol, or fails with one line naming the reason. CPU flags are simulated for both branches."""

from __future__ import annotations

import json

import numpy as np
import pytest

from paretobert import env, pipeline
from paretobert.config import (
    Config,
    ConfigError,
    ExitConfig,
    ModelConfig,
    QuantizeConfig,
    RuntimeConfig,
)
from paretobert.flops import encoder_flops, precision_class
from paretobert.record import results_table
from paretobert.variant import Variant

pytest.importorskip("openvino")
pytest.importorskip("nncf")

TWO = ModelConfig(name="micro", layers=2, hidden=32, heads=2, intermediate=64, max_position=128,
                  tokenizer="wordpiece", vocab_size=150)
CELLS = [("onnxruntime", "fp32"), ("onnxruntime", "int8-dynamic"), ("onnxruntime", "int8-static"),
         ("openvino", "fp32"), ("openvino", "int8-dynamic"), ("openvino", "int8-static")]


@pytest.fixture()
def no_bf16(monkeypatch):
    monkeypatch.setenv("PARETOBERT_CPU_FLAGS", "avx,avx2,fma")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("rt-cache")  # one fine-tune shared by every cell


@pytest.mark.parametrize("runtime,precision", CELLS)
def test_every_cell_runs_scored_and_timed(tmp_path, cache, variant_of, runtime, precision):
    v = variant_of(model=TWO, runtime=RuntimeConfig(name=runtime), precision=precision)
    rec = pipeline.run_variant(v, out_dir=tmp_path / "j", cache_dir=cache, progress=False)
    assert rec["status"] == "ok", rec.get("traceback")
    assert (rec["runtime"], rec["precision"]) == (runtime, precision)
    assert rec["runtime_version"] and rec["n_test"] == 9 and rec["latency_p50_ms"] > 0 and rec["model_mb"] > 0
    assert rec["accuracy_ci_lo"] <= rec["accuracy"] <= rec["accuracy_ci_hi"]
    assert rec["gflop"] > 0 and rec["achieved_gflops_per_s"] > 0 and 0 < rec["peak_fraction"]
    cls = precision_class(precision)  # the machine's peak: the best runtime's GEMM at that precision
    assert rec["peak_gflops_per_s"] == max(v for k, v in rec["peak_by_runtime"].items() if k.endswith("/" + cls))
    if runtime == "openvino":
        assert rec["executed"]["inference_precision"] == "f32" and rec["executed"]["threads"] == 1
        assert rec["variant_id"].startswith(f"csv-micro-scratch-ov-{precision}-s32-t1-")
    if precision == "int8-static":
        assert rec["calibration"]["texts"] == min(300, 27)  # train texts only
    row = results_table([rec]).iloc[0]
    assert (row["runtime"], row["precision"]) == (runtime, precision)


def test_runtimes_agree_on_the_same_fp32_model(tmp_path, cache, variant_of):
    recs = [pipeline.run_variant(variant_of(model=TWO, runtime=RuntimeConfig(name=r)), out_dir=tmp_path / r,
                                 cache_dir=cache, progress=False) for r in ("onnxruntime", "openvino")]
    assert [r["status"] for r in recs] == ["ok", "ok"], [r.get("traceback") for r in recs]
    assert recs[0]["train_key"] == recs[1]["train_key"] and recs[0]["eval_key"] != recs[1]["eval_key"]
    preds = [json.loads((cache / "eval" / r["eval_key"] / "meta.json").read_text())["predictions"] for r in recs]
    assert preds[0] == preds[1] and recs[0]["accuracy"] == recs[1]["accuracy"]


def test_bf16_without_bf16_units_fails_with_the_reason(tmp_path, cache, variant_of, no_bf16):
    v = variant_of(model=TWO, runtime=RuntimeConfig(name="openvino"), precision="bf16")
    rec = pipeline.run_variant(v, out_dir=tmp_path / "j", cache_dir=cache, progress=False)
    assert rec["status"] == "failed" and rec["error"] == (
        "Unsupported: bf16: this CPU has no AMX-BF16 / AVX512-BF16 (OpenVINO would run f32 instead)")
    assert "fine-tune" not in rec["stage_seconds"]  # refused before any work


def test_bf16_where_the_flags_say_so_runs_or_names_the_mismatch(tmp_path, cache, variant_of, monkeypatch):
    """With bf16 flags the variant is built and compiled with the bf16 hint; on a CPU that
    really lacks bf16 OpenVINO compiles f32, which is reported, never timed as bf16."""
    monkeypatch.setenv("PARETOBERT_CPU_FLAGS", "avx2,avx512f,avx512_bf16,amx_bf16")
    v = variant_of(model=TWO, runtime=RuntimeConfig(name="openvino"), precision="bf16")
    rec = pipeline.run_variant(v, out_dir=tmp_path / "j", cache_dir=cache, progress=False)
    if rec["status"] == "ok":
        assert rec["executed"]["inference_precision"] == "bf16"
    else:
        assert rec["error"].startswith("Unsupported: bf16: OpenVINO compiled model.xml at f32, not bf16")


def test_onnxruntime_has_no_bf16_and_tfidf_only_onnxruntime():
    with pytest.raises(ConfigError, match=r"^invalid config: precision='bf16'; accepted: fp32 \| int8-dynamic"):
        Config(precision="bf16")
    tfidf = ModelConfig(name="tfidf", arch="tfidf", max_position=100000)
    with pytest.raises(ConfigError, match=r"^invalid config: runtime='openvino'"):
        Config(model=tfidf, runtime=RuntimeConfig(name="openvino"))
    with pytest.raises(ConfigError, match=r"^invalid config: precision='int8-static'"):
        Config(model=tfidf, precision="int8-static")
    with pytest.raises(ConfigError, match=r"^invalid config: precision='int8-static'"):
        Config(precision="int8-static", exit=ExitConfig(threshold=0.1))
    with pytest.raises(ConfigError, match=r"^invalid config: runtime='tensorrt'"):
        RuntimeConfig(name="tensorrt")


def test_quant_is_the_short_form_of_the_runtimes_default_int8():
    def v(**kw):
        return Variant.from_config(Config(**kw))

    assert v(quant=True).hash == v(precision="int8").hash == v(precision="int8-dynamic").hash
    assert v(quant=False).hash == v(precision="fp32").hash
    assert v(quant=True).resolved_precision == "int8-dynamic"
    ov = RuntimeConfig(name="openvino")
    assert v(quant=True, runtime=ov).hash == v(precision="int8-static", runtime=ov).hash
    assert v(quant=True, runtime=ov).resolved_precision == "int8-static"
    assert v(precision="int8-static").quant is True and v(precision="int8-static").hash != v(quant=True).hash
    with pytest.raises(ConfigError, match=r"^invalid config: quant=True; accepted: false with precision=fp32"):
        Config(quant=True, precision="fp32")
    with pytest.raises(ConfigError, match="precision"):
        Config(precision="int4")


def test_reduce_range_follows_the_cpu(monkeypatch):
    v = Variant.from_config(Config(quant=True))
    assert v.quantize.reduce_range is None
    monkeypatch.setenv("PARETOBERT_CPU_FLAGS", "avx2,avx512f,avx512_vnni")
    assert env.resolve_variant(v).quantize.reduce_range is False and env.cpu_features()["vnni"]
    monkeypatch.setenv("PARETOBERT_CPU_FLAGS", "avx2")
    assert env.resolve_variant(v).quantize.reduce_range is True and not env.cpu_features()["vnni"]
    pinned = Variant.from_config(Config(quant=True, quantize=QuantizeConfig(reduce_range=False)))
    assert env.resolve_variant(pinned).quantize.reduce_range is False  # what the user set stays
    assert env.environment()["simulated_flags"] is True


def test_encoder_flops_known_values():
    # MiniLM-L6 (6 x 384, 1536) at 128 tokens: ~2.9 GFLOP
    assert encoder_flops(layers=6, hidden=384, intermediate=1536, tokens=128) / 1e9 == pytest.approx(2.87, abs=0.01)
    base = encoder_flops(layers=12, hidden=768, intermediate=3072, tokens=128)
    assert base / 1e9 == pytest.approx(22.5, abs=0.2)
    assert encoder_flops(layers=3, hidden=384, intermediate=1536, tokens=128) < 0.51 * encoder_flops(
        layers=6, hidden=384, intermediate=1536, tokens=128)
    with pytest.raises(ValueError):
        encoder_flops(layers=1, hidden=0, intermediate=4, tokens=3)
    assert [precision_class(p) for p in ("fp32", "bf16", "int8-static", "int8-dynamic")] == [
        "fp32", "bf16", "int8", "int8"]


def test_early_exit_on_openvino(tmp_path, cache, variant_of):
    v = variant_of(model=TWO, runtime=RuntimeConfig(name="openvino"), exit=ExitConfig(threshold=0.0, epochs=1))
    rec = pipeline.run_variant(v, out_dir=tmp_path / "j", cache_dir=cache, progress=False)
    assert rec["status"] == "ok", rec.get("traceback")
    assert rec["exit_layer_mean"] == 2.0 and rec["executed"]["inference_precision"] == "f32"
    same = pipeline.run_variant(variant_of(model=TWO, exit=ExitConfig(threshold=0.0, epochs=1)), out_dir=tmp_path / "k",
                                cache_dir=cache, progress=False)
    assert same["accuracy"] == rec["accuracy"] and np.isclose(same["gflop"], rec["gflop"])


def test_gemm_peak_is_measured_once_per_machine_and_threads(tmp_path, monkeypatch):
    from paretobert import peaks

    calls = []

    def fake(threads):
        calls.append(threads)
        return {"threads": threads, "fp32": 100.0 * threads, "int8": 300.0, "bf16": None, "by_runtime": {}}

    monkeypatch.setattr(peaks, "measure_peaks", fake)
    assert peaks.gemm_peak(threads=1, cache_dir=tmp_path)["fp32"] == 100.0
    assert peaks.gemm_peak(threads=1, cache_dir=tmp_path)["fp32"] == 100.0
    assert peaks.gemm_peak(threads=2, cache_dir=tmp_path)["fp32"] == 200.0
    assert calls == [1, 2]
    monkeypatch.setenv("PARETOBERT_CPU_FLAGS", "avx2,avx512_vnni")  # another CPU: measured again
    peaks.gemm_peak(threads=1, cache_dir=tmp_path)
    assert calls == [1, 2, 1]
