"""pick / export / predict: the variant chosen under a budget, its bundle, and the bundle
predicting exactly what the sweep evaluated (fp32, int8 with head+tail truncation, early exit)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from paretobert import bundle, cli, measure, pipeline
from paretobert.config import ExitConfig, ModelConfig, RuntimeConfig
from paretobert.pick import Budget, NothingFits, pick
from paretobert.store import read_json

TWO = ModelConfig(name="micro", layers=2, hidden=32, heads=2, intermediate=64, max_position=128,
                  tokenizer="wordpiece", vocab_size=150)


# ---------------------------------------------------------------------------- pick (pure)


def _row(vid, acc, p50, *, w=0.01, p99=None, mb=10.0, status="ok"):
    return {"variant_id": vid, "label": vid, "status": status, "accuracy": acc, "accuracy_ci_lo": acc - w,
            "accuracy_ci_hi": acc + w, "latency_p50_ms": p50, "latency_p50_ms_ci_lo": p50 * 0.99,
            "latency_p50_ms_ci_hi": p50 * 1.01, "latency_p99_ms": p99 or p50 * 1.2, "model_mb": mb}


TABLE = pd.DataFrame([
    _row("tiny", 0.90, 1.0, mb=4), _row("mini", 0.93, 5.0, mb=20), _row("base", 0.97, 100.0, mb=400),
    _row("base-int8", 0.965, 40.0, mb=110), _row("slow-bad", 0.80, 200.0), _row("broken", 0.99, 0.5, status="failed"),
])


def test_pick_takes_the_most_accurate_variant_that_fits():
    p = pick(TABLE, Budget.from_flags(max_p50_ms=10))
    assert p.best["variant_id"] == "mini" and p.runners_up == []
    assert p.lost["base"].startswith("over budget: latency_p50_ms 100 ms > 10 ms")
    assert "broken" not in p.lost and "slow-bad" not in p.lost  # failed and dominated variants are not frontier points
    assert pick(TABLE).best["variant_id"] == "base"  # no budget
    assert pick(TABLE, Budget.from_flags(max_mb=50, min_accuracy=0.85)).best["variant_id"] == "mini"


def test_ties_within_the_intervals_are_runners_up():
    p = pick(TABLE, Budget.from_flags(max_p50_ms=150))
    assert p.best["variant_id"] == "base"  # 0.97 [0.96, 0.98] vs base-int8 0.965 [0.955, 0.975]: not separable
    assert [r["variant_id"] for r in p.runners_up] == ["base-int8"]
    assert "below the pick's" in p.lost["mini"]
    tied = pd.DataFrame([_row("a", 0.95, 3.0, w=0), _row("b", 0.95, 2.0, w=0)])
    assert pick(tied).best["variant_id"] == "b"  # equal accuracy: the faster
    assert pick(tied, objectives=(("accuracy", "max"), ("latency_p50_ms", "max"))).best["variant_id"] == "a"


def test_nothing_fits_names_the_closest():
    with pytest.raises(NothingFits, match=r"nothing fits latency_p50_ms <= 0.2 ms: the closest is tiny "
                                          r"\(latency_p50_ms 1 ms > 0.2 ms\)") as e:
        pick(TABLE, Budget.from_flags(max_p50_ms=0.2))
    assert e.value.closest["variant_id"] == "tiny"
    with pytest.raises(NothingFits, match="closest is base"):
        pick(TABLE, Budget.from_flags(min_accuracy=0.99))
    with pytest.raises(NothingFits, match="no ok variant"):
        pick(TABLE[TABLE.status != "ok"])
    with pytest.raises(ValueError, match="need a finite value >= 0"):
        Budget.from_flags(max_p50_ms=-1)
    with pytest.raises(KeyError, match="objective column 'f1'"):
        pick(TABLE, objectives=(("f1", "max"),))


def test_a_pick_with_other_seeds_says_how_far_they_landed(tmp_path):
    """The pick is the best of three seeds of one configuration: the pick names every seed's
    accuracy and their mean (JSON too); without other seeds it says nothing about seeds."""
    from paretobert.pick import render

    seeded = pd.DataFrame([{**_row(f"t{s}", acc, 1.0), "seed": s, "seed_group": "g"}
                           for s, acc in ((0, 0.90), (1, 0.95), (2, 0.92))]
                          + [{**_row("other", 0.50, 0.5), "seed": 0, "seed_group": "h"}])
    p = pick(seeded)
    assert p.best["variant_id"] == "t1" and p.seeds == {0: 0.90, 1: 0.95, 2: 0.92}
    text = render(p, tmp_path)
    assert "seeds: its configuration ran 3 seeds, accuracy 0.9 (seed 0) / 0.95 (seed 1) / 0.92 (seed 2), mean 0.9233" in text
    assert p.as_dict()["seeds"] == {"0": 0.90, "1": 0.95, "2": 0.92}
    assert pick(seeded[seeded.seed != 2], Budget.from_flags(max_p50_ms=0.9)).seeds == {}  # "other": one seed
    assert pick(TABLE).seeds == {} and "seeds:" not in render(pick(TABLE), tmp_path)  # no seed columns at all


# ---------------------------------------------------------------------------- export / predict


@pytest.fixture()
def sweep(tmp_path, variant_of):
    """Three measured variants of one fine-tune in a sweep directory, and their cache."""
    cache, out = tmp_path / "cache", tmp_path / "sweep"
    variants = [
        variant_of(model=TWO),
        variant_of(model=TWO, quant=True, truncation="head+tail"),  # texts are longer than seq_len 32
        variant_of(model=TWO, exit=ExitConfig(threshold=1.05, epochs=2)),
    ]
    recs = []
    for v in variants:
        rec = pipeline.run_variant(v, out_dir=out / v.variant_id, cache_dir=cache, progress=False)
        assert rec["status"] == "ok", rec.get("traceback")
        recs.append(rec)
    return out, cache, variants, recs


def test_a_bundle_predicts_what_the_sweep_evaluated(sweep, tmp_path):
    out, cache, variants, recs = sweep
    split = measure.split_of(variants[0], cache, False)
    for v, rec in zip(variants, recs, strict=True):
        b_dir = bundle.export_bundle(out, rec["variant_id"], tmp_path / "b" / rec["variant_id"], cache_dir=cache)
        b = bundle.load_bundle(b_dir)
        pred = b.predict(split.test_texts)
        lengths = [len(b.tokenizer.encode(t, add_special_tokens=False).ids) for t in split.test_texts]
        assert max(lengths) > v.seq_len > min(lengths)  # truncation matters, on some texts only
        evaluated = read_json(cache / "eval" / rec["eval_key"] / "meta.json")["predictions"]
        assert [split.label_names.index(x) for x in pred.labels] == evaluated, rec["variant_id"]
        assert pred.probabilities.shape == (len(split.test_texts), 3)
        assert np.allclose(pred.probabilities.sum(axis=1), 1.0)
        info = json.loads((b_dir / bundle.BUNDLE_FILE).read_text())
        assert info["measured"]["accuracy"] == rec["accuracy"] and info["truncation"] == v.truncation
        if v.exit.threshold is not None:
            assert len(info["model_files"]) == 2 and np.mean(pred.exit_layers) == rec["exit_layer_mean"]
    assert recs[1]["precision"] == "int8-dynamic"


def test_predict_needs_no_torch_transformers_or_hydra(sweep, tmp_path):
    out, cache, _, recs = sweep
    b_dir = bundle.export_bundle(out, recs[1]["variant_id"], tmp_path / "b", cache_dir=cache)
    code = ("import sys\n"
            "for m in ('torch', 'transformers', 'hydra', 'omegaconf', 'onnx', 'pandas', 'sklearn'):\n"
            "    sys.modules[m] = None\n"
            "from paretobert import load_bundle\n"
            f"print(load_bundle({str(b_dir)!r}).predict(['match goal team coach league']).labels[0])\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.strip() in ("money", "sport", "tech")


def test_export_refuses_bad_variants_and_a_corrupted_bundle_is_an_error(sweep, tmp_path, capsys):
    out, cache, _, recs = sweep
    with pytest.raises(bundle.BundleError, match=r"no variant 'nope' in .*; known: csv-micro"):
        bundle.export_bundle(out, "nope", tmp_path / "x", cache_dir=cache)
    failed = out / "failed-one"
    failed.mkdir()
    (failed / "result.json").write_text(json.dumps({"variant_id": "failed-one", "status": "failed",
                                                    "error": "OOM while exporting"}))
    with pytest.raises(bundle.BundleError, match="failed-one failed: OOM while exporting; nothing measured"):
        bundle.export_bundle(out, "failed-one", tmp_path / "x", cache_dir=cache)
    assert not (tmp_path / "x").exists()

    b_dir = bundle.export_bundle(out, recs[0]["variant_id"], tmp_path / "b", cache_dir=cache)
    with pytest.raises(bundle.BundleError, match="exists and is not empty"):
        bundle.export_bundle(out, recs[0]["variant_id"], b_dir, cache_dir=cache)
    model = next((b_dir / "model").glob("*.onnx"))
    good = model.read_bytes()
    data = bytearray(good)
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(bundle.BundleError, match=r"model/.*\.onnx does not match its SHA-256"):
        bundle.load_bundle(b_dir)
    assert cli.main(["predict", str(b_dir), "some text"]) == 2
    assert "does not match its SHA-256" in capsys.readouterr().err
    model.write_bytes(good)
    assert bundle.load_bundle(b_dir).predict("match goal").labels
    (b_dir / "tokenizer.json").unlink()
    with pytest.raises(bundle.BundleError, match="tokenizer.json is missing"):
        bundle.load_bundle(b_dir, verify=True)
    (b_dir / bundle.BUNDLE_FILE).write_text("{not json")
    with pytest.raises(bundle.BundleError, match="unreadable"):
        bundle.load_bundle(b_dir)
    with pytest.raises(bundle.BundleError, match="not a paretobert bundle"):
        bundle.load_bundle(tmp_path)


def test_pick_export_predict_from_the_command_line(sweep, tmp_path, capsys, monkeypatch):
    out, cache, _, recs = sweep
    monkeypatch.setenv("PARETOBERT_CACHE", str(cache))
    assert cli.main(["pick", str(out), "--json"]) == 0
    chosen = json.loads(capsys.readouterr().out)["pick"]["variant_id"]
    assert chosen in {r["variant_id"] for r in recs}
    assert cli.main(["pick", str(out), "--max-p50-ms", "0.000001"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: nothing fits latency_p50_ms <= 1e-06 ms: the closest is ") and err.count("\n") == 1
    assert cli.main(["export", str(out), "--pick", str(tmp_path / "b")]) == 0
    assert f"exported {chosen}" in capsys.readouterr().out
    texts = tmp_path / "texts.txt"
    texts.write_text("match goal team coach\nsoftware chip phone\n")
    assert cli.main(["predict", str(tmp_path / "b"), "--file", str(texts), "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["text"] for x in lines] == ["match goal team coach", "software chip phone"]
    assert all(x["label"] in ("money", "sport", "tech") and 0 < x["probability"] <= 1 for x in lines)
    assert cli.main(["export", str(out), "bad-id", str(tmp_path / "c")]) == 2
    assert "no variant 'bad-id'" in capsys.readouterr().err
    assert cli.main(["predict", str(tmp_path / "b")]) == 2
    assert "no texts" in capsys.readouterr().err


@pytest.mark.parametrize("runtime", ["openvino"])
def test_an_openvino_bundle_predicts_what_the_sweep_evaluated(runtime, tmp_path, variant_of):
    pytest.importorskip("openvino")
    cache = tmp_path / "cache"
    v = variant_of(model=TWO, runtime=RuntimeConfig(name=runtime))
    rec = pipeline.run_variant(v, out_dir=tmp_path / "sweep" / v.variant_id, cache_dir=cache, progress=False)
    assert rec["status"] == "ok", rec.get("traceback")
    b = bundle.load_bundle(bundle.export_bundle(tmp_path / "sweep", rec["variant_id"], tmp_path / "b", cache_dir=cache))
    split = measure.split_of(v, cache, False)
    evaluated = read_json(cache / "eval" / rec["eval_key"] / "meta.json")["predictions"]
    assert [split.label_names.index(x) for x in b.predict(split.test_texts).labels] == evaluated
    assert b.info["runtime"] == "openvino" and any(f.endswith(".bin") for f in b.info["files"])


def test_the_bundle_readme_names_its_figures(sweep, tmp_path):
    out, cache, _, recs = sweep
    b_dir = bundle.export_bundle(out, recs[0]["variant_id"], tmp_path / "b", cache_dir=cache)
    text = (b_dir / "README.md").read_text()
    assert recs[0]["variant_id"] in text and "p50" in text and "ms" in text and f"{recs[0]['accuracy']:.4f}" in text
    assert Path(b_dir).stat().st_mode & 0o055 == 0o055  # readable by others, not mkdtemp's 0700
