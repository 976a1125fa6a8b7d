"""results.csv + frontier.csv + frontier.png + frontier.html from a sweep directory.

Used by the Hydra callback at the end of a multirun and by ``make frontier-plot``:
``python -m paretobert.report [SWEEP_DIR] [--objectives accuracy:max latency_p50_ms:min]``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
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
from paretobert.plot import plot_frontier, plot_training
from paretobert.record import results_table, seeds_table
from paretobert.store import atomic_write_text, load_results

__all__ = ["latest_sweep", "markdown_table", "results_table", "seeds_markdown", "training_curves", "write_report",
           "write_tables"]

log = logging.getLogger(__name__)


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
    return write_tables(results_table(records), sweep_dir, objectives=objectives, group_by=group_by,
                        exclude_models=exclude_models, suffix=suffix, curves=training_curves(records))


def training_curves(records: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """variant id -> its fine-tune's validation curve (records that have one)."""
    return {r["variant_id"]: (r.get("train") or {})["curve"] for r in records
            if (r.get("train") or {}).get("curve") and r.get("variant_id")}


def write_tables(df: pd.DataFrame, out_dir: Path, *, objectives: Sequence[Objective] = DEFAULT_OBJECTIVES,
                 group_by: str | None = None, exclude_models: Sequence[str] = (), suffix: str = "",
                 name: str | None = None, html: bool = True,
                 curves: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Path]:
    """The report files of a results table (``results_table`` rows): results / frontier CSV,
    PNG and (``html``) HTML, named with ``suffix``, into ``out_dir``; with ``curves`` (variant
    id -> training curve) also ``training{suffix}.png`` and the curves in the HTML."""
    out_dir = Path(out_dir)
    machines = df["machine_id"].dropna().unique()
    if len(machines) > 1:
        log.warning("%s mixes results from %d machines: latencies are not comparable", out_dir, len(machines))
    for _, r in df[df["int8_collapsed"].eq(True)].iterrows():
        log.warning("%s: int8 accuracy collapsed (%.4f below its fp32 twin): flagged in the report",
                    r["variant_id"], r["int8_accuracy_drop"])
    for _, r in df[df["timing_overlap"].notna()].iterrows():
        log.error("%s: timed while %s was timed on the same host (%s): its latency is not trusted; "
                  "re-time the sweep alone (paretobert retime)", r["variant_id"], r["timing_overlap"], r["timing_host"])
    front = noise_aware_frontier(df, objectives, by=group_by)
    out = {"results": out_dir / f"results{suffix}.csv", "frontier": out_dir / f"frontier{suffix}.csv",
           "plot": out_dir / f"frontier{suffix}.png"}
    if html:
        out["html"] = out_dir / f"frontier{suffix}.html"
    atomic_write_text(out["results"], df.to_csv(index=False))
    atomic_write_text(out["frontier"], front.to_csv(index=False))
    seeds = seeds_table(df)
    if len(seeds):
        out["seeds"] = out_dir / f"seeds{suffix}.csv"
        atomic_write_text(out["seeds"], seeds.to_csv(index=False))
        metric = _seed_metric(seeds)
        for _, r in seeds.iterrows():
            log.info("seeds: %s", _seed_line(r, metric))
    minimised = [c for c, d in objectives if d == "min"]
    maximised = [c for c, d in objectives if d == "max"]
    x = minimised[0] if minimised else objectives[0][0]
    y = maximised[0] if maximised else objectives[-1][0]
    n_ok = int((df["status"] == "ok").sum())
    per = f" (per {group_by})" if group_by else ""
    per += f", without {', '.join(exclude_models)}" if exclude_models else ""
    title = f"{name or out_dir.name}: {len(front)} on the frontier{per} of {n_ok} ok / {len(df)} variants"
    plot_frontier(df, front, out["plot"], x=x, y=y, group_by=group_by, title=title)
    if curves:
        out["training"] = out_dir / f"training{suffix}.png"
        labels = dict(zip(df["variant_id"], df["label"], strict=True))
        plot_training(curves, labels, out["training"], title=f"{name or out_dir.name}: fine-tuning curves")
    if html:
        write_html(df, front, out["html"], x=x, y=y, title=title, group_by=group_by, curves=curves)
    return out


