"""results.csv + frontier.csv + frontier.png + frontier.html from a sweep directory.

Used by the Hydra callback at the end of a multirun and by ``make frontier-plot``:
``python -m paretobert.report [SWEEP_DIR] [--objectives accuracy:max latency_p50_ms:min]``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from paretobert.frontier import (
    DEFAULT_OBJECTIVES,
    Objective,
    noise_aware_frontier,
    parse_objectives,
)
from paretobert.html_report import write_html
from paretobert.plot import plot_frontier
from paretobert.store import atomic_write_text, load_results

__all__ = ["latest_sweep", "results_table", "write_report"]

log = logging.getLogger(__name__)

COLUMNS = [
    "variant_id", "hash", "status", "label", "dataset", "model", "weights", "weights_source", "quant", "seq_len",
    "truncation", "train_length", "threads", "accuracy", "macro_f1", "latency_p50_ms", "latency_p90_ms",
    "latency_p99_ms", "latency_mean_ms", "latency_std_ms", "latency_n", "tokenize_p50_ms",
    "tokenize_mean_ms", "total_p50_ms", "accuracy_ci_lo", "accuracy_ci_hi", "latency_p50_ms_ci_lo",
    "latency_p50_ms_ci_hi", "latency_rounds", "exit_layer_mean",
    "session_create_ms", "first_inference_ms", "peak_rss_mb", "rss_growth_mb", "model_mb", "n_params", "n_test", "mean_tokens",
    "onnx_max_abs_diff", "int8_accuracy_drop", "int8_collapsed", "train_seconds", "train_cached", "machine_id",
    "error", "job_dir",
]
# an int8 variant this much less accurate than its fp32 twin is flagged (results, plot, log)
COLLAPSE_DROP = 0.05


def _twin_key(rec: dict[str, Any]) -> str | None:
    """What an int8 variant shares with its fp32 twin: everything but quant and timing settings."""
    from paretobert.variant import content_hash

    v = rec.get("variant")
    if not isinstance(v, dict):
        return None
    return content_hash({k: x for k, x in v.items() if k not in ("quant", "quantize", "runtime", "bench")})


def _int8_drops(records: Sequence[dict[str, Any]]) -> dict[int, float]:
    """Row index -> fp32 accuracy minus int8 accuracy, for int8 rows with an ok fp32 twin."""
    fp32 = {}
    for rec in records:
        if rec.get("status") == "ok" and not rec.get("quant") and rec.get("accuracy") is not None:
            fp32.setdefault(_twin_key(rec), rec["accuracy"])
    out = {}
    for i, rec in enumerate(records):
        key = _twin_key(rec)
        if rec.get("status") == "ok" and rec.get("quant") and key is not None and key in fp32:
            out[i] = float(fp32[key] - rec["accuracy"])
    return out



def _label(rec: dict[str, Any]) -> str:
    """Short plot label: model[weights source], compression, int8/fp32, seq_len, exit, threads."""
    src = str(rec.get("weights_source") or rec.get("weights") or "?").split(":")[0]
    src = {"hf-cache": "hub", "path": "local"}.get(src, src)
    v = rec.get("variant") or {}
    model = str(rec.get("model"))
    if (v.get("model") or {}).get("retokenize"):
        model += "+vocab"
    parts = [f"{model}[{src}]"]
    drop, distill, exit_ = v.get("drop") or {}, v.get("distill") or {}, v.get("exit") or {}
    if drop.get("strategy") not in (None, "none"):
        parts.append(f"{drop['strategy']}{drop.get('keep')}")
    if distill.get("teacher"):
        parts.append("kd" + "".join(str(i) for i in distill.get("layers") or []))
    parts += ["int8" if rec.get("quant") else "fp32", f"s{rec.get('seq_len')}"]
    if exit_.get("threshold") is not None:
        parts.append(f"exit{exit_['threshold']:g}")
    if (rec.get("threads") or 1) > 1:
        parts.append(f"t{rec['threads']}")
    return " ".join(parts)


def _intervals_of(rec: dict[str, Any]) -> dict[str, float]:
    """The record's intervals, computed for records written before they were recorded:
    Wilson from accuracy and n_test, bootstrap from the raw timings of a single round."""
    from paretobert.stats import bootstrap_interval, wilson_interval

    out: dict[str, float] = {}
    if rec.get("status") != "ok":
        return out
    if rec.get("accuracy_ci_lo") is None and rec.get("accuracy") is not None and rec.get("n_test"):
        n = int(rec["n_test"])
        out["accuracy_ci_lo"], out["accuracy_ci_hi"] = wilson_interval(int(round(rec["accuracy"] * n)), n)
    raw = (rec.get("latency") or {}).get("raw")
    if rec.get("latency_p50_ms_ci_lo") is None and raw:
        out["latency_p50_ms_ci_lo"], out["latency_p50_ms_ci_hi"] = bootstrap_interval(raw)
    return out


def results_table(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per variant: floats with units in column names, never formatted strings."""
    rows = []
    drops = _int8_drops(records)
    for i, rec in enumerate(records):
        row = {c: rec.get(c) for c in COLUMNS}
        if i in drops:
            row["int8_accuracy_drop"] = drops[i]
            row["int8_collapsed"] = drops[i] > COLLAPSE_DROP
        row["label"] = _label(rec)
        row["train_seconds"] = (rec.get("train") or {}).get("seconds")
        row.update(_intervals_of(rec))
        if rec.get("latency_p50_ms") is not None and rec.get("tokenize_p50_ms") is not None:
            row["total_p50_ms"] = rec["latency_p50_ms"] + rec["tokenize_p50_ms"]
        row["machine_id"] = (rec.get("environment") or {}).get("machine_id")
        for size, per_s in (rec.get("throughput") or {}).items():
            row[f"throughput_b{size}_per_s"] = per_s
        rows.append(row)
    extra = sorted({k for r in rows for k in r if k not in COLUMNS}, key=lambda k: int(k.split("_")[1][1:]))
    df = pd.DataFrame(rows, columns=[*COLUMNS, *extra])
    for c in ("accuracy", "macro_f1", "latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_mean_ms",
              "latency_std_ms", "tokenize_p50_ms", "total_p50_ms", "accuracy_ci_lo", "accuracy_ci_hi",
              "latency_p50_ms_ci_lo", "latency_p50_ms_ci_hi", "exit_layer_mean", "tokenize_mean_ms", "session_create_ms",
              "first_inference_ms", "peak_rss_mb", "rss_growth_mb", "model_mb", "mean_tokens", *extra,
              "onnx_max_abs_diff", "int8_accuracy_drop", "train_seconds"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    return df.sort_values("variant_id", kind="mergesort").reset_index(drop=True)


def write_report(sweep_dir: Path, *, objectives: Sequence[Objective] = DEFAULT_OBJECTIVES,
                 group_by: str | None = None, exclude_models: Sequence[str] = (),
                 suffix: str = "") -> dict[str, Path]:
    """Write the four report files into ``sweep_dir``; returns their paths. With ``group_by``
    (a results column such as ``threads``) there is one frontier per value of that column;
    ``exclude_models`` leaves those models out (e.g. the classical baseline, for the
    transformers' own frontier), written as ``results{suffix}.csv`` etc."""
    sweep_dir = Path(sweep_dir)
    records = [r for r in load_results(sweep_dir) if r.get("model") not in set(exclude_models)]
    if not records:
        raise FileNotFoundError(f"no result.json under {sweep_dir}" + (
            f" besides models {list(exclude_models)}" if exclude_models else ""))
    df = results_table(records)
    machines = df["machine_id"].dropna().unique()
    if len(machines) > 1:
        log.warning("%s mixes results from %d machines: latencies are not comparable", sweep_dir, len(machines))
    for _, r in df[df["int8_collapsed"].eq(True)].iterrows():
        log.warning("%s: int8 accuracy collapsed (%.4f below its fp32 twin): flagged in the report",
                    r["variant_id"], r["int8_accuracy_drop"])
    front = noise_aware_frontier(df, objectives, by=group_by)
    out = {"results": sweep_dir / f"results{suffix}.csv", "frontier": sweep_dir / f"frontier{suffix}.csv",
           "plot": sweep_dir / f"frontier{suffix}.png", "html": sweep_dir / f"frontier{suffix}.html"}
    atomic_write_text(out["results"], df.to_csv(index=False))
    atomic_write_text(out["frontier"], front.to_csv(index=False))
    minimised = [c for c, d in objectives if d == "min"]
    maximised = [c for c, d in objectives if d == "max"]
    x = minimised[0] if minimised else objectives[0][0]
    y = maximised[0] if maximised else objectives[-1][0]
    n_ok = int((df["status"] == "ok").sum())
    per = f" (per {group_by})" if group_by else ""
    per += f", without {', '.join(exclude_models)}" if exclude_models else ""
    title = f"{sweep_dir.name}: {len(front)} on the frontier{per} of {n_ok} ok / {len(df)} variants"
    plot_frontier(df, front, out["plot"], x=x, y=y, group_by=group_by, title=title)
    write_html(df, front, out["html"], x=x, y=y, title=title)
    return out


def markdown_table(results: pd.DataFrame, front: pd.DataFrame) -> str:
    """A Markdown table of the ok rows (accuracy, macro-F1, latencies, MB, frontier mark),
    slowest first, for experiment READMEs."""
    ok = results[results["status"] == "ok"].sort_values("latency_p50_ms", ascending=False)
    on = set(front["variant_id"])
    lines = ["| variant | accuracy | macro-F1 | p50 ms | p99 ms | tokenize p50 ms | MB | frontier |",
             "|---|---|---|---|---|---|---|---|"]
    for _, r in ok.iterrows():
        lines.append(f"| {r['label']} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | {r['latency_p50_ms']:.2f} | "
                     f"{r['latency_p99_ms']:.2f} | {r['tokenize_p50_ms']:.2f} | {r['model_mb']:.1f} | "
                     f"{'yes' if r['variant_id'] in on else ''} |")
    for _, r in results[results["status"] != "ok"].iterrows():
        lines.append(f"| {r['variant_id']} | failed: {r['error']} | | | | | | |")
    return "\n".join(lines)


def latest_sweep(root: Path = Path("multirun")) -> Path:
    """The most recently modified sweep directory under ``root`` holding results."""
    candidates = [d for d in Path(root).glob("*") if d.is_dir() and any(d.rglob("result.json"))]
    if not candidates:
        raise FileNotFoundError(f"no sweep with results under {root}/: run `python -m paretobert -m ...` first")
    return max(candidates, key=lambda d: d.stat().st_mtime)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m paretobert.report", description=__doc__.splitlines()[0])
    ap.add_argument("sweep", nargs="?", help="sweep directory (default: the latest under multirun/)")
    ap.add_argument("--markdown", action="store_true", help="also print a Markdown table of the results")
    ap.add_argument("--exclude-model", action="append", default=[], metavar="NAME",
                    help="leave this model out (repeatable); use with --suffix")
    ap.add_argument("--suffix", default="", help="report file names get it: results-SUFFIX.csv ...")
    ap.add_argument("--group-by", default=None, help="one frontier per value of this column, e.g. threads")
    ap.add_argument("--objectives", nargs="+", default=[f"{c}:{d}" for c, d in DEFAULT_OBJECTIVES],
                    help="COLUMN:max|min, e.g. accuracy:max latency_p99_ms:min")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        sweep = Path(args.sweep) if args.sweep else latest_sweep()
        suffix = f"-{args.suffix}" if args.suffix else ("-without-" + "-".join(args.exclude_model)
                                                         if args.exclude_model else "")
        out = write_report(sweep, objectives=parse_objectives(args.objectives), group_by=args.group_by,
                           exclude_models=args.exclude_model, suffix=suffix)
    except (FileNotFoundError, KeyError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    front = pd.read_csv(out["frontier"])
    print(f"{sweep}: {len(front)} variant(s) on the frontier")
    cols = [c for c in ("variant_id", "accuracy", "latency_p50_ms", "model_mb") if c in front.columns]
    if len(front):
        print(front[cols].to_string(index=False))
    for kind, path in out.items():
        print(f"{kind}: {path}")
    if args.markdown:
        print(markdown_table(pd.read_csv(out["results"]), front))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
