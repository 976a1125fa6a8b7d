"""Latency timed on a Ray cluster's reference machine vs a serial run of the same variants.

    python benchmarks/cluster_vs_serial.py [--rounds 4] [--models tiny mini] [--max-train 200] [--repeats 1]

The variants (``model=M weights=scratch quant=true,false`` on BBC, the default bench) are
built once by a serial sweep; every round then re-measures all of them with ``force=true``
(artifacts reused, accuracy re-scored, latency re-timed) twice, once serially (``python -m
paretobert -m ...``) and once on a local Ray cluster (a head with the ``timer`` resource and
no CPUs, two one-CPU workers, all on this machine: builds on the workers, timings on the
head), alternating which goes first. One thing runs at a time: both take the machine lock
(``PARETOBERT_MACHINE_LOCK``), so the cluster's re-scoring on its workers never runs beside
a timing on its head.

Reported per variant: the cluster's p50 and whether it lies inside the serial run's 95%
interval of the p50 (bootstrap over the timed texts; with ``--repeats R`` > 1, each variant is
timed in R rounds, each in a fresh session, and the interval is the bootstrap over the R round
medians: ``bench.repeats``), for every later run against every
earlier one (serial vs serial is the noise floor between two serial runs); the p50 ratios of
runs adjacent in time, cluster vs serial against same kind (how far this machine drifts
between two runs); accuracy equality; overlapping timings.
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


def _overrides(args) -> list[str]:
    return [f"model={','.join(args.models)}", "weights=scratch", "quant=true,false", f"seq_len={args.seq_len}",
            f"dataset.max_train={args.max_train}", "dataset.max_test=100", "train.epochs=1",
            "train.validation_size=0", f"bench.repeats={args.repeats}", "allow_network=false"]


def _serial(args, sweep: Path, force: bool) -> list[dict]:
    cmd = [sys.executable, "-m", "paretobert", "-m", *_overrides(args), f"force={str(force).lower()}",
           f"hydra.sweep.dir={sweep}"]
    p = subprocess.run(cmd, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"serial sweep failed: {p.stderr[-2000:]}")
    from paretobert.store import load_results

    return load_results(sweep)


def _cluster(args, sweep: Path, cache: Path) -> list[dict]:
    import ray
    from ray.cluster_utils import Cluster

    from paretobert import compose, distributed

    space, fixed = compose.sweep_space([*_overrides(args), "force=true"])
    variants = [compose.variant_of(o, resolve=False)[1] for o in compose.grid(space, fixed)]
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "resources": {distributed.TIMER: 1}})
    for _ in range(2):
        c.add_node(num_cpus=1)
    ray.init(address=c.address, logging_level="WARNING")
    try:
        return distributed.run_sweep(variants, sweep, cache_dir=cache, force=True, allow_network=False)
    finally:
        ray.shutdown()
        c.shutdown()


def _by_id(recs: list[dict]) -> dict[str, dict]:
    bad = [r.get("error") for r in recs if r.get("status") != "ok"]
    if bad:
        raise SystemExit(f"failed variants: {bad}")
    return {r["variant_id"]: r for r in recs}


def _inside(x: dict, ref: dict) -> bool:
    return ref["latency_p50_ms_ci_lo"] <= x["latency_p50_ms"] <= ref["latency_p50_ms_ci_hi"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=4, help="serial/cluster pairs, alternating which goes first")
    ap.add_argument("--models", nargs="+", default=["tiny", "mini"])
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--max-train", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=1, help="bench.repeats: timing rounds per variant per run")
    args = ap.parse_args(argv)
    from paretobert.schedule import overlaps

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cache = tmp / "cache"
        os.environ["PARETOBERT_CACHE"] = str(cache)
        t0 = time.perf_counter()
        _serial(args, tmp / "build", force=False)
        print(f"built {len(args.models) * 2} variants serially in {time.perf_counter() - t0:.0f} s")
        runs: list[tuple[str, int, dict[str, dict]]] = []
        for r in range(args.rounds):
            for kind in (["serial", "cluster"] if r % 2 == 0 else ["cluster", "serial"]):
                sweep = tmp / f"{kind}-{r}"
                t0 = time.perf_counter()
                recs = _serial(args, sweep, force=True) if kind == "serial" else _cluster(args, sweep, cache)
                runs.append((kind, r, _by_id(recs)))
                print(f"round {r}: {kind}: {len(recs)} variants re-measured in {time.perf_counter() - t0:.0f} s, "
                      f"{len(overlaps(recs))} overlapping timings")
    rows, checks = [], {}
    for i, (k1, r1, now) in enumerate(runs):
        for k0, r0, ref in runs[:i]:  # every later run against every earlier run's interval
            key = f"{k1} vs {k0}"
            for vid, x in now.items():
                inside = _inside(x, ref[vid])
                same_acc = x["accuracy"] == ref[vid]["accuracy"]
                checks.setdefault(key, []).append(inside)
                rows.append({"timed": f"{k1}-{r1}", "against": f"{k0}-{r0}", "variant_id": vid,
                             "p50_ms": x["latency_p50_ms"], "ref_p50_ms": ref[vid]["latency_p50_ms"],
                             "ref_ci_ms": [ref[vid]["latency_p50_ms_ci_lo"], ref[vid]["latency_p50_ms_ci_hi"]],
                             "ratio": x["latency_p50_ms"] / ref[vid]["latency_p50_ms"], "inside_ref_ci": inside,
                             "accuracy_identical": same_acc,
                             "timing_node": x.get("timing_node"), "build_node": x.get("build_node")})
                print(f"{k1}-{r1} vs {k0}-{r0}: {vid}: p50 {x['latency_p50_ms']:.2f} ms vs "
                      f"{ref[vid]['latency_p50_ms']:.2f} [{ref[vid]['latency_p50_ms_ci_lo']:.2f}, "
                      f"{ref[vid]['latency_p50_ms_ci_hi']:.2f}] ms "
                      f"(x{x['latency_p50_ms'] / ref[vid]['latency_p50_ms']:.3f}), inside: {inside}, "
                      f"accuracy identical: {same_acc}")
    summary = {k: f"{sum(v)} of {len(v)}" for k, v in checks.items()}
    print("p50 inside the earlier run's 95% interval: " + "; ".join(f"{k}: {v}" for k, v in summary.items()))
    # the runs next to each other in time: is a cluster's timing further from the serial one's
    # than the next serial run's is (the drift of this machine between runs)?
    adjacent: dict[str, list[float]] = {}
    for (k0, _, ref), (k1, _, now) in zip(runs, runs[1:], strict=False):
        kind = "same kind" if k0 == k1 else "cluster vs serial"
        for vid, x in now.items():
            a, b = (x, ref[vid]) if k1 == "cluster" or k0 == k1 else (ref[vid], x)
            adjacent.setdefault(kind, []).append(a["latency_p50_ms"] / b["latency_p50_ms"])
    spread = {k: {"min": min(v), "max": max(v), "max_abs_dev": max(abs(x - 1) for x in v), "n": len(v)}
              for k, v in adjacent.items()}
    for k, v in spread.items():
        print(f"adjacent runs, {k}: p50 ratio {v['min']:.3f}..{v['max']:.3f} (n={v['n']}, "
              f"largest deviation {100 * v['max_abs_dev']:.1f}%)")
    from paretobert.env import environment

    suffix = f"-r{args.repeats}" if args.repeats > 1 else ""
    out = HERE / "results" / f"cluster_vs_serial-{'-'.join(args.models)}-s{args.seq_len}{suffix}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "rows": rows, "inside_previous_ci": summary, "adjacent_ratios": spread,
                               "environment": environment()}, indent=2, default=str))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