def _table(results: pd.DataFrame, ok: pd.DataFrame, on: set, header: list[str],
           cells: Callable[[Any], list[str]]) -> str:
    """A Markdown table: one row of ``cells(r)`` per ok row (then its frontier mark), one line
    per failed variant."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, r in ok.iterrows():
        lines.append("| " + " | ".join([*cells(r), "yes" if r["variant_id"] in on else ""]) + " |")
    for _, r in results[results["status"] != "ok"].iterrows():
        lines.append(f"| {r['variant_id']} | failed: {r['error']} |" + " |" * (len(header) - 2))
    return "\n".join(lines)


def _pct(r: Any, c: str) -> str:
    return f"{100 * r[c]:.1f} [{100 * r[c + '_ci_lo']:.1f}, {100 * r[c + '_ci_hi']:.1f}]"


def markdown_table(results: pd.DataFrame, front: pd.DataFrame) -> str:
    """A Markdown table of the ok rows (accuracy, macro-F1, latencies, MB, frontier mark;
    QA readers: exact match and F1 in percent with bootstrap 95%, answers in the window),
    slowest first, for experiment READMEs."""
    ok = results[results["status"] == "ok"].sort_values("latency_p50_ms", ascending=False)
    on = set(front["variant_id"])
    if len(ok) and "task" in ok.columns and (ok["task"] == "qa").all():
        return _table(results, ok, on, ["reader", "EM % [95% CI]", "F1 % [95% CI]", "answer in window %", "p50 ms",
                                        "p99 ms", "MB", "frontier"],
                      lambda r: [str(r["label"]), _pct(r, "exact_match"), _pct(r, "f1"),
                                 f"{100 * r['answer_in_window']:.1f}", f"{r['latency_p50_ms']:.2f}",
                                 f"{r['latency_p99_ms']:.2f}", f"{r['model_mb']:.1f}"])
    return _table(results, ok, on, ["variant", "accuracy", "macro-F1", "p50 ms", "p99 ms", "tokenize p50 ms", "MB",
                                    "frontier"],
                  lambda r: [str(r["label"]), f"{r['accuracy']:.4f}", f"{r['macro_f1']:.4f}",
                             f"{r['latency_p50_ms']:.2f}", f"{r['latency_p99_ms']:.2f}",
                             f"{r['tokenize_p50_ms']:.2f}", f"{r['model_mb']:.1f}"])


def _seed_metric(seeds: pd.DataFrame) -> str:
    """The figure the seed summaries show: accuracy (a QA reader's is its exact match), F1 where
    no accuracy was recorded."""
    return "accuracy" if "accuracy_mean" in seeds.columns and seeds["accuracy_mean"].notna().any() else "f1"


def _seed_line(r: Any, metric: str) -> str:
    """One configuration's seeds in words: ``tiny[...] int8 s128: 3 seeds (0,1,2), accuracy mean
    0.9586, 0.9532..0.9640 (spread 1.08 points)``."""
    if pd.isna(r.get(f"{metric}_mean")):
        return f"{r['label']}: {r['n_seeds']} seeds ({r['seeds']})"
    return (f"{r['label']}: {r['n_seeds']} seeds ({r['seeds']}), {metric} mean {r[f'{metric}_mean']:.4f}, "
            f"{r[f'{metric}_min']:.4f}..{r[f'{metric}_max']:.4f} (spread {100 * r[f'{metric}_spread']:.2f} points)")


def seeds_markdown(seeds: pd.DataFrame) -> str:
    """A Markdown table of :func:`paretobert.record.seeds_table` rows: per configuration its
    seeds, the figure of :func:`_seed_metric` per seed, mean, lowest..highest, spread in points,
    mean p50."""
    metric = _seed_metric(seeds)
    lines = [f"| configuration | seeds | {metric} per seed | mean | min..max | spread (points) | p50 ms mean |",
             "|---|---|---|---|---|---|---|"]
    for _, r in seeds.iterrows():
        p50 = f"{r['latency_p50_ms_mean']:.2f}" if pd.notna(r.get("latency_p50_ms_mean")) else ""
        if pd.isna(r.get(f"{metric}_mean")):
            lines.append(f"| {r['label']} | {r['seeds']} | | | | | {p50} |")
            continue
        lines.append(f"| {r['label']} | {r['seeds']} | {r[f'{metric}_values']} | {r[f'{metric}_mean']:.4f} | "
                     f"{r[f'{metric}_min']:.4f}.."
                     f"{r[f'{metric}_max']:.4f} | {100 * r[f'{metric}_spread']:.2f} | {p50} |")
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
        if "seeds" in out:
            print()
            print(seeds_markdown(pd.read_csv(out["seeds"])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
