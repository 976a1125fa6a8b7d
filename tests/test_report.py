from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from paretobert.report import latest_sweep, main, results_table, write_report
from paretobert.store import atomic_write_json


def _rec(vid, status="ok", acc=0.9, p50=10.0, quant=False, **kw):
    rec = {"variant_id": vid, "status": status, "model": "mini", "quant": quant, "seq_len": 128,
           "weights_source": "scratch", "environment": {"machine_id": "m1"}, "train": {"seconds": 3.5}}
    if status == "ok":
        rec.update(accuracy=acc, macro_f1=acc - 0.01, latency_p50_ms=p50, latency_p99_ms=p50 * 2, model_mb=4.0)
    else:
        rec.update(error="RuntimeError: boom")
    rec.update(kw)
    return rec


@pytest.fixture()
def sweep(tmp_path):
    for r in (_rec("fast", acc=0.8, p50=5.0, quant=True), _rec("slow", acc=0.9, p50=10.0),
              _rec("worse", acc=0.7, p50=12.0), _rec("broken", status="failed")):
        atomic_write_json(tmp_path / "s" / r["variant_id"] / "result.json", r)
    return tmp_path / "s"


def test_results_table_numeric_columns_and_labels(sweep):
    from paretobert.store import load_results

    df = results_table(load_results(sweep))
    assert df["variant_id"].tolist() == ["broken", "fast", "slow", "worse"]
    assert df["accuracy"].dtype == float and pd.isna(df.loc[0, "accuracy"])
    assert df.loc[1, "label"] == "mini[scratch] int8 s128" and df.loc[1, "train_seconds"] == 3.5
    assert pd.isna(df.loc[1, "total_p50_ms"])  # no tokenization time measured: no total
    both = results_table([_rec("t", p50=5.0, tokenize_p50_ms=1.5,
                               variant={"model": {"retokenize": True, "tokenizer": "bpe"}})])
    assert both.loc[0, "total_p50_ms"] == 6.5 and both.loc[0, "label"] == "mini+vocab[scratch] fp32 s128"
    compressed = results_table([
        _rec("d", threads=2, variant={"drop": {"strategy": "top", "keep": 3}, "exit": {"threshold": 0.05}}),
        _rec("k", threads=1, quant=True, variant={"distill": {"teacher": "mini", "layers": [1, 3, 5]}}),
    ])
    # a record from before exit.pooling existed had [CLS] off-ramps: its label says so
    assert compressed["label"].tolist() == ["mini[scratch] top3 fp32 s128 exit0.05cls t2",
                                            "mini[scratch] kd135 int8 s128"]


def test_write_report_writes_four_files(sweep):
    out = write_report(sweep)
    assert {p.name for p in out.values()} == {"results.csv", "frontier.csv", "frontier.png", "frontier.html"}
    res, front = pd.read_csv(out["results"]), pd.read_csv(out["frontier"])
    assert len(res) == 4 and set(res["status"]) == {"ok", "failed"}  # failures recorded, not dropped
    assert front["variant_id"].tolist() == ["fast", "slow"] and list(front.columns) == [*res.columns, "frontier_status"]
    assert front["frontier_status"].tolist() == ["frontier", "frontier"]  # no intervals: the plain Pareto rule
    assert out["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_configurable_objectives(sweep):
    out = write_report(sweep, objectives=[("accuracy", "max"), ("model_mb", "min")])
    assert pd.read_csv(out["frontier"])["variant_id"].tolist() == ["slow"]


def test_cli_errors_and_latest(tmp_path, sweep, monkeypatch, capsys):
    assert main([str(tmp_path / "empty")]) == 2 and "no result.json" in capsys.readouterr().err
    assert main([str(sweep), "--objectives", "accuracy:up"]) == 2
    assert main([str(sweep), "--objectives", "nope:max"]) == 2
    assert main([str(sweep)]) == 0 and "2 variant(s) on the frontier" in capsys.readouterr().out
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError):
        latest_sweep()
    root = tmp_path / "multirun"
    for name, t in (("old", 100), ("new", 200)):
        atomic_write_json(root / name / "v" / "result.json", _rec("v"))
        os.utime(root / name, (t, t))
    assert latest_sweep().name == "new"


