"""The HTML report: embedded data (always) and a real headless browser (where chromium is)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess

import pytest

from paretobert.html_report import frontier_plotly
from paretobert.report import write_report
from paretobert.store import atomic_write_json

CURVE = [{"step": 10, "epoch": 1.0, "train_loss": 1.2, "val_accuracy": 0.6, "val_loss": 1.0},
         {"step": 20, "epoch": 2.0, "train_loss": 0.8, "val_accuracy": 0.7, "val_loss": 0.8}]


def _rec(vid, acc, p50, status="ok", **kw):
    rec = {"variant_id": vid, "status": status, "model": "mini", "quant": False, "seq_len": 64, "threads": 1,
           "weights_source": "scratch", "environment": {"machine_id": "m1"}}
    if status == "ok":
        rec.update(accuracy=acc, macro_f1=acc, latency_p50_ms=p50, latency_p99_ms=p50 * 1.5, model_mb=4.0,
                   accuracy_ci_lo=acc - 0.02, accuracy_ci_hi=acc + 0.02, latency_p50_ms_ci_lo=p50 * 0.95,
                   latency_p50_ms_ci_hi=p50 * 1.05)
    else:
        rec["error"] = "RuntimeError: </script><b>boom</b>"
    rec.update(kw)
    return rec


@pytest.fixture()
def report(tmp_path):
    train = {"curve": CURVE, "warning": "underfit: validation still improving"}
    recs = [_rec("fast", 0.80, 5.0, train=train), _rec("close", 0.81, 5.1, quant=True, precision="int8-dynamic", train=train),
            _rec("slow", 0.95, 80.0, model="base", train=train), _rec("worse", 0.70, 30.0),
            _rec("broken", None, None, status="failed")]
    for r in recs:
        atomic_write_json(tmp_path / "s" / r["variant_id"] / "result.json", r)
    return write_report(tmp_path / "s")["html"]


def _json(page: str, name: str) -> dict:
    return json.loads(re.search(rf"const {name} = (.*?);\n", page).group(1).replace("<\\/", "</"))


def test_html_embeds_every_variant_with_its_frontier_status(report):
    page = report.read_text()
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=", page)  # offline: plotly.js and the data are inline
    assert "Plotly.newPlot" in page and len(page) > 1_000_000  # plotly.js itself, not a reference to it
    assert "</script><b>" not in page  # an error text cannot break out of the script
    rows = {r["variant_id"]: r for r in _json(page, "DATA")["rows"]}
    assert set(rows) == {"fast", "close", "slow", "worse", "broken"}
    assert rows["slow"]["frontier_status"] == "frontier" and rows["worse"]["frontier_status"] == "dominated"
    assert {rows["fast"]["frontier_status"], rows["close"]["frontier_status"]} <= {"frontier", "indistinguishable"}
    assert rows["broken"]["status"] == "failed" and "boom" in rows["broken"]["error"]
    assert rows["fast"]["accuracy_ci_lo"] == pytest.approx(0.78)
    assert _json(page, "DATA")["dims"] == {"precision": ["fp32", "int8-dynamic"]}  # the filters: what varies


def _figure_rows(n_models=2, span=16.0):
    rows = []
    for i in range(8):
        lat = 1.0 * span ** (i / 7)
        rows.append({"variant_id": f"v{i}", "label": f"m{i % n_models} s{i}", "status": "ok", "model": f"m{i % n_models}",
                     "precision": "int8-dynamic" if i % 2 else "fp32", "threads": 1 + i % 2,
                     "latency_p50_ms": lat, "latency_p50_ms_ci_lo": lat * 0.9, "latency_p50_ms_ci_hi": lat * 1.1,
                     "accuracy": 0.8 + 0.02 * i - (0.05 if i == 5 else 0), "accuracy_ci_lo": None,
                     "accuracy_ci_hi": None, "frontier_status": "dominated" if i == 5 else "frontier",
                     "int8_collapsed": i == 5})
    rows[3]["frontier_status"] = "indistinguishable"
    rows.append({"variant_id": "f", "label": "f", "status": "failed", "model": "m0"})
    return rows


def test_plotly_figure_traces_legend_and_step_line():
    rows = _figure_rows()
    fig = frontier_plotly(rows, title="t").to_plotly_json()
    models = [t for t in fig["data"] if t.get("legendgroup") == "model"]
    assert [t["name"] for t in models] == ["m0", "m1"]  # one legend entry per model: a click hides it
    assert sorted(c for t in models for c in t["customdata"]) == list(range(8))  # every ok point once; not the failure
    for t in models:  # each point's row index, its symbol from its precision, its interval as an error bar
        for j, c in enumerate(t["customdata"]):
            assert t["x"][j] == rows[c]["latency_p50_ms"] and t["y"][j] == rows[c]["accuracy"]
            assert t["marker"]["symbol"][j] == ("diamond" if rows[c]["precision"] == "int8-dynamic" else "circle")
            assert t["error_x"]["arrayminus"][j] == pytest.approx(rows[c]["latency_p50_ms"] * 0.1)
            assert f"variant_id: {rows[c]['variant_id']}" in t["text"][j] and " ms" in t["text"][j]
        assert "error_y" not in t  # no accuracy intervals in these rows: no bars
    line = [t for t in fig["data"] if t.get("meta") == "line"]
    assert len(line) == 1 and line[0]["line"]["shape"] == "hv"
    on = [i for i, r in enumerate(rows) if r.get("frontier_status") == "frontier"]
    assert list(line[0]["x"]) == sorted(rows[i]["latency_p50_ms"] for i in on)  # frontier points only
    assert list(line[0]["y"]) == sorted(line[0]["y"])  # so it never goes down as latency grows
    assert [t["customdata"] for t in fig["data"] if "collapsed" in t.get("name", "")] == [[5]]
    assert fig["layout"]["xaxis"]["type"] == "log" and fig["layout"]["xaxis"]["title"]["text"] == "latency_p50_ms (ms)"
    assert list(fig["layout"]["xaxis"]["ticktext"]) == ["0.5", "1", "2", "5", "10", "20"]  # round, written out
    buttons = fig["layout"]["updatemenus"][0]["buttons"]
    assert [b["args"][0]["xaxis.type"] for b in buttons] == ["log", "linear"]
    assert "1 failed" in fig["layout"]["title"]["text"]


def test_plotly_figure_linear_axis_under_10x_and_a_line_per_group():
    fig = frontier_plotly(_figure_rows(span=4.0), group_by="threads").to_plotly_json()
    assert fig["layout"]["xaxis"]["type"] == "linear"
    lines = [t for t in fig["data"] if t.get("meta") == "line"]
    assert sorted(t["name"] for t in lines) == ["frontier line (threads=1)", "frontier line (threads=2)"]


def test_plotly_figure_with_nothing_to_plot():
    fig = frontier_plotly([{"variant_id": "f", "status": "failed", "model": "m"}]).to_plotly_json()
    assert not fig["data"] and fig["layout"]["xaxis"]["type"] == "linear"


CHROMIUM = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


def test_html_report_in_headless_chromium(report, tmp_path):
    if CHROMIUM is None:  # CI installs it (.ci/run): there, a missing browser is a failure, not a skip
        if os.environ.get("CI"):
            pytest.fail("no chromium under CI=true: .ci/run installs it (apt-get install chromium)")
        pytest.skip("no chromium here (Debian: apt-get install chromium)")
    out = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=20000", "--dump-dom", report.resolve().as_uri() + "#selftest"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    match = re.search(r'<pre id="selftest">(.+?)</pre>', out, re.S)
    assert match, "the page's self-test wrote nothing (a script error?)"
    result = json.loads(html.unescape(match.group(1)))
    assert result["points"] == 4 and result["rows"] == 5  # 4 ok points drawn, every variant in the table
    assert result["legend"] >= 2 and result["xaxis"] == "log"  # 5 ms .. 80 ms: more than 10x
    assert result["hovered"] in {"fast", "close", "slow"}  # a frontier point, hovered through plotly
    tip = result["tooltip"]
    assert f"variant_id: {result['hovered']}" in tip and "accuracy_ci_lo" in tip and "seq_len: 64 tokens" in tip
    assert result["curve_points"] == 2 and "underfit" in result["curve_title"]  # the clicked point's curve
    assert result["filtered"] == {"dim": "precision", "value": "fp32", "points": 1}  # only the int8 point left
    assert result["unfiltered_points"] == 4
    assert result["xaxis_after_switch"] == "linear"  # the log/linear button
    assert result["legend_clicked"] == "mini" and result["after_legend_click"] == 1  # mini hidden: base's point left
