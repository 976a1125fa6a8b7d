"""A self-contained HTML report of a sweep: an interactive frontier plot (hover shows a
variant's settings and intervals) and a sortable table. One file, no server, no network:
the data is embedded as JSON and drawn as SVG by a few lines of plain JavaScript.

Opening the file with ``#selftest`` appended makes the page hover its first frontier point
and write what it drew into ``<pre id="selftest">`` (used by the headless-browser test).
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from paretobert import record
from paretobert.store import atomic_write_text

__all__ = ["HOVER_FIELDS", "TABLE_COLUMNS", "write_html"]

# what the tooltip and the table show, in order (missing or empty fields are left out)
HOVER_FIELDS = ["variant_id", "frontier_status", *[f for f in record.HOVER_FIELDS if f != "variant_id"]]
TABLE_COLUMNS = ["label", "frontier_status", *[f for f in record.TABLE_COLUMNS if f != "label"]]


def _clean(v: Any) -> Any:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if hasattr(v, "item"):  # numpy scalars
        return _clean(v.item())
    return v


def _rows(results: pd.DataFrame, front: pd.DataFrame) -> list[dict[str, Any]]:
    status = dict(zip(front["variant_id"], front["frontier_status"], strict=True))
    rows = []
    for _, r in results.iterrows():
        row = {k: _clean(r.get(k)) for k in {*HOVER_FIELDS, *TABLE_COLUMNS} if k in r.index}
        row["label"] = _clean(r.get("label", r.get("variant_id")))
        row["frontier_status"] = status.get(r["variant_id"], "dominated" if r.get("status") == "ok" else "")
        rows.append(row)
    return rows


def write_html(results: pd.DataFrame, front: pd.DataFrame, path: Path, *, x: str = "latency_p50_ms",
               y: str = "accuracy", title: str = "paretobert frontier",
               curves: dict[str, list[dict[str, Any]]] | None = None) -> Path:
    """Write the report to ``path``; ``front`` is the frontier table (``frontier_status``
    frontier | indistinguishable), ``results`` every variant, failures included; ``curves``
    the training curve of each variant id (drawn when its point is clicked)."""
    slim = {vid: [{k: _clean(p.get(k)) for k in ("epoch", "val_accuracy", "train_loss")} for p in c]
            for vid, c in (curves or {}).items() if c}
    payload = {"rows": _rows(results, front), "x": x, "y": y, "hover": HOVER_FIELDS, "columns": TABLE_COLUMNS,
               "curves": slim}
    data = json.dumps(payload, default=str).replace("</", "<\\/")
    page = _TEMPLATE.replace("__TITLE__", html.escape(title)).replace("__DATA__", data)
    atomic_write_text(Path(path), page)
    return Path(path)


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
body { font: 13px system-ui, sans-serif; margin: 16px; color: #222; }
h1 { font-size: 16px; }
#plot { border: 1px solid #ddd; }
.pt { cursor: pointer; }
.pt:hover { stroke: #000; stroke-width: 2; }
#tip { position: absolute; display: none; background: #fff; border: 1px solid #888; padding: 6px 8px;
       font: 12px monospace; white-space: pre; pointer-events: none; box-shadow: 2px 2px 6px #0003; }
table { border-collapse: collapse; margin-top: 12px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; }
th { background: #f3f3f3; cursor: pointer; user-select: none; }
td:first-child, th:first-child { text-align: left; }
tr.frontier td { background: #fde8e8; } tr.indistinguishable td { background: #fff6e0; }
tr.failed td { color: #b00; }
.legend span { margin-right: 14px; }
</style></head><body>
<h1>__TITLE__</h1>
<div class="legend"><span style="color:#d62728">&#9679; frontier</span>
<span style="color:#d62728">&#9675; indistinguishable (intervals overlap)</span>
<span style="color:#888">&#9679; dominated</span> <span>&#10005; int8 collapsed vs its fp32 twin</span> &mdash; bars: 95% intervals; hover a point for its settings;
click a point for its training curve; click a column header to sort</div>
<svg id="plot" width="900" height="520"></svg>
<div id="curvebox"><div id="curvetitle"></div><svg id="curve" width="900" height="180"></svg></div>
<div id="tip"></div>
<table id="table"><thead></thead><tbody></tbody></table>
<pre id="selftest"></pre>
<script>
const DATA = __DATA__;
const NS = "http://www.w3.org/2000/svg";
const W = 900, H = 520, L = 70, R = 20, T = 20, B = 50;
function el(name, attrs, parent) {
  const e = document.createElementNS(NS, name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (parent) parent.appendChild(e);
  return e;
}
function fmt(v) {
  if (v === null || v === undefined || v === "") return "";
  if (typeof v === "number") return Math.abs(v) >= 100 ? v.toFixed(1) : (Number.isInteger(v) ? String(v) : v.toFixed(4));
  return String(v);
}
function tipText(r) {
  return DATA.hover.filter(k => r[k] !== null && r[k] !== undefined && r[k] !== "")
    .map(k => k.padEnd(20) + " " + fmt(r[k])).join("\\n");
}
function draw() {
  const svg = document.getElementById("plot"), tip = document.getElementById("tip");
  const ok = DATA.rows.filter(r => r.status === "ok" && r[DATA.x] !== null && r[DATA.y] !== null);
  if (!ok.length) { el("text", {x: 20, y: 40}, svg).textContent = "no ok variant to plot"; return 0; }
  const xs = ok.flatMap(r => [r[DATA.x], r[DATA.x + "_ci_lo"], r[DATA.x + "_ci_hi"]]).filter(v => v > 0);
  const ys = ok.flatMap(r => [r[DATA.y], r[DATA.y + "_ci_lo"], r[DATA.y + "_ci_hi"]]).filter(v => v !== null);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  const logx = x0 > 0 && x1 / x0 > 20;
  const fx = v => logx ? Math.log10(v) : v;
  const pad = (fx(x1) - fx(x0)) * 0.05 || 1, ypad = (y1 - y0) * 0.05 || 0.01;
  const sx = v => L + (fx(v) - fx(x0) + pad) / (fx(x1) - fx(x0) + 2 * pad) * (W - L - R);
  const sy = v => H - B - (v - y0 + ypad) / (y1 - y0 + 2 * ypad) * (H - T - B);
  el("line", {x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#444"}, svg);
  el("line", {x1: L, y1: T, x2: L, y2: H - B, stroke: "#444"}, svg);
  for (let i = 0; i <= 5; i++) {
    const xv = logx ? Math.pow(10, fx(x0) + (fx(x1) - fx(x0)) * i / 5) : x0 + (x1 - x0) * i / 5;
    const yv = y0 + (y1 - y0) * i / 5;
    el("text", {x: sx(xv), y: H - B + 16, "text-anchor": "middle", "font-size": 11}, svg).textContent = fmt(xv);
    el("text", {x: L - 6, y: sy(yv) + 4, "text-anchor": "end", "font-size": 11}, svg).textContent = fmt(yv);
  }
  el("text", {x: (W + L) / 2, y: H - 12, "text-anchor": "middle"}, svg).textContent = DATA.x + (logx ? " (log)" : "");
  el("text", {x: 16, y: (H - B + T) / 2, "text-anchor": "middle", transform: `rotate(-90 16 ${(H - B + T) / 2})`}, svg)
    .textContent = DATA.y;
  const front = ok.filter(r => r.frontier_status === "frontier" || r.frontier_status === "indistinguishable")
    .sort((a, b) => a[DATA.x] - b[DATA.x]);
  if (front.length) {
    let d = "";
    front.forEach((r, i) => {
      d += (i ? ` H ${sx(r[DATA.x])} V ${sy(r[DATA.y])}` : `M ${sx(r[DATA.x])} ${sy(r[DATA.y])}`);
    });
    el("path", {d: d, fill: "none", stroke: "#d62728", "stroke-width": 1.5}, svg);
  }
  let n = 0;
  for (const r of ok) {
    const cx = sx(r[DATA.x]), cy = sy(r[DATA.y]);
    const xl = r[DATA.x + "_ci_lo"], xh = r[DATA.x + "_ci_hi"], yl = r[DATA.y + "_ci_lo"], yh = r[DATA.y + "_ci_hi"];
    if (xl > 0 && xh > 0) el("line", {x1: sx(xl), x2: sx(xh), y1: cy, y2: cy, stroke: "#999"}, svg);
    if (yl !== null && yh !== null && yl !== undefined) el("line", {x1: cx, x2: cx, y1: sy(yl), y2: sy(yh), stroke: "#999"}, svg);
    const on = r.frontier_status === "frontier", shaky = r.frontier_status === "indistinguishable";
    const c = el("circle", {cx: cx, cy: cy, r: on || shaky ? 6 : 4.5, class: "pt " + r.frontier_status,
      fill: on ? "#d62728" : (shaky ? "#fff" : "#888"), stroke: on || shaky ? "#d62728" : "#666",
      "data-variant": r.variant_id}, svg);
    c.addEventListener("mouseenter", ev => {
      tip.textContent = tipText(r);
      tip.style.display = "block";
      tip.style.left = (ev.pageX + 12) + "px";
      tip.style.top = (ev.pageY + 12) + "px";
    });
    c.addEventListener("mouseleave", () => { tip.style.display = "none"; });
    c.addEventListener("click", () => curve(r));
    if (r.int8_collapsed === true) {
      el("path", {d: `M ${cx - 7} ${cy - 7} L ${cx + 7} ${cy + 7} M ${cx - 7} ${cy + 7} L ${cx + 7} ${cy - 7}`,
        stroke: "#000", "stroke-width": 2, class: "collapsed"}, svg);
    }
    if (on || shaky) el("text", {x: cx + 7, y: cy - 7, "font-size": 10}, svg).textContent = r.label;
    n++;
  }
  return n;
}
function curve(r) {
  const svg = document.getElementById("curve"), title = document.getElementById("curvetitle");
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const c = (DATA.curves || {})[r.variant_id] || [];
  if (!c.length) { title.textContent = r.label + ": no training curve (no validation split, or a cached record from before)"; return 0; }
  title.textContent = r.label + ": validation accuracy (red) and train loss (grey, own scale) per evaluation; x: epoch"
    + (r.train_warning ? " \u2014 " + r.train_warning : "");
  const w = 900, h = 180, l = 70, rr = 20, t = 10, b = 30;
  const e1 = Math.max(...c.map(p => p.epoch)), acc = c.map(p => p.val_accuracy), loss = c.map(p => p.train_loss);
  const a0 = Math.min(...acc), a1 = Math.max(...acc), l0 = Math.min(...loss), l1 = Math.max(...loss);
  const sx = v => l + v / (e1 || 1) * (w - l - rr);
  const sa = v => h - b - (v - a0) / ((a1 - a0) || 1) * (h - t - b), sl = v => h - b - (v - l0) / ((l1 - l0) || 1) * (h - t - b);
  el("line", {x1: l, y1: h - b, x2: w - rr, y2: h - b, stroke: "#444"}, svg);
  el("text", {x: l - 6, y: sa(a1) + 4, "text-anchor": "end", "font-size": 11}, svg).textContent = fmt(a1);
  el("text", {x: l - 6, y: sa(a0) + 4, "text-anchor": "end", "font-size": 11}, svg).textContent = fmt(a0);
  el("text", {x: w - rr, y: h - 8, "text-anchor": "end", "font-size": 11}, svg).textContent = "epoch " + fmt(e1);
  el("polyline", {points: c.map(p => sx(p.epoch) + "," + sl(p.train_loss)).join(" "), fill: "none", stroke: "#999"}, svg);
  el("polyline", {points: c.map(p => sx(p.epoch) + "," + sa(p.val_accuracy)).join(" "), fill: "none", stroke: "#d62728",
    "stroke-width": 2, class: "valcurve"}, svg);
  for (const p of c) el("circle", {cx: sx(p.epoch), cy: sa(p.val_accuracy), r: 3, fill: "#d62728"}, svg);
  return c.length;
}
let sortKey = "accuracy", sortDesc = true;
function table() {
  const head = document.querySelector("#table thead"), body = document.querySelector("#table tbody");
  head.innerHTML = "";
  const tr = document.createElement("tr");
  for (const k of DATA.columns) {
    const th = document.createElement("th");
    th.textContent = k + (k === sortKey ? (sortDesc ? " \\u25bc" : " \\u25b2") : "");
    th.addEventListener("click", () => { sortDesc = k === sortKey ? !sortDesc : true; sortKey = k; table(); });
    tr.appendChild(th);
  }
  head.appendChild(tr);
  const rows = DATA.rows.slice().sort((a, b) => {
    const u = a[sortKey], v = b[sortKey];
    if (u === v) return 0;
    if (u === null || u === undefined) return 1;
    if (v === null || v === undefined) return -1;
    return (u < v ? -1 : 1) * (sortDesc ? -1 : 1);
  });
  body.innerHTML = "";
  for (const r of rows) {
    const row = document.createElement("tr");
    row.className = r.status === "ok" ? r.frontier_status : "failed";
    for (const k of DATA.columns) {
      const td = document.createElement("td");
      td.textContent = fmt(r[k]);
      row.appendChild(td);
    }
    body.appendChild(row);
  }
}
const drawn = draw();
table();
if (location.hash === "#selftest") {
  const pt = document.querySelector("circle.frontier, circle.indistinguishable") || document.querySelector("circle.pt");
  if (pt) pt.dispatchEvent(new MouseEvent("mouseenter", {bubbles: true, clientX: 10, clientY: 10}));
  if (pt) pt.dispatchEvent(new MouseEvent("click", {bubbles: true}));
  document.getElementById("selftest").textContent = JSON.stringify({
    points: drawn, rows: document.querySelectorAll("#table tbody tr").length,
    hovered: pt ? pt.getAttribute("data-variant") : null,
    tooltip: document.getElementById("tip").textContent,
    tooltip_visible: document.getElementById("tip").style.display === "block",
    curve_points: document.querySelectorAll("#curve circle").length,
    curve_title: document.getElementById("curvetitle").textContent});
}
</script></body></html>
"""
