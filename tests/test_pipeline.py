"""run_variant end to end on a tiny random BERT and a few dozen examples (seconds)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from paretobert import pipeline, record
from paretobert.config import BenchConfig, ModelConfig, TrainConfig


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
    assert set(rec["stage_seconds"]) >= {"data", "weights", "fine-tune", "export", "prepare int8-dynamic", "evaluate", "bench"}
    # where it was built and timed, and the window it had the machine alone
    w = rec["timing_window"]
    assert w["started_at"] < w["ended_at"] and w["waited_s"] >= 0
    row = record.row_from_record(rec)
    assert row["build_host"] == row["timing_host"] == w["host"] and row["timing_started_at"] == w["started_at"]


def test_rerun_skips_and_other_variants_share_the_checkpoint(tmp_path, variant_of, monkeypatch):
    cache = tmp_path / "cache"
    first = pipeline.run_variant(variant_of(), out_dir=tmp_path / "a", cache_dir=cache, progress=False)
    assert first["status"] == "ok" and first["train_cached"] is False

    # same variant: the result is reused without touching any stage
    # (a patch of its own: monkeypatch.undo() would also undo conftest's machine lock)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("paretobert.measure.split_of", lambda *a: pytest.fail("a done variant must be skipped"))
        again = pipeline.run_variant(variant_of(), out_dir=tmp_path / "a", cache_dir=cache, progress=False)
        assert again["started_at"] == first["started_at"]
        # a fresh job dir (another sweep) finds it in the shared results cache
        elsewhere = pipeline.run_variant(variant_of(), out_dir=tmp_path / "b", cache_dir=cache, progress=False)
        assert elsewhere["reused_from"].startswith(str(cache)) and (tmp_path / "b" / "result.json").exists()

    # another seq_len and int8: new measurement, same fine-tuned checkpoint
    other = pipeline.run_variant(variant_of(seq_len=16, quant=True), out_dir=tmp_path / "c", cache_dir=cache,
                                 progress=False)
    assert other["status"] == "ok" and other["train_cached"] is True and other["train_key"] == first["train_key"]
    measured = []
    real_measure = pipeline._time
    monkeypatch.setattr(pipeline, "_time", lambda *a, **k: measured.append(1) or real_measure(*a, **k))
    forced = pipeline.run_variant(variant_of(), out_dir=tmp_path / "a", cache_dir=cache, force=True, progress=False)
    assert measured == [1]  # force=true measures again ...
    assert forced["train_cached"] is True and "reused_from" not in forced  # ... from the cached checkpoint


def test_thread_counts_share_the_evaluation_but_not_the_timing(tmp_path, variant_of):
    from paretobert.config import RuntimeConfig

    cache = tmp_path / "cache"
    one = pipeline.run_variant(variant_of(), out_dir=tmp_path / "t1", cache_dir=cache, progress=False)
    two = pipeline.run_variant(variant_of(runtime=RuntimeConfig(threads=2)), out_dir=tmp_path / "t2",
                               cache_dir=cache, progress=False)
    assert one["eval_cached"] is False and two["eval_cached"] is True and two["eval_key"] == one["eval_key"]
    assert two["accuracy"] == one["accuracy"] and two["hash"] != one["hash"]
    assert two["threads"] == 2 and two["latency_n"] > 0
    # the predictions are kept with the evaluation artifact
    meta = json.loads((cache / "eval" / one["eval_key"] / "meta.json").read_text())
    assert len(meta["predictions"]) == one["n_test"]
    # another seq_len is evaluated afresh
    short = pipeline.run_variant(variant_of(seq_len=16), out_dir=tmp_path / "s16", cache_dir=cache, progress=False)
    assert short["eval_cached"] is False and short["eval_key"] != one["eval_key"]


def test_memory_throughput_and_isolated_timing(tmp_path, variant_of):
    cache = tmp_path / "cache"
    bench = BenchConfig(warmup=1, min_iters=5, min_seconds=0.0, max_seconds=2.0, n_texts=8, batch_sizes=[1, 4])
    rec = pipeline.run_variant(variant_of(bench=bench), out_dir=tmp_path / "a", cache_dir=cache, progress=False)
    assert rec["status"] == "ok", rec.get("error")
    assert rec["peak_rss_mb"] > 10 and rec["peak_rss_scope"] in ("timing", "process")
    assert set(rec["throughput"]) == {"1", "4"} and all(v > 0 for v in rec["throughput"].values())
    assert rec["bench_isolated"] is False
    iso = dataclasses.replace(bench, isolate=True, batch_sizes=[])
    spawned = pipeline.run_variant(variant_of(bench=iso), out_dir=tmp_path / "b", cache_dir=cache, progress=False)
    assert spawned["status"] == "ok", spawned.get("error")
    assert spawned["bench_isolated"] is True and spawned["eval_cached"] is True and spawned["latency_n"] >= 5
    assert spawned["hash"] != rec["hash"] and spawned["accuracy"] == rec["accuracy"]


def test_corrupted_cache_and_altered_results_never_reach_the_frontier(tmp_path, variant_of, monkeypatch):
    cache = tmp_path / "cache"
    clean = pipeline.run_variant(variant_of(quant=True), out_dir=tmp_path / "a", cache_dir=cache, progress=False)
    # a tampered result record is not reused: the variant is measured again
    path = tmp_path / "a" / "result.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "accuracy": 1.0}))
    (cache / "results" / f"{clean['hash']}-{clean['environment']['machine_id']}.json").unlink()
    measured = []
    real_measure = pipeline._time
    monkeypatch.setattr(pipeline, "_time", lambda *a, **k: measured.append(1) or real_measure(*a, **k))
    again = pipeline.run_variant(variant_of(quant=True), out_dir=tmp_path / "a", cache_dir=cache, progress=False)
    assert measured == [1] and again["accuracy"] == clean["accuracy"]
    # truncated int8 model and flipped checkpoint byte: detected, rebuilt, same accuracy
    q = cache / "int8" / clean["quant_key"] / "model.int8.onnx"
    q.write_bytes(q.read_bytes()[: q.stat().st_size // 2])
    weights = next((cache / "checkpoints" / clean["train_key"]).glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    rebuilt = pipeline.run_variant(variant_of(quant=True), out_dir=tmp_path / "b", cache_dir=cache, force=True,
                                   progress=False)
    assert rebuilt["status"] == "ok" and rebuilt["train_cached"] is False
    assert rebuilt["accuracy"] == clean["accuracy"] and rebuilt["train_key"] == clean["train_key"]


def test_full_disk_fails_the_variant_cleanly_before_training(tmp_path, variant_of, monkeypatch):
    import shutil
    from collections import namedtuple

    from paretobert import train

    usage = namedtuple("usage", "total used free")
    with pytest.MonkeyPatch.context() as mp:  # not monkeypatch.undo(): that would undo conftest's machine lock
        mp.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 10**6, 10**6))  # 1 MB free
        mp.setattr(train, "fine_tune", lambda *a, **k: pytest.fail("trained despite a full disk"))
        rec = pipeline.run_variant(variant_of(), out_dir=tmp_path / "a", cache_dir=tmp_path / "cache", progress=False)
        assert rec["status"] == "failed" and rec["error"].startswith("DiskSpaceError: only 1 MB free under")
        assert "the fine-tuned checkpoint needs about" in rec["error"]
        assert not [p for p in (tmp_path / "cache" / "checkpoints").iterdir() if p.is_dir()]  # no partial artifact
    assert pipeline.run_variant(variant_of(), out_dir=tmp_path / "a", cache_dir=tmp_path / "cache",
                                progress=False)["status"] == "ok"  # space freed: the re-run completes it


def test_failure_is_recorded_not_raised_and_rerun(tmp_path, variant_of, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("exporter exploded")

    with pytest.MonkeyPatch.context() as mp:  # not monkeypatch.undo(): that would undo conftest's machine lock
        mp.setattr("paretobert.export.export_onnx", broken)
        rec = pipeline.run_variant(variant_of(), out_dir=tmp_path / "j", cache_dir=tmp_path / "cache", progress=False)
        assert rec["status"] == "failed" and "exporter exploded" in rec["error"]
        assert "Traceback" in rec["traceback"] and json.loads((tmp_path / "j" / "result.json").read_text())["status"] == "failed"
        assert not list((tmp_path / "cache" / "results").glob("*.json"))  # failures never enter the shared cache
    ok = pipeline.run_variant(variant_of(), out_dir=tmp_path / "j", cache_dir=tmp_path / "cache", progress=False)
    assert ok["status"] == "ok" and ok["train_cached"] is True  # the failed variant is redone


def test_format_result_line(tmp_path):
    assert pipeline.format_result_line({"variant_id": "x", "status": "failed", "error": "E: boom"}) == "x: FAILED E: boom"


def test_head_tail_and_per_seq_len_training(tmp_path, variant_of):
    """train.max_length=null trains at the variant's seq_len (one checkpoint per seq_len)."""
    cache = tmp_path / "cache"
    train = TrainConfig(epochs=1, batch_size=8, max_length=None, lr=1e-3)
    a = pipeline.run_variant(variant_of(train=train, seq_len=16, truncation="head+tail"), out_dir=tmp_path / "a",
                             cache_dir=cache, progress=False)
    b = pipeline.run_variant(variant_of(train=train, seq_len=24, truncation="head+tail"), out_dir=tmp_path / "b",
                             cache_dir=cache, progress=False)
    assert a["status"] == b["status"] == "ok", (a.get("traceback"), b.get("traceback"))
    assert a["train"]["max_length"] == a["train_length"] == 16 and b["train"]["max_length"] == 24
    assert a["train_key"] != b["train_key"] and a["truncation"] == "head+tail"
    assert a["variant_id"].startswith("csv-micro-scratch-fp32-s16-ht-t1-")
    assert a["mean_tokens"] <= 16


