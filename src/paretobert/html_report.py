"""A self-contained HTML report of a sweep, drawn with plotly: the frontier plot (zoom, pan,
hover with every setting and interval, a legend per model whose entries toggle, a log/linear
switch, filters by precision / runtime / compression arm / seq_len / threads), the training
curve of a clicked point, and a sortable table. One file, no server, no network: plotly.js
and the data are embedded.

The figure is built in Python (:func:`frontier_plotly`, a plotly ``Figure`` that tests can
inspect); the page adds the filters, the curve and the table in a few lines of JavaScript.
Opening the file with ``#selftest`` appended makes the page exercise itself (hover, click,
filter, axis switch, legend toggle) and write what it saw into ``<pre id="selftest">`` (used
by the headless-browser test).
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

__all__ = ["DIMENSIONS", "HOVER_FIELDS", "TABLE_COLUMNS", "frontier_plotly", "write_html"]

# what the tooltip and the table show, in order (missing or empty fields are left out)
HOVER_FIELDS = ["variant_id", "frontier_status", *[f for f in record.HOVER_FIELDS if f != "variant_id"]]
TABLE_COLUMNS = ["label", "frontier_status", *[f for f in record.TABLE_COLUMNS if f != "label"]]
# the axes a reader can filter on (shown when the sweep has more than one value); the model
# is the plot legend (one entry per model, click to hide / show)
DIMENSIONS = ("precision", "runtime", "compression_arm", "seq_len", "threads")
_UNITS = {f.name: f.unit for f in record.FIELDS}
_SYMBOLS = {"fp32": "circle", "int8": "diamond", "bf16": "square", "fp16": "triangle-up"}
_PALETTE = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#ff7f0e",
            "#aec7e8", "#98df8a", "#c5b0d5")
_RED = "#d62728"


def _clean(v: Any) -> Any:
    if hasattr(v, "item"):  # numpy scalars
        v = v.item()
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    return v


def _fmt(v: Any, unit: str = "") -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    text = str(v) if isinstance(v, int) else f"{v:.4g}"
    return f"{text} {unit}" if unit and unit not in ("fraction",) else text


def _arm(compression: Any) -> str:
    """The compression arm of a ``compression`` value: none | drop | kd | exit."""
    return str(compression).split("-", 1)[0] if compression else "none"


def _rows(results: pd.DataFrame, front: pd.DataFrame) -> list[dict[str, Any]]:
    status = dict(zip(front["variant_id"], front["frontier_status"], strict=True))
    keep = {*HOVER_FIELDS, *TABLE_COLUMNS, *DIMENSIONS, "model", "compression", "status", "error"}
    rows = []
    for _, r in results.iterrows():
        row = {k: _clean(r.get(k)) for k in keep if k in r.index}
        row["label"] = _clean(r.get("label", r.get("variant_id")))
        row["frontier_status"] = status.get(r["variant_id"], "dominated" if r.get("status") == "ok" else "")
        row["compression_arm"] = _arm(row.get("compression"))
        rows.append(row)
    return rows


def _symbol(precision: Any) -> str:
    """The marker of a precision: fp32 circle, int8 (int8-dynamic, int8-static, ...) diamond, bf16 square."""
    return _SYMBOLS.get(str(precision).split("-", 1)[0], "star")


def _hover(row: dict[str, Any]) -> str:
    lines = [f"<b>{html.escape(str(row.get('label')))}</b>"]
    for k in HOVER_FIELDS:
        v = row.get(k)
        if v is not None and v != "":
            lines.append(f"{k}: {html.escape(_fmt(v, _UNITS.get(k, '')))}")
    return "<br>".join(lines)


def _plottable(rows: list[dict[str, Any]], x: str, y: str) -> list[int]:
    return [i for i, r in enumerate(rows) if r.get("status") == "ok" and r.get(x) is not None and r.get(y) is not None]


def _errors(rows: list[dict[str, Any]], idx: list[int], col: str) -> dict[str, Any] | None:
    lo = [rows[i].get(f"{col}_ci_lo") for i in idx]
    hi = [rows[i].get(f"{col}_ci_hi") for i in idx]
    if all(v is None for v in lo + hi):
        return None
    return {"type": "data", "symmetric": False, "thickness": 1, "width": 0, "color": "#aaa",
            "array": [max(h - rows[i][col], 0) if h is not None else 0 for i, h in zip(idx, hi, strict=True)],
            "arrayminus": [max(rows[i][col] - v, 0) if v is not None else 0 for i, v in zip(idx, lo, strict=True)]}


def _title(name: str) -> str:
    unit = _UNITS.get(name, "")
    return f"{name} ({unit})" if unit and unit != "fraction" else name


def frontier_plotly(rows: list[dict[str, Any]], *, x: str = "latency_p50_ms", y: str = "accuracy",
                    title: str = "paretobert frontier", group_by: str | None = None):
    """The frontier figure of report rows (:func:`_rows`): one trace per model (colour; its
    legend entry toggles it), the precision as the marker symbol, 95% intervals as error bars,
    rings on ``frontier`` (red) and ``indistinguishable`` (orange) points, a cross on int8
    that collapsed, and the frontier as a step line through its ``frontier`` points (one per
    ``group_by`` value). Every point's ``customdata`` is its row index. The x axis starts
    logarithmic when it spans more than 10x; buttons switch it."""
    import plotly.graph_objects as go

    idx = _plottable(rows, x, y)
    fig = go.Figure()
    models = list(dict.fromkeys(str(rows[i].get("model")) for i in idx))
    for k, model in enumerate(models):
        mine = [i for i in idx if str(rows[i].get("model")) == model]
        fig.add_trace(go.Scatter(
            x=[rows[i][x] for i in mine], y=[rows[i][y] for i in mine], customdata=mine, mode="markers",
            name=model, legendgroup="model", legendgrouptitle_text="model (click: hide / show)" if k == 0 else None,
            marker={"color": _PALETTE[k % len(_PALETTE)], "size": 9, "line": {"width": 0.5, "color": "#333"},
                    "symbol": [_symbol(rows[i].get("precision")) for i in mine]},
            error_x=_errors(rows, mine, x), error_y=_errors(rows, mine, y),
            text=[_hover(rows[i]) for i in mine], hovertemplate="%{text}<extra></extra>", meta="points"))
    rings = (("frontier", _RED, "frontier"), ("indistinguishable", "#ff9f1c", "indistinguishable (intervals overlap)"))
    for status, color, name in rings:
        mine = [i for i in idx if rows[i].get("frontier_status") == status]
        if mine:
            fig.add_trace(go.Scatter(
                x=[rows[i][x] for i in mine], y=[rows[i][y] for i in mine], customdata=mine, mode="markers",
                name=name, legendgroup="status", legendgrouptitle_text="frontier", hoverinfo="skip",
                marker={"symbol": "circle-open", "size": 17, "color": color, "line": {"width": 2.5}}, meta="points"))
    bad = [i for i in idx if rows[i].get("int8_collapsed") is True]
    if bad:
        fig.add_trace(go.Scatter(
            x=[rows[i][x] for i in bad], y=[rows[i][y] for i in bad], customdata=bad, mode="markers",
            name="int8 collapsed (far below its fp32 twin)", legendgroup="status", hoverinfo="skip",
            marker={"symbol": "x-thin-open", "size": 20, "color": "#000", "line": {"width": 2}}, meta="points"))
    groups: dict[Any, list[int]] = {}
    for i in idx:
        if rows[i].get("frontier_status") == "frontier":
            groups.setdefault(rows[i].get(group_by) if group_by else None, []).append(i)
    for g, mine in groups.items():
        mine = sorted(mine, key=lambda i: rows[i][x])
        fig.add_trace(go.Scatter(
            x=[rows[i][x] for i in mine], y=[rows[i][y] for i in mine], mode="lines", line_shape="hv",
            line={"color": _RED, "width": 1.5}, hoverinfo="skip", legendgroup="status",
            name="frontier line" + (f" ({group_by}={g})" if group_by else ""), meta="line"))
    xs = [v for i in idx for v in (rows[i][x], rows[i].get(f"{x}_ci_lo")) if v is not None and v > 0]
    log = bool(xs) and len(xs) == sum(1 for i in idx for v in (rows[i][x], rows[i].get(f"{x}_ci_lo"))
                                      if v is not None) and max(xs) / min(xs) > 10
    n_failed = sum(1 for r in rows if r.get("status") != "ok")
    fig.update_layout(
        title={"text": html.escape(title) + (f"<br><sub>{n_failed} failed variant(s): see the table</sub>"
                                             if n_failed else "")},
        template="plotly_white", height=600, hovermode="closest", dragmode="zoom",
        hoverlabel={"font": {"family": "monospace", "size": 11}, "bgcolor": "#fff"},
        xaxis={"title": {"text": _title(x)}, "type": "log" if log else "linear", **_log_ticks(xs, log)},
        yaxis={"title": {"text": _title(y)}},
        legend={"groupclick": "toggleitem"},
        updatemenus=[{"type": "buttons", "direction": "right", "x": 0, "xanchor": "left", "y": 1.0,
                      "yanchor": "bottom", "showactive": True, "active": 0 if log else 1, "pad": {"b": 4},
                      "buttons": [{"label": "log x", "method": "relayout",
                                   "args": [{"xaxis.type": "log", "xaxis.tickmode": "array" if xs else "auto"}]},
                                  {"label": "linear x", "method": "relayout",
                                   "args": [{"xaxis.type": "linear", "xaxis.tickmode": "auto"}]}]}],
    )
    return fig


def _log_ticks(xs: list[float], on: bool) -> dict[str, Any]:
    """Round ticks for a log axis (1, 2, 5, 10, 20, 50 ... over the data's range), written out:
    plotly's own log ticks label 20 as "2"."""
    if not xs:
        return {}
    lo, hi = math.floor(math.log10(min(xs))), math.ceil(math.log10(max(xs)))
    vals = [m * 10.0 ** e for e in range(lo, hi + 1) for m in (1, 2, 5) if min(xs) / 2 <= m * 10.0 ** e <= max(xs) * 2]
    return {"tickmode": "array" if on else "auto", "tickvals": vals, "ticktext": [f"{v:g}" for v in vals]}


def write_html(results: pd.DataFrame, front: pd.DataFrame, path: Path, *, x: str = "latency_p50_ms",
               y: str = "accuracy", title: str = "paretobert frontier", group_by: str | None = None,
               curves: dict[str, list[dict[str, Any]]] | None = None) -> Path:
    """Write the report to ``path``; ``front`` is the frontier table (``frontier_status``
    frontier | indistinguishable), ``results`` every variant, failures included; ``curves``
    the training curve of each variant id (drawn when its point is clicked)."""
    from plotly.offline import get_plotlyjs

    rows = _rows(results, front)
    fig = frontier_plotly(rows, x=x, y=y, title=title, group_by=group_by)
    slim = {vid: [{"epoch": _clean(p.get("epoch")), "val_accuracy": _clean(p.get("val_accuracy", p.get("val_f1"))),
                   "train_loss": _clean(p.get("train_loss"))} for p in c]
            for vid, c in (curves or {}).items() if c}
    dims = {d: sorted({str(r.get(d)) for r in rows if r.get("status") == "ok"}) for d in DIMENSIONS}
    payload = {"rows": rows, "x": x, "y": y, "columns": TABLE_COLUMNS, "curves": slim,
               "dims": {d: v for d, v in dims.items() if len(v) > 1}}
    page = (_TEMPLATE.replace("__TITLE__", html.escape(title))
            .replace("__PLOTLY__", get_plotlyjs())
            .replace("__FIG__", _script_json(fig.to_plotly_json()))
            .replace("__DATA__", _script_json(payload)))
    atomic_write_text(Path(path), page)
    return Path(path)


def _script_json(obj: Any) -> str:
    """JSON that cannot end the <script> it sits in."""
    return json.dumps(obj, default=str).replace("</", "<\\/")


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
body { font: 13px system-ui, sans-serif; margin: 16px; color: #222; }
h1 { font-size: 16px; }
#filters span.dim { margin-right: 18px; } #filters label { margin-right: 6px; }
table { border-collapse: collapse; margin-top: 12px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; }
th { background: #f3f3f3; cursor: pointer; user-select: none; }
td:first-child, th:first-child { text-align: left; }
tr.frontier td { background: #fde8e8; } tr.indistinguishable td { background: #fff6e0; }
tr.failed td { color: #b00; }
</style>
<script>__PLOTLY__</script>
</head><body>
<h1>__TITLE__</h1>
<div>Bars: 95% intervals. Marker: circle fp32, diamond int8, square bf16. Hover a point for its settings, click it
for its training curve; drag to zoom, double-click to reset; click a legend entry to hide it; untick a value to
filter; click a column header to sort.</div>
<div id="filters"></div>
<div id="plot"></div>
<div id="curvetitle"></div><div id="curve"></div>
<table id="table"><thead></thead><tbody></tbody></table>
<pre id="selftest"></pre>
<script>
const FIG = __FIG__;
const DATA = __DATA__;
const gd = document.getElementById("plot");
const ORIG = JSON.parse(JSON.stringify(FIG.data));
const hidden = {};
function fmt(v) {
  if (v === null || v === undefined || v === "") return "";
  if (typeof v === "number") return Math.abs(v) >= 100 ? v.toFixed(1) : (Number.isInteger(v) ? String(v) : v.toFixed(4));
  return String(v);
}
function passes(r) {
  for (const d in hidden) if (hidden[d].has(String(r[d]))) return false;
  return true;
}
function pick(a, keep) { return Array.isArray(a) ? keep.map(j => a[j]) : a; }
function subset(t, keep) {
  const s = Object.assign({}, t);
  for (const k of ["x", "y", "customdata", "text"]) s[k] = pick(t[k], keep);
  if (t.marker) s.marker = Object.assign({}, t.marker, {symbol: pick(t.marker.symbol, keep)});
  for (const e of ["error_x", "error_y"])
    if (t[e]) s[e] = Object.assign({}, t[e], {array: pick(t[e].array, keep), arrayminus: pick(t[e].arrayminus, keep)});
  return s;
}
function applyFilters() {
  const data = ORIG.map((t, i) => {
    const s = t.customdata ? subset(t, t.customdata.map((c, j) => passes(DATA.rows[c]) ? j : -1).filter(j => j >= 0)) : t;
    return Object.assign({}, s, {visible: gd.data[i].visible});
  });
  return Plotly.react(gd, data, gd.layout);
}
function filters() {
  const box = document.getElementById("filters");
  for (const d in DATA.dims) {
    hidden[d] = new Set();
    const span = document.createElement("span");
    span.className = "dim";
    span.append(d + ": ");
    for (const v of DATA.dims[d]) {
      const label = document.createElement("label"), cb = document.createElement("input");
      cb.type = "checkbox"; cb.checked = true; cb.dataset.dim = d; cb.dataset.value = v;
      cb.addEventListener("change", () => { cb.checked ? hidden[d].delete(v) : hidden[d].add(v); applyFilters(); });
      label.append(cb, " " + v);
      span.append(label);
    }
    box.append(span);
  }
}
function curve(r) {
  const title = document.getElementById("curvetitle");
  const c = (DATA.curves || {})[r.variant_id] || [];
  if (!c.length) {
    Plotly.purge("curve");
    title.textContent = r.label + ": no training curve (no validation split, or a cached record from before)";
    return Promise.resolve(0);
  }
  title.textContent = r.label + ": fine-tuning curve" + (r.train_warning ? " \\u2014 " + r.train_warning : "");
  const ep = c.map(p => p.epoch);
  return Plotly.newPlot("curve", [
    {x: ep, y: c.map(p => p.val_accuracy), name: "validation accuracy", mode: "lines+markers", line: {color: "#d62728"}},
    {x: ep, y: c.map(p => p.train_loss), name: "train loss", mode: "lines", yaxis: "y2", line: {color: "#999"}}],
    {height: 260, template: "plotly_white", margin: {t: 20}, xaxis: {title: {text: "epoch"}},
     yaxis: {title: {text: "validation accuracy"}},
     yaxis2: {title: {text: "train loss"}, overlaying: "y", side: "right"}}, {displaylogo: false})
    .then(() => c.length);
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
function points() {
  return gd.data.filter(t => t.meta === "points" && t.name !== undefined && t.legendgroup === "model"
    && t.visible !== "legendonly").reduce((n, t) => n + t.x.length, 0);
}
const wait = ms => new Promise(ok => setTimeout(ok, ms));
async function selftest() {
  const out = {points: points(), rows: document.querySelectorAll("#table tbody tr").length,
               xaxis: gd.layout.xaxis.type, legend: document.querySelectorAll(".legend .traces").length};
  let target = null;
  gd.data.forEach((t, i) => { if (t.legendgroup === "model") t.customdata.forEach((c, j) => {
    if (!target || (DATA.rows[c].frontier_status === "frontier" && DATA.rows[target.c].frontier_status !== "frontier"))
      target = {i, j, c}; }); });
  if (target) {
    Plotly.Fx.hover(gd, [{curveNumber: target.i, pointNumber: target.j}]);
    out.hovered = DATA.rows[target.c].variant_id;
    out.tooltip = Array.from(document.querySelectorAll(".hoverlayer .hovertext")).map(e => e.textContent).join("\\n");
    out.curve_points = await curve(DATA.rows[target.c]);
  }
  out.curve_title = document.getElementById("curvetitle").textContent;
  const cb = document.querySelector("#filters input");
  if (cb) {
    cb.click(); await wait(50);
    out.filtered = {dim: cb.dataset.dim, value: cb.dataset.value, points: points()};
    cb.click(); await wait(50);
    out.unfiltered_points = points();
  }
  const other = Array.from(document.querySelectorAll(".updatemenu-button"))
    .find(b => b.textContent !== (gd.layout.xaxis.type === "log" ? "log x" : "linear x"));
  if (other) { other.dispatchEvent(new MouseEvent("click", {bubbles: true})); await wait(50); }
  out.xaxis_after_switch = gd.layout.xaxis.type;
  const first = gd.data.find(t => t.legendgroup === "model");
  const entry = Array.from(document.querySelectorAll(".legend .traces")).find(e => first && e.textContent === first.name);
  if (entry) {  // a click on a legend entry: mousedown + mouseup, then plotly waits out a double click
    const toggle = entry.querySelector(".legendtoggle"), box = toggle.getBoundingClientRect();
    const at = {bubbles: true, cancelable: true, clientX: box.x + 4, clientY: box.y + 4, button: 0, buttons: 1, view: window};
    for (const ev of ["mousedown", "mouseup"]) toggle.dispatchEvent(new MouseEvent(ev, at));
    await wait(1500);
    out.legend_clicked = first.name;
    out.after_legend_click = points();
  }
  document.getElementById("selftest").textContent = JSON.stringify(out);
}
filters();
table();
Plotly.newPlot(gd, FIG.data, FIG.layout, {responsive: true, displaylogo: false}).then(() => {
  gd.on("plotly_click", ev => { const p = ev.points[0]; if (p && p.customdata !== undefined) curve(DATA.rows[p.customdata]); });
  if (location.hash === "#selftest") selftest();
});
</script></body></html>
"""