def test_report_per_thread_count(tmp_path):
    for r in (_rec("t1-fast", acc=0.8, p50=5.0, threads=1), _rec("t1-slow", acc=0.7, p50=9.0, threads=1),
              _rec("t2-fast", acc=0.8, p50=3.0, threads=2)):
        atomic_write_json(tmp_path / "g" / r["variant_id"] / "result.json", r)
    out = write_report(tmp_path / "g", group_by="threads")
    front = pd.read_csv(out["frontier"])
    assert front["variant_id"].tolist() == ["t1-fast", "t2-fast"] and out["plot"].stat().st_size > 0
    assert main([str(tmp_path / "g"), "--group-by", "threads"]) == 0


def test_markdown_table(sweep, capsys):
    assert main([str(sweep), "--markdown"]) == 0
    md = capsys.readouterr().out.split("| variant |", 1)[1]
    rows = [line for line in md.splitlines() if line.startswith("| mini") or line.startswith("| broken")]
    assert rows[0].startswith("| mini[scratch] fp32 s128 | 0.7000") and rows[-1].startswith("| broken | failed")
    assert sum(line.endswith("| yes |") for line in rows) == 2  # fast and slow are on the frontier


def test_report_marks_indistinguishable_points_and_draws_intervals(tmp_path):
    # b is a little slower and less accurate than a, within the intervals: on the frontier, marked
    a = _rec("a", acc=0.90, p50=10.0, accuracy_ci_lo=0.88, accuracy_ci_hi=0.92, latency_p50_ms_ci_lo=9.5,
             latency_p50_ms_ci_hi=10.5)
    b = _rec("b", acc=0.895, p50=10.2, accuracy_ci_lo=0.875, accuracy_ci_hi=0.915, latency_p50_ms_ci_lo=9.8,
             latency_p50_ms_ci_hi=10.6)
    c = _rec("c", acc=0.80, p50=30.0, accuracy_ci_lo=0.78, accuracy_ci_hi=0.82, latency_p50_ms_ci_lo=29.0,
             latency_p50_ms_ci_hi=31.0)
    for r in (a, b, c):
        atomic_write_json(tmp_path / "n" / r["variant_id"] / "result.json", r)
    out = write_report(tmp_path / "n")
    front = pd.read_csv(out["frontier"])
    assert dict(zip(front["variant_id"], front["frontier_status"], strict=True)) == {"a": "frontier",
                                                                                      "b": "indistinguishable"}
    assert out["plot"].stat().st_size > 0


def test_intervals_filled_in_for_older_records():
    old = _rec("old", acc=0.9, p50=10.0, n_test=100, latency={"raw": [9.0, 10.0, 11.0, 10.0, 10.5]})
    row = results_table([old]).iloc[0]
    assert row["accuracy_ci_lo"] == pytest.approx(0.8256, abs=1e-3) and row["accuracy_ci_hi"] == pytest.approx(0.9448, abs=1e-3)
    assert 9.0 <= row["latency_p50_ms_ci_lo"] <= 10.0 <= row["latency_p50_ms_ci_hi"] <= 11.0


def test_report_without_a_model(tmp_path):
    for r in (_rec("bert", acc=0.9, p50=10.0), _rec("tfidf", acc=0.95, p50=1.0, model="tfidf")):
        atomic_write_json(tmp_path / "x" / r["variant_id"] / "result.json", r)
    assert main([str(tmp_path / "x"), "--exclude-model", "tfidf", "--suffix", "transformers"]) == 0
    front = pd.read_csv(tmp_path / "x" / "frontier-transformers.csv")
    assert front["variant_id"].tolist() == ["bert"] and (tmp_path / "x" / "frontier-transformers.png").exists()
    assert pd.read_csv(write_report(tmp_path / "x")["frontier"])["variant_id"].tolist() == ["tfidf"]


def test_int8_collapse_against_its_fp32_twin_is_flagged(tmp_path, caplog):
    v = {"model": {"name": "mini"}, "seq_len": 128, "drop": {"strategy": "none"}}
    recs = [
        _rec("fp", acc=0.90, p50=10.0, variant={**v, "quant": False, "runtime": {"threads": 1}}),
        _rec("q-ok", acc=0.89, p50=6.0, quant=True, variant={**v, "quant": True, "runtime": {"threads": 1}}),
        _rec("q-bad", acc=0.60, p50=5.5, quant=True, variant={**v, "quant": True, "runtime": {"threads": 2}}),
        _rec("q-orphan", acc=0.30, p50=5.0, quant=True, variant={**v, "seq_len": 64, "quant": True}),
    ]
    for r in recs:
        atomic_write_json(tmp_path / "s" / r["variant_id"] / "result.json", r)
    with caplog.at_level("WARNING"):
        out = write_report(tmp_path / "s")
    df = pd.read_csv(out["results"]).set_index("variant_id")
    assert df.loc["q-ok", "int8_accuracy_drop"] == pytest.approx(0.01) and df.loc["q-ok", "int8_collapsed"] == False  # noqa: E712
    assert df.loc["q-bad", "int8_accuracy_drop"] == pytest.approx(0.30) and df.loc["q-bad", "int8_collapsed"] == True  # noqa: E712
    assert pd.isna(df.loc["q-orphan", "int8_accuracy_drop"]) and pd.isna(df.loc["fp", "int8_collapsed"])
    assert "q-bad: int8 accuracy collapsed" in caplog.text and "q-ok" not in caplog.text
    assert '"int8_collapsed": true' in out["html"].read_text()