def test_tfidf_variant_runs_through_the_same_protocol(tmp_path, variant_of):
    pytest.importorskip("skl2onnx")
    tfidf = ModelConfig(name="tfidf", arch="tfidf", max_position=100000)
    cache = tmp_path / "cache"
    recs = [pipeline.run_variant(variant_of(model=tfidf, weights="auto", quant=q, seq_len=40), out_dir=tmp_path / str(q),
                                 cache_dir=cache, progress=False) for q in (False, True)]
    for rec in recs:
        assert rec["status"] == "ok", rec.get("traceback")
        assert rec["weights_source"] == "tfidf" and rec["accuracy"] > 0.8  # separable topics
        assert rec["onnx_max_abs_diff"] < 1e-4 and rec["latency_p50_ms"] > 0 and rec["tokenize_p50_ms"] > 0
        assert rec["mean_tokens"] <= 40  # characters
    assert recs[1]["onnx_path"].endswith("model.int8.onnx") and recs[0]["train_key"] == recs[1]["train_key"]


def test_retokenized_pretrained_body(tmp_path, variant_of, tiny_model, tokenizer):
    """Candidate (c): a pretrained body with a vocab trained on the train split, new embeddings
    warmed up by masked-LM, then fine-tuned; the checkpoint carries the new tokenizer."""
    from transformers import AutoTokenizer

    body = tmp_path / "pretrained"
    tiny_model.save_pretrained(body)
    tokenizer.save_pretrained(body)
    model = ModelConfig(name="local", path=str(body), retokenize=True, tokenizer="bpe", vocab_size=90,
                        mlm_epochs=3, max_position=128, language="ja")
    rec = pipeline.run_variant(variant_of(model=model, weights="pretrained"), out_dir=tmp_path / "j",
                               cache_dir=tmp_path / "cache", progress=False)
    assert rec["status"] == "ok", rec.get("traceback")
    assert rec["weights_source"].startswith("path:") and rec["variant_id"].startswith("csv-local+vocab-pretrained-")
    warm = rec["train"]["mlm_warmup"]
    n_fit = rec["data"]["n_train"] - rec["train"]["n_validation"]  # the warm-up sees the carved train texts only
    assert warm["steps"] == 3 * -(-n_fit // 8) and warm["loss_last"] < warm["loss_first"]
    ckpt = AutoTokenizer.from_pretrained(tmp_path / "cache" / "checkpoints" / rec["train_key"])
    assert len(ckpt) <= 90 and ckpt.get_vocab() != tokenizer.get_vocab()


def test_mask_tokens_never_masks_specials():
    import torch

    from paretobert.train import mask_tokens

    ids = torch.arange(10, 10 + 4000).reshape(40, 100)
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = special[:, -1] = True
    inputs, target = mask_tokens(ids, special, mask_id=4, vocab_size=5000, generator=torch.Generator().manual_seed(0))
    assert not target[special].any() and abs(target.float().mean().item() - 0.15 * 0.98) < 0.02
    masked = (inputs == 4) & target
    assert abs(masked.sum().item() / target.sum().item() - 0.8) < 0.05
    assert torch.equal(inputs[~target], ids[~target])


@pytest.mark.parametrize("strategy", ["top", "contribution"])
def test_layer_drop_before_fine_tuning(tmp_path, variant_of, tiny_model, tokenizer, strategy):
    from paretobert.config import DropConfig

    body = tmp_path / "pretrained"
    tiny_model.save_pretrained(body)
    tokenizer.save_pretrained(body)
    model = ModelConfig(name="local", path=str(body), layers=2, hidden=32, heads=2, intermediate=64, max_position=128)
    full = pipeline.run_variant(variant_of(model=model, weights="pretrained"), out_dir=tmp_path / "full",
                                cache_dir=tmp_path / "cache", progress=False)
    rec = pipeline.run_variant(variant_of(model=model, weights="pretrained", drop=DropConfig(strategy=strategy, keep=1)),
                               out_dir=tmp_path / "drop", cache_dir=tmp_path / "cache", progress=False)
    assert full["status"] == rec["status"] == "ok", rec.get("traceback")
    d = rec["train"]["drop"]
    assert d["of"] == 2 and len(d["kept"]) == 1 and rec["variant_id"].startswith(f"csv-local-{strategy}1-pretrained-")
    assert (d["similarity"] is None) == (strategy != "contribution")
    assert rec["n_params"] < full["n_params"] and rec["train_key"] != full["train_key"]
    assert rec["onnx_max_abs_diff"] < 1e-3


def test_distilled_student_from_teacher_layers(tmp_path, variant_of):
    from paretobert.config import DistillConfig, load_model_preset

    micro = load_model_preset("micro")
    teacher = pipeline.run_variant(variant_of(model=micro, weights="auto"), out_dir=tmp_path / "t",
                                   cache_dir=tmp_path / "cache", progress=False)
    kd = variant_of(model=micro, weights="auto", distill=DistillConfig(teacher="micro", layers=[1], hidden_mse=0.5))
    rec = pipeline.run_variant(kd, out_dir=tmp_path / "s", cache_dir=tmp_path / "cache", progress=False)
    assert teacher["status"] == rec["status"] == "ok", rec.get("traceback")
    assert rec["variant_id"].startswith("csv-micro-kd1-fp32-") and rec["n_params"] < teacher["n_params"]
    d = rec["train"]["distill"]
    assert d["teacher_layers"] == 2 and d["student_init"] == [1] and 0.0 <= d["teacher_train_accuracy"] <= 1.0
    assert rec["train_key"] != teacher["train_key"]
    # the teacher was fine-tuned once, cached, and reused by the student
    assert len([p for p in (tmp_path / "cache" / "checkpoints").iterdir() if p.is_dir() and not p.name.startswith(".")]) == 2


def test_early_exit_variant(tmp_path, variant_of):
    from paretobert.config import ExitConfig

    cache = tmp_path / "cache"
    recs = {}
    for s, q in ((0.0, False), (5.0, False), (5.0, True)):
        two = ModelConfig(name="micro", layers=2, hidden=32, heads=2, intermediate=64, max_position=128,
                          tokenizer="wordpiece", vocab_size=150)
        v = variant_of(model=two, exit=ExitConfig(threshold=s, epochs=2), quant=q)
        recs[s, q] = pipeline.run_variant(v, out_dir=tmp_path / f"{s}{q}", cache_dir=cache, progress=False)
        assert recs[s, q]["status"] == "ok", recs[s, q].get("traceback")
    never, always = recs[0.0, False], recs[5.0, False]  # entropy of 3 classes < log 3 < 5
    assert never["exit_layer_mean"] == 2.0 and always["exit_layer_mean"] == 1.0
    assert always["exit_layer_counts"] == {"1": always["n_test"]}
    assert never["exit_max_abs_diff"] < 1e-3 and never["exit_key"] == always["exit_key"] != recs[5.0, True]["exit_key"]
    assert never["variant_id"].startswith("csv-micro-scratch-fp32-s32-exit0e2-t1-")  # 2 off-ramp epochs
    assert "early-exit" in never["stage_seconds"] and recs[5.0, True]["model_mb"] < never["model_mb"]


def test_repeats_give_rounds_and_intervals(tmp_path, variant_of):
    bench = BenchConfig(warmup=1, min_iters=5, min_seconds=0.0, max_seconds=2.0, n_texts=4, repeats=3)
    rec = pipeline.run_variant(variant_of(bench=bench), out_dir=tmp_path / "j", cache_dir=tmp_path / "c", progress=False)
    assert rec["status"] == "ok", rec.get("traceback")
    rounds = rec["latency_p50_rounds_ms"]
    assert rec["latency_rounds"] == len(rounds) == len(rec["latency"]["rounds"]) == 3
    assert rec["latency_p50_ms"] == sorted(rounds)[1]
    assert min(rounds) == rec["latency_p50_ms_ci_lo"] <= rec["latency_p50_ms"] <= rec["latency_p50_ms_ci_hi"] == max(rounds)
    assert rec["accuracy_ci_lo"] <= rec["accuracy"] <= rec["accuracy_ci_hi"]
    single = pipeline.run_variant(variant_of(), out_dir=tmp_path / "k", cache_dir=tmp_path / "c", progress=False)
    assert single["latency_rounds"] == 1 and single["latency"]["n"] == len(single["latency"]["raw"])
    assert single["latency_p50_ms_ci_lo"] <= single["latency_p50_ms"] <= single["latency_p50_ms_ci_hi"]


def test_a_result_of_another_training_policy_is_measured_again(tmp_path, variant_of, monkeypatch):
    """A change of the default policy (what an unset lr / budget resolves to) changes no
    variant hash: the stored result records its policy and is not reused under another."""
    from paretobert import train

    cache = tmp_path / "cache"
    first = pipeline.run_variant(variant_of(), out_dir=tmp_path / "a", cache_dir=cache, progress=False)
    assert first["train_policy"] == train.TRAIN_POLICY
    monkeypatch.setattr(train, "TRAIN_POLICY", train.TRAIN_POLICY + 1)
    again = pipeline.run_variant(variant_of(), out_dir=tmp_path / "a", cache_dir=cache, progress=False)
    assert again["started_at"] != first["started_at"] and again["train_policy"] == train.TRAIN_POLICY
    assert again["train_cached"] is True  # the checkpoint is keyed on the resolved lr, which did not change
