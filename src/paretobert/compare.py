"""``paretobert compare SWEEP_A SWEEP_B``: the same variants measured twice (two machines, two
library versions, before and after a change): how each moved, and which moved on or off the
frontier. Variants are matched by their hash (the environment is not part of it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from paretobert.frontier import (
    DEFAULT_OBJECTIVES,
    Objective,
    noise_aware_frontier,
    parse_objectives,
)
from paretobert.record import results_table
from paretobert.stats import hypervolume_2d
from paretobert.store import load_results

__all__ = ["compare_tables", "hypervolume_of", "main"]


def hypervolume_of(df: pd.DataFrame, front: pd.DataFrame, objectives: Sequence[Objective],
                   reference: Sequence[float] | None = None) -> float:
    """Hypervolume of ``front`` (2 objectives); the default reference point is the worst value
    of each objective over the ok rows of ``df`` (0 accuracy would reward nothing useful).
    Compare hypervolumes only with the same reference point."""
    if len(objectives) != 2:
        raise ValueError("hypervolume needs exactly 2 objectives")
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    if reference is None:
        reference = [float(ok[c].min() if d == "max" else ok[c].max()) for c, d in objectives]
    pts = front[[c for c, _ in objectives]].to_numpy(dtype=float)
    return hypervolume_2d(pts, reference, [d for _, d in objectives])


def compare_tables(a: pd.DataFrame, b: pd.DataFrame,
                   objectives: Sequence[Objective] = DEFAULT_OBJECTIVES) -> pd.DataFrame:
    """One row per variant hash in either table: objectives in A and B, B/A ratio of every
    minimised objective, B - A of every maximised one, frontier status in A and B, and
    ``moved``: ``on`` / ``off`` the frontier, ``stayed``, ``only in A`` / ``only in B``."""
    fa, fb = noise_aware_frontier(a, objectives), noise_aware_frontier(b, objectives)
    cols = ["hash", "variant_id", "label", *[c for c, _ in objectives]]
    left = a[a["status"] == "ok"][cols].assign(frontier=lambda d: d.index.map(fa["frontier_status"]))
    right = b[b["status"] == "ok"][cols].assign(frontier=lambda d: d.index.map(fb["frontier_status"]))
    m = left.merge(right, on="hash", how="outer", suffixes=("_a", "_b"))
    for c, d in objectives:
        if d == "min":
            m[f"{c}_b_over_a"] = m[f"{c}_b"] / m[f"{c}_a"]
        else:
            m[f"{c}_b_minus_a"] = m[f"{c}_b"] - m[f"{c}_a"]
    on_a, on_b = m["frontier_a"].notna(), m["frontier_b"].notna()
    in_a, in_b = m["variant_id_a"].notna(), m["variant_id_b"].notna()
    m["moved"] = np.select(
        [~in_b, ~in_a, on_b & ~on_a, on_a & ~on_b],
        ["only in A", "only in B", "on", "off"], default="stayed")
    m["variant_id"] = m["variant_id_a"].fillna(m["variant_id_b"])
    return m.sort_values("variant_id", kind="mergesort").reset_index(drop=True)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="paretobert compare", description=__doc__.splitlines()[0])
    ap.add_argument("sweep_a")
    ap.add_argument("sweep_b")
    ap.add_argument("--objectives", nargs="+", default=[f"{c}:{d}" for c, d in DEFAULT_OBJECTIVES])
    ap.add_argument("--out", default=None, help="CSV to write (default SWEEP_B/compare.csv)")
    args = ap.parse_args(argv)
    try:
        objectives = parse_objectives(args.objectives)
        tables = []
        for d in (args.sweep_a, args.sweep_b):
            recs = load_results(Path(d))
            if not recs:
                raise FileNotFoundError(f"no result.json under {d}")
            tables.append(results_table(recs))
        m = compare_tables(tables[0], tables[1], objectives)
    except (FileNotFoundError, KeyError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path(args.sweep_b) / "compare.csv"
    m.to_csv(out, index=False)
    show = ["variant_id", "moved", *[c for c in m.columns if c.endswith(("_b_over_a", "_b_minus_a"))]]
    print(m[show].to_string(index=False))
    if len(objectives) == 2:  # one reference point for both: the worst value over A and B
        both = pd.concat(tables)
        for name, t in zip(("A", "B"), tables, strict=True):
            hv = hypervolume_of(both, noise_aware_frontier(t, objectives), objectives)
            print(f"hypervolume {name}: {hv:.4g}")
    print(f"compare: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