def test_training_curves_in_the_record_columns_the_png_and_the_html(tmp_path):
    import json

    curve = [{"step": 10, "epoch": 1.0, "train_loss": 1.2, "val_accuracy": 0.6, "val_loss": 1.0},
             {"step": 20, "epoch": 2.0, "train_loss": 0.8, "val_accuracy": 0.7, "val_loss": 0.8}]
    train = {"seconds": 9.0, "lr": 1e-4, "epochs": 2.0, "best_epoch": 2.0, "val_accuracy": 0.7,
             "stopped": "budget", "curve": curve, "warning": "underfit: validation still improving"}
    for r in (_rec("curved", train=train), _rec("old", acc=0.8, p50=5.0, variant={"train": {"epochs": 2.0}})):
        atomic_write_json(tmp_path / "s" / r["variant_id"] / "result.json", r)
    out = write_report(tmp_path / "s")
    assert out["training"].name == "training.png" and out["training"].read_bytes()[:4] == b"\x89PNG"
    res = pd.read_csv(out["results"]).set_index("variant_id")
    assert res.loc["curved", "train_lr"] == 1e-4 and res.loc["curved", "train_warning"].startswith("underfit")
    assert res.loc["curved", "train_stopped"] == "budget" and res.loc["curved", "train_val_accuracy"] == 0.7
    assert res.loc["old", "train_epochs"] == 2.0 and pd.isna(res.loc["old", "train_best_epoch"])  # the whole budget
    page = out["html"].read_text()
    data = json.loads(page.split("const DATA = ", 1)[1].split(";\n", 1)[0])
    assert [p["val_accuracy"] for p in data["curves"]["curved"]] == [0.6, 0.7] and "old" not in data["curves"]
    fig = json.loads(page.split("const FIG = ", 1)[1].split(";\n", 1)[0])
    hover = {c: t for tr in fig["data"] if tr.get("legendgroup") == "model"
             for c, t in zip(tr["customdata"], tr["text"], strict=True)}
    assert "train_warning: underfit" in hover[[r["variant_id"] for r in data["rows"]].index("curved")]


def _crowded(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lat = np.exp(rng.uniform(np.log(1.5), np.log(60), n))
    acc = np.clip(0.9 + 0.03 * np.log(lat) / np.log(60) + rng.normal(0, 0.01, n), 0, 1)
    return pd.DataFrame({"variant_id": [f"v{i:03d}" for i in range(n)], "status": "ok",
                         "label": [f"model-{i % 7}[pip] int8 s{64 * (1 + i % 2)} exit0.{i % 5}" for i in range(n)],
                         "accuracy": acc, "accuracy_ci_lo": acc - 0.01, "accuracy_ci_hi": acc + 0.01,
                         "latency_p50_ms": lat, "latency_p50_ms_ci_lo": lat * 0.98, "latency_p50_ms_ci_hi": lat * 1.02})


def test_a_crowded_png_is_readable():
    import matplotlib.pyplot as plt

    from paretobert.frontier import noise_aware_frontier
    from paretobert.plot import frontier_figure

    df = _crowded()
    front = noise_aware_frontier(df)
    fig = frontier_figure(df, front)
    ax = fig.axes[0]
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    labels = [t for t in ax.texts if t.get_gid() == "point-label"]
    boxes = [t.get_window_extent(r) for t in labels]
    assert len(labels) >= 16
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j]), (labels[i].get_text(), labels[j].get_text())
        assert not boxes[i].overlaps(ax.get_legend().get_window_extent(r)), labels[i].get_text()
    # no label covers a point other than its own (read beside it, it would name the wrong one)
    from paretobert.plot import MARKER_PT

    half = MARKER_PT * fig.dpi / 72
    px = ax.transData.transform(np.column_stack([df["latency_p50_ms"], df["accuracy"]]))
    for t, box in zip(labels, boxes, strict=True):
        own = ax.transData.transform([t.xy])[0]
        for x, y in px:
            if abs(x - own[0]) < 1e-6 and abs(y - own[1]) < 1e-6:
                continue
            assert not (box.x0 < x + half and box.x1 > x - half and box.y0 < y + half and box.y1 > y - half), \
                (t.get_text(), x, y)
    named = {t.get_text() for t in labels if not t.get_text().isdigit()}
    table = "\n".join(t.get_text() for t in fig.texts)
    assert all(name in named or name in table for name in df["label"])  # every point is named somewhere
    assert ax.get_xscale() == "log"  # 1.5..60 ms
    ticks = [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels() if t.get_text()]
    assert ticks and all(len(t.replace("\u2212", "-")) <= 5 for t in ticks), ticks
    # the step line runs through frontier points only, never an indistinguishable one
    step = [ln for ln in ax.get_lines() if ln.get_drawstyle().startswith("steps")]
    solid = set(front.loc[front["frontier_status"] == "frontier", "latency_p50_ms"].round(9))
    assert step and set(np.round(step[0].get_xdata(), 9)) == solid
    plt.close(fig)


