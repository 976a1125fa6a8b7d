"""Parallel builds on one machine: a sweep of N distinct fine-tunes, serial vs Hydra's joblib
launcher with W workers, each from an empty cache, one after the other (never both at once).

    python benchmarks/parallel_builds.py [--workers 2] [--seeds 0 1 2 3] [--max-train 400] [--rounds 1]

The sweep is ``model=micro seed=S0,S1,.. quant=false bench=quick`` on BBC with ``--max-train``
articles: every seed is its own fine-tune, so the builds can run side by side; timings are
short and serialised by the machine lock either way. Reported: the wall time of each
sweep, the ratio parallel / serial (below 1: parallel is faster), the sum of the variants'
build seconds (how much work there was) and that no timing window overlapped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def _sweep(workers: int, seeds: list[int], max_train: int, tmp: Path) -> dict:
    sweep, cache = tmp / f"sweep-w{workers}", tmp / f"cache-w{workers}"
    args = [sys.executable, "-m", "paretobert", "-m", "model=micro", "weights=scratch", "quant=false",
            "bench=quick", f"seed={','.join(map(str, seeds))}", f"dataset.max_train={max_train}",
            "dataset.max_test=100", "allow_network=false", f"hydra.sweep.dir={sweep}"]
    if workers > 1:
        args += ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={workers}"]
    env = {**os.environ, "PARETOBERT_CACHE": str(cache), "HF_HUB_OFFLINE": "1",
           "PARETOBERT_MACHINE_LOCK": str(tmp / "machine.lock")}
    t0 = time.perf_counter()
    p = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"sweep with {workers} worker(s) failed: {p.stderr[-2000:]}")
    from paretobert.schedule import overlaps
    from paretobert.store import load_results

    recs = load_results(sweep)
    assert all(r["status"] == "ok" for r in recs), [r.get("error") for r in recs]
    return {"workers": workers, "wall_s": wall, "variants": len(recs),
            "build_s": sum(r["stage_seconds"].get("build", 0) for r in recs),
            "overlaps": len(overlaps(recs)), "pids": len({r["pid"] for r in recs}),
            "accuracy": sorted(r["accuracy"] for r in recs)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--max-train", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=1, help="serial/parallel pairs, alternating which goes first")
    args = ap.parse_args(argv)
    runs = []
    for r in range(args.rounds):
        order = [1, args.workers] if r % 2 == 0 else [args.workers, 1]
        for w in order:
            with tempfile.TemporaryDirectory() as tmp:
                res = _sweep(w, args.seeds, args.max_train, Path(tmp))
            res["round"] = r
            runs.append(res)
            print(f"round {r}: {w} worker(s): {res['wall_s']:.1f} s wall, {res['build_s']:.1f} s of builds, "
                  f"{res['pids']} process(es), {res['overlaps']} overlapping timings")
    serial = [x["wall_s"] for x in runs if x["workers"] == 1]
    par = [x["wall_s"] for x in runs if x["workers"] == args.workers]
    ratios = [p / s for p, s in zip(par, serial, strict=True)]
    same = all(x["accuracy"] == runs[0]["accuracy"] for x in runs)
    print(f"parallel / serial wall time: {', '.join(f'{x:.2f}' for x in ratios)} "
          f"({args.workers} workers, {len(args.seeds)} fine-tunes); accuracies identical: {same}")
    from paretobert.env import environment

    out = HERE / "results" / f"parallel_builds-w{args.workers}-n{len(args.seeds)}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"runs": runs, "ratios": ratios, "accuracies_identical": same,
                               "environment": environment()}, indent=2, default=str))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
