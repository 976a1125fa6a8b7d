"""Search vs grid: how much of a full grid's frontier a multi-objective search finds with a
fraction of its variants, on a sweep whose every variant was measured.

The committed compression sweep (``experiments/compression/results.csv``: 14 compression
arms x int8/fp32 x seq_len 64/128 x 1/2 threads = 112 variants of MiniLM-L6 on BBC) is the
oracle: a search "evaluates" a variant by reading its measured row, exactly what
``paretobert search`` gets from the results cache when the records exist. For each sampler
and seed: the hypervolume (accuracy up, log10 p50 down, reference the grid's worst accuracy
and slowest p50) of the variants the search evaluated, as a fraction of the whole grid's, and
how many of the grid's Pareto points (plain dominance) it evaluated.
Nothing is timed: the figures are counts and areas, identical on every machine.

    python benchmarks/search_vs_grid.py [--budget-fraction 0.4] [--seeds 0 1 2] [--samplers tpe nsga2 random]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from paretobert.frontier import DEFAULT_OBJECTIVES, hypervolume, pareto_mask
from paretobert.search import grid_size, run_search

HERE = Path(__file__).resolve().parent
AXES = {"compression": "+compress", "quant": "quant", "seq_len": "seq_len", "threads": "runtime.threads"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=str(HERE.parent / "experiments/compression/results.csv"))
    ap.add_argument("--budget-fraction", type=float, default=0.4)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--samplers", nargs="+", default=["tpe", "nsga2", "random"])
    args = ap.parse_args(argv)
    grid = pd.read_csv(args.results)
    grid = grid[grid["status"] == "ok"].reset_index(drop=True)
    space = {AXES[c]: sorted(grid[c].unique().tolist(), key=str) for c in AXES}
    if grid_size(space) != len(grid):
        print(f"error: {args.results} holds {len(grid)} variants, its axes span {grid_size(space)}", file=sys.stderr)
        return 2
    lookup = {tuple(r[c] for c in AXES): r for _, r in grid.iterrows()}
    objectives = DEFAULT_OBJECTIVES
    reference = [grid["accuracy"].min(), grid["latency_p50_ms"].max()]
    full = hypervolume(grid, objectives, reference=reference)
    front = set(grid.loc[pareto_mask(grid, objectives), "variant_id"])
    budget = int(args.budget_fraction * len(grid))

    def evaluate(combo):
        row = lookup[tuple(combo[AXES[c]] for c in AXES)]
        return [row[col] for col, _ in objectives]

    runs = []
    for sampler in args.samplers:
        for seed in args.seeds:
            res = run_search(space, evaluate, objectives, budget=budget, sampler=sampler, seed=seed)
            seen = pd.DataFrame([lookup[tuple(c[AXES[k]] for k in AXES)] for c in res.combos()])
            ratio = hypervolume(seen, objectives, reference=reference) / full
            found = len(front & set(seen["variant_id"]))
            runs.append({"sampler": sampler, "seed": seed, "evaluated": len(res.evaluated), "asked": res.asked,
                         "fraction_evaluated": len(res.evaluated) / len(grid), "hypervolume_ratio": ratio,
                         "frontier_found": found, "frontier_size": len(front)})
            print(f"{sampler:6s} seed {seed}: {len(res.evaluated)}/{len(grid)} variants evaluated "
                  f"({len(res.evaluated) / len(grid):.0%}), {res.asked} trials asked, "
                  f"hypervolume {ratio:.1%} of the grid's, {found}/{len(front)} of its frontier points")
    out = HERE / "results" / f"search_vs_grid-{Path(args.results).parent.name}-b{args.budget_fraction:g}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"grid": args.results, "variants": len(grid), "budget": budget,
                               "reference": reference, "runs": runs}, indent=2, default=float))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