def test_seeds_table_groups_the_runs_that_differ_only_by_seed(tmp_path, capsys):
    """Three seeds of mini fp32, two of mini int8 (one failed), one of mini at s64: seeds.csv
    has one row per configuration with two ok seeds, with their mean and spread; the single-seed
    configuration and the failure are not in it; labels name a seed other than 0."""
    from paretobert.record import seeds_table

    recs = [_rec("f0", acc=0.90, p50=10.0, seed=0), _rec("f1", acc=0.93, p50=11.0, seed=1),
            _rec("f2", acc=0.96, p50=12.0, seed=2),
            _rec("q0", acc=0.89, p50=5.0, quant=True, seed=0), _rec("q1", acc=0.91, p50=6.0, quant=True, seed=1),
            _rec("q2", status="failed", quant=True, seed=2), _rec("s", acc=0.5, p50=3.0, seq_len=64, seed=1)]
    df = results_table(recs)
    assert df.set_index("variant_id").loc["f1", "label"] == "mini[scratch] fp32 s128 seed1"
    assert df.set_index("variant_id").loc["f0", "label"] == "mini[scratch] fp32 s128"
    groups = df.set_index("variant_id")["seed_group"]
    assert groups["f0"] == groups["f1"] == groups["f2"] != groups["q0"] == groups["q1"] == groups["q2"]
    assert groups["s"] not in set(groups.drop("s"))
    seeds = seeds_table(df)
    assert seeds["label"].tolist() == ["mini[scratch] fp32 s128", "mini[scratch] int8 s128"]  # best mean first
    fp32, int8 = seeds.iloc[0], seeds.iloc[1]
    assert (fp32["n_seeds"], fp32["seeds"], fp32["variant_ids"]) == (3, "0,1,2", "f0;f1;f2")
    assert fp32["accuracy_mean"] == pytest.approx(0.93) and fp32["accuracy_spread"] == pytest.approx(0.06)
    assert fp32["accuracy_sd"] == pytest.approx(0.03) and fp32["accuracy_values"] == "0.9000 / 0.9300 / 0.9600"
    assert (fp32["latency_p50_ms_min"], fp32["latency_p50_ms_max"]) == (10.0, 12.0)
    assert (int8["n_seeds"], int8["seeds"]) == (2, "0,1")  # the failed seed is left out
    assert int8["accuracy_spread"] == pytest.approx(0.02)
    assert seeds_table(results_table(recs[:1] + recs[3:4])).empty  # one seed each: nothing to summarise

    for r in recs:
        atomic_write_json(tmp_path / "s" / r["variant_id"] / "result.json", r)
    assert main([str(tmp_path / "s"), "--markdown"]) == 0
    out = capsys.readouterr().out
    written = pd.read_csv(tmp_path / "s" / "seeds.csv")
    assert written["seeds"].tolist() == ["0,1,2", "0,1"]
    assert "| mini[scratch] fp32 s128 | 0,1,2 | 0.9000 / 0.9300 / 0.9600 | 0.9300 | 0.9000..0.9600 | 6.00 | 11.00 |" in out


def test_no_seeds_file_without_repeated_seeds(sweep):
    assert "seeds" not in write_report(sweep) and not (sweep / "seeds.csv").exists()
