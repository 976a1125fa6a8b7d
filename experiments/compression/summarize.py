"""Markdown tables for experiments/compression/README.md from a finished compression sweep.

    python experiments/compression/summarize.py multirun/compression

Every figure is read from the sweep's result.json files; nothing is typed in by hand.
Speed-up = p50 of the undropped, undistilled, no-exit model (`none`) / p50 of the arm, at the
same quant, seq_len and thread count; accuracy change = arm - none.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from paretobert import measure
from paretobert.frontier import noise_aware_frontier
from paretobert.record import results_table
from paretobert.stats import mcnemar_exact
from paretobert.store import load_results
from paretobert.variant import Variant


def table(sweep: Path) -> pd.DataFrame:
    recs = load_results(sweep)
    df = results_table(recs)
    by_id = {r["variant_id"]: r for r in recs}
    df["arm"] = df["compression"]  # Variant.compression_arm: none, drop-top-3, kd-135, exit-0.2
    df["kept"] = [str(((by_id[v].get("train") or {}).get("drop") or {}).get("kept", "")) for v in df["variant_id"]]
    front = noise_aware_frontier(df)
    df["frontier"] = df["variant_id"].map(dict(zip(front["variant_id"], front["frontier_status"], strict=True)))
    df["frontier_t"] = df["variant_id"].map(dict(zip(
        *[noise_aware_frontier(df, by="threads")[c] for c in ("variant_id", "frontier_status")], strict=True)))
    return df


def main(sweep: Path) -> None:
    df = table(sweep)
    ok = df[df["status"] == "ok"]
    failed = df[df["status"] != "ok"]
    print(f"{len(df)} variants, {len(ok)} ok, {len(failed)} failed\n")
    for _, r in failed.iterrows():
        print(f"- FAILED {r['variant_id']}: {r['error']}")
    base = ok[ok["arm"] == "none"].set_index(["quant", "seq_len", "threads"])
    rows = []
    for _, r in ok.iterrows():
        b = base.loc[(r["quant"], r["seq_len"], r["threads"])]
        rows.append({**r, "speedup": b["latency_p50_ms"] / r["latency_p50_ms"],
                     "d_acc": r["accuracy"] - b["accuracy"]})
    t = pd.DataFrame(rows)
    order = ["none", "drop-top-3", "drop-bottom-3", "drop-even-3", "drop-odd-3", "drop-symmetric-3",
             "drop-contribution-3", "kd-135", "kd-024", "exit-0", "exit-0.05", "exit-0.2", "exit-0.5"]
    t["order"] = t["arm"].map({a: i for i, a in enumerate(order)})
    print("\n### Every arm at 1 thread (int8 | fp32)\n")
    print("| arm | kept layers | seq | accuracy int8 | accuracy fp32 | p50 ms int8 | p50 ms fp32 | "
          "speed-up int8 | speed-up fp32 | mean exit layer int8 | frontier (t1) int8 / fp32 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    one = t[t["threads"] == 1].sort_values(["order", "seq_len"])
    for (a, s), g in one.groupby(["arm", "seq_len"], sort=False):
        q, f = g[g["quant"]].iloc[0], g[~g["quant"]].iloc[0]
        ex = "" if pd.isna(q["exit_layer_mean"]) else f"{q['exit_layer_mean']:.2f}"
        print(f"| {a} | {q['kept']} | {s} | {q['accuracy']:.4f} | {f['accuracy']:.4f} | "
              f"{q['latency_p50_ms']:.2f} | {f['latency_p50_ms']:.2f} | {q['speedup']:.2f}x | "
              f"{f['speedup']:.2f}x | {ex} | {q['frontier_t'] if isinstance(q['frontier_t'], str) else '-'} / "
              f"{f['frontier_t'] if isinstance(f['frontier_t'], str) else '-'} |")
    print("\n### Per method vs `none` (same quant, seq_len, threads): median over the 8 settings\n")
    print("| arm | speed-up (min..max) | accuracy change (min..max) |")
    print("|---|---|---|")
    for a, g in t.sort_values("order").groupby("arm", sort=False):
        print(f"| {a} | {g['speedup'].median():.2f}x ({g['speedup'].min():.2f}..{g['speedup'].max():.2f}) | "
              f"{g['d_acc'].median():+.4f} ({g['d_acc'].min():+.4f}..{g['d_acc'].max():+.4f}) |")
    print("\n### Threads: p50 at 1 thread / p50 at 2 threads (median over arms)\n")
    piv = t.pivot_table(index=["arm", "quant", "seq_len"], columns="threads", values="latency_p50_ms")
    if {1, 2} <= set(piv.columns):
        ratio = (piv[1] / piv[2]).groupby(level=[1, 2]).median()
        for (q, s), v in ratio.items():
            print(f"- {'int8' if q else 'fp32'} s{s}: {v:.2f}x")
    print("\n### Noise-aware frontier (all variants)\n")
    for _, r in ok[ok["frontier"].notna()].sort_values("latency_p50_ms").iterrows():
        print(f"- {r['label']}: {r['accuracy']:.4f} [{r['accuracy_ci_lo']:.3f}, {r['accuracy_ci_hi']:.3f}] @ "
              f"{r['latency_p50_ms']:.2f} ms [{r['latency_p50_ms_ci_lo']:.2f}, {r['latency_p50_ms_ci_hi']:.2f}] "
              f"({r['frontier']})")


def paired_tests(sweep: Path) -> None:
    """Exact McNemar tests on the same 556 test articles (the predictions are kept with each
    cached evaluation): which of two variants is right where the other is wrong."""
    cache = Path(os.environ.get("PARETOBERT_CACHE", "~/.cache/paretobert")).expanduser()
    recs = {r["name"]: r for r in load_results(sweep) if r.get("status") == "ok"}
    any_rec = next(iter(recs.values()))
    y = np.array(measure.split_of(Variant.from_dict(any_rec["variant"]), cache, False).test_labels)

    def right(name: str) -> np.ndarray:
        meta = json.loads((cache / "eval" / recs[name]["eval_key"] / "meta.json").read_text())
        return np.array(meta["predictions"]) == y

    print("\n### Paired tests (exact McNemar, same test articles, 1 thread)\n")
    print("| A | B | accuracy A | accuracy B | only A right | only B right | p |")
    print("|---|---|---|---|---|---|---|")
    for s in (64, 128):
        for q in ("int8", "fp32"):
            for a, b in (("kd135", "odd3"), ("kd024", "even3"), ("contribution3", "top3"), ("bottom3", "top3"),
                         ("", "exit1")):
                na = f"bbc-minilm-l6{'-' + a if a else ''}-{q}-s{s}-t1"
                nb = (f"bbc-minilm-l6-{q}-s{s}-{b}-t1" if b.startswith("exit") else f"bbc-minilm-l6-{b}-{q}-s{s}-t1")
                if na not in recs or nb not in recs:
                    continue
                ca, cb = right(na), right(nb)
                n01, n10 = int((ca & ~cb).sum()), int((~ca & cb).sum())
                pval = mcnemar_exact(n01, n10)
                print(f"| {a or 'none'} {q} s{s} | {b} | {ca.mean():.4f} | {cb.mean():.4f} | {n01} | {n10} | {pval:.4f} |")


if __name__ == "__main__":
    sweep_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "multirun/compression")
    main(sweep_dir)
    paired_tests(sweep_dir)
