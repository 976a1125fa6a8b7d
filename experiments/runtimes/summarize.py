"""Markdown tables for experiments/runtimes/README.md from the finished sweep and bench-peers.

    python experiments/runtimes/summarize.py multirun/runtimes benchmarks/results/peers-s128-t1.json

Every figure is read from the sweep's records and the benchmark's JSON; nothing is typed in.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from paretobert.frontier import noise_aware_frontier
from paretobert.record import results_table
from paretobert.store import load_results


def cells(sweep: Path) -> None:
    df = results_table(load_results(sweep))
    front = noise_aware_frontier(df)
    status = dict(zip(front["variant_id"], front["frontier_status"], strict=True))
    ok = df[df["status"] == "ok"].copy().sort_values(["threads", "seq_len", "compression", "runtime", "precision"])
    print("| variant | runtime | precision | seq | threads | accuracy [95% CI] | p50 ms | mean ms | p99 ms | "
          "exit layer (mean) | MB | GFLOP | GFLOP/s | % of peak | executed | frontier |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    # early exit: FLOPs at the mean exit layer over the mean latency (as measure.hardware_fields does
    # now; records written before that divided by the p50)
    ex = ok["exit_layer_mean"].notna() & ok["latency_mean_ms"].notna()
    ok.loc[ex, "achieved_gflops_per_s"] = ok.loc[ex, "gflop"] / (ok.loc[ex, "latency_mean_ms"] / 1000)
    ok.loc[ex, "peak_fraction"] = ok.loc[ex, "achieved_gflops_per_s"] / ok.loc[ex, "peak_gflops_per_s"]
    for _, r in ok.iterrows():
        pct = "" if pd.isna(r["peak_fraction"]) else f"{100 * r['peak_fraction']:.0f}%"
        gf = "" if pd.isna(r["gflop"]) else f"{r['gflop']:.2f}"
        ach = "" if pd.isna(r["achieved_gflops_per_s"]) else f"{r['achieved_gflops_per_s']:.0f}"
        ex = r["executed_precision"] if isinstance(r["executed_precision"], str) else "-"
        print(f"| {r['label']} | {r['runtime']} | {r['precision']} | {r['seq_len']:.0f} | {r['threads']:.0f} | "
              f"{r['accuracy']:.4f} [{r['accuracy_ci_lo']:.3f}, {r['accuracy_ci_hi']:.3f}] | "
              f"{r['latency_p50_ms']:.2f} | {r['latency_mean_ms']:.2f} | {r['latency_p99_ms']:.2f} | "
              f"{'' if pd.isna(r['exit_layer_mean']) else format(r['exit_layer_mean'], '.2f')} | "
              f"{r['model_mb']:.1f} | {gf} | {ach} | {pct} | "
              f"{ex} | {status.get(r['variant_id'], '')} |")
    print("\nFailed cells (with the reason):\n")
    for _, r in df[df["status"] != "ok"].iterrows():
        print(f"- {r['variant_id']}: {r['error']}")


def peers(path: Path) -> None:
    data = json.loads(path.read_text())
    print(f"\nFastest peer: **{data['fastest_peer']}**; OpenVINO default compiled at "
          f"{data['openvino_default']['inference_precision']}.\n")
    print("| engine | p50 ms (median of rounds) | speed-up vs fastest peer | agreement with torch fp32 | accuracy |")
    print("|---|---|---|---|---|")
    for r in data["rows"]:
        print(f"| {r['engine']} | {r['p50_ms_median']:.2f} | {r['speedup_vs_fastest_peer']:.2f}x | "
              f"{r['agreement_with_torch_fp32']:.4f} | {r['accuracy']:.4f} |")


if __name__ == "__main__":
    cells(Path(sys.argv[1] if len(sys.argv) > 1 else "multirun/runtimes"))
    if len(sys.argv) > 2:
        peers(Path(sys.argv[2]))
