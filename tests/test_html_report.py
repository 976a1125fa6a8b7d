"""The HTML report: embedded data (always) and a real headless browser (where chromium is)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from paretobert.report import write_report
from paretobert.store import atomic_write_json


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
    recs = [_rec("fast", 0.80, 5.0), _rec("close", 0.81, 5.1), _rec("slow", 0.95, 20.0),
            _rec("worse", 0.70, 30.0), _rec("broken", None, None, status="failed")]
    for r in recs:
        atomic_write_json(tmp_path / "s" / r["variant_id"] / "result.json", r)
    return write_report(tmp_path / "s")["html"]


def _data(page: str) -> dict:
    return json.loads(re.search(r"const DATA = (.*?);\n", page).group(1).replace("<\\/", "</"))


def test_html_embeds_every_variant_with_its_frontier_status(report):
    page = report.read_text()
    assert "<script src" not in page and "http" not in page.replace("http://www.w3.org/2000/svg", "")  # offline
    assert "</script><b>" not in page  # an error text cannot break out of the script
    rows = {r["variant_id"]: r for r in _data(page)["rows"]}
    assert set(rows) == {"fast", "close", "slow", "worse", "broken"}
    assert rows["slow"]["frontier_status"] == "frontier" and rows["worse"]["frontier_status"] == "dominated"
    assert {rows["fast"]["frontier_status"], rows["close"]["frontier_status"]} <= {"frontier", "indistinguishable"}
    assert rows["broken"]["status"] == "failed" and "boom" in rows["broken"]["error"]
    assert rows["fast"]["accuracy_ci_lo"] == pytest.approx(0.78)


CHROMIUM = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


def test_html_report_in_headless_chromium(report, tmp_path):
    if CHROMIUM is None:  # CI installs it (.ci/run): there, a missing browser is a failure, not a skip
        if os.environ.get("CI"):
            pytest.fail("no chromium under CI=true: .ci/run installs it (apt-get install chromium)")
        pytest.skip("no chromium here (Debian: apt-get install chromium)")
    out = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=3000", "--dump-dom", report.resolve().as_uri() + "#selftest"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    result = json.loads(re.search(r'<pre id="selftest">(.*?)</pre>', out, re.S).group(1).replace("&quot;", '"'))
    assert result["points"] == 4 and result["rows"] == 5  # 4 ok points drawn, every variant in the table
    assert out.count("<circle") == 4
    assert result["tooltip_visible"] and result["hovered"] in {"fast", "close", "slow"}
    tip = result["tooltip"]
    assert f"variant_id           {result['hovered']}" in tip and "accuracy_ci_lo" in tip and "seq_len" in tip
