"""Latency timed on a Ray cluster's reference machine vs a serial run of the same variants.

    python benchmarks/cluster_vs_serial.py [--rounds 4] [--models tiny mini] [--max-train 200] [--repeats 1]
    python benchmarks/cluster_vs_serial.py --interleave 8 [--smoke]    # rounds interleaved: see paired()

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
import contextlib
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
    if args.smoke:  # the smoke sweep itself: micro, quant x seq_len, bench=quick
        return ["+experiment=smoke", f"bench.repeats={args.repeats}", "allow_network=false"]
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


def _variants(args) -> list:
    from paretobert import compose

    space, fixed = compose.sweep_space([*_overrides(args), "force=true"])
    return [compose.variant_of(o, resolve=False)[1] for o in compose.grid(space, fixed)]


@contextlib.contextmanager
def _local_cluster():
    """A head with the ``timer`` and no CPUs, two one-CPU workers, all on this machine; yields the head's node id."""
    import ray
    from ray.cluster_utils import Cluster

    from paretobert import distributed

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "resources": {distributed.TIMER: 1}})
    for _ in range(2):
        c.add_node(num_cpus=1)
    ray.init(address=c.address, logging_level="WARNING")
    try:
        yield c.head_node.node_id
    finally:
        ray.shutdown()
        c.shutdown()


@contextlib.contextmanager
def _built_once(args):
    """A temporary cache (``PARETOBERT_CACHE``) where a serial sweep has built every variant; yields its directory."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["PARETOBERT_CACHE"] = str(tmp / "cache")
        t0 = time.perf_counter()
        _serial(args, tmp / "build", force=False)
        print(f"built the variants serially in {time.perf_counter() - t0:.0f} s")
        yield tmp


def _cluster(args, sweep: Path, cache: Path) -> list[dict]:
    from paretobert import distributed

    with _local_cluster():
        return distributed.run_sweep(_variants(args), sweep, cache_dir=cache, force=True, allow_network=False)


def _by_id(recs: list[dict]) -> dict[str, dict]:
    bad = [r.get("error") for r in recs if r.get("status") != "ok"]
    if bad:
        raise SystemExit(f"failed variants: {bad}")
    return {r["variant_id"]: r for r in recs}


def _inside(x: dict, ref: dict) -> bool:
    return ref["latency_p50_ms_ci_lo"] <= x["latency_p50_ms"] <= ref["latency_p50_ms_ci_hi"]


def paired(args) -> int:
    """Serial and cluster timings of the same built variants, interleaved round by round.

    Whole runs minutes apart (``main``) compare a run's one-round interval with another run's
    p50, so they measure this machine's drift between runs as much as the cluster. Here the
    variants are built once, then re-scored twice (``force``: artifacts reused), serially in
    this process (:func:`paretobert.pipeline.build_variant`) and on a Ray worker (the
    cluster's ``build`` task); then, ``R`` times, every variant (in a new random order each
    time) is timed once serially (:func:`paretobert.pipeline.time_variant`, what a serial run
    calls) and once by the cluster's ``timing`` task on the head (the reference machine), the
    two back to back in alternating order, one at a time. Per variant and way: the median of
    the R round p50s with its bootstrap 95% interval over the rounds (``bench.repeats``'s
    interval), and the paired ratio cluster / serial of each round with its interval: drift
    between rounds lands in both ways alike, so what is left is the cluster's own offset."""
    import numpy as np
    import ray

    from paretobert import distributed, pipeline
    from paretobert.env import environment
    from paretobert.schedule import overlaps
    from paretobert.stats import bootstrap_interval

    t_all = time.perf_counter()
    with _built_once(args) as tmp, _local_cluster() as head:
        cache = tmp / "cache"
        variants = _variants(args)
        lookup, build, timing = distributed.remote_stages()
        local = []
        for v in variants:  # re-scored serially, in this process
            rv, src, _ = pipeline.lookup(v, tmp / "serial", cache, force=True, allow_network=False)
            local.append(pipeline.build_variant(rv, src, cache_dir=cache, progress=False, allow_network=False))
        looked = ray.get([lookup.remote(v, tmp / "cluster", cache, True, False) for v in variants])
        remote = ray.get([build.remote(found, cache, False) for found, _ in looked])  # on the workers
        failed = [b.record.get("error") for b in local + remote if b.record.get("status") != "built"]
        if failed:
            raise SystemExit(f"failed builds: {failed}")
        ids = [b.variant.variant_id for b in local]
        if ids != [b.variant.variant_id for b in remote]:
            raise SystemExit(f"the cluster resolved other variants: {ids} vs {[b.variant.variant_id for b in remote]}")
        accuracy = {vid: {"serial": lb.record["accuracy"], "cluster": rb.record["accuracy"]}
                    for vid, lb, rb in zip(ids, local, remote, strict=True)}
        rng = np.random.default_rng(0)
        p50: dict[str, dict[str, list[float]]] = {vid: {"serial": [], "cluster": []} for vid in ids}
        recs, nodes = [], set()
        for r in range(args.interleave):
            for k, j in enumerate(rng.permutation(len(ids))):
                for way in (("serial", "cluster") if (r + k) % 2 == 0 else ("cluster", "serial")):
                    out = tmp / f"{way}-{r}" / ids[j]
                    if way == "serial":
                        rec = pipeline.time_variant(local[j], out_dir=out, cache_dir=cache, progress=False)
                    else:
                        rec = ray.get(timing.remote(remote[j], out, cache))
                        nodes.add((rec.get("build_node"), rec.get("timing_node")))
                    if rec.get("status") != "ok":
                        raise SystemExit(f"{way} timing of {ids[j]} failed: {rec.get('error')}")
                    recs.append(rec)
                    p50[ids[j]][way].append(rec["latency_p50_ms"])
            print(f"round {r + 1}/{args.interleave}: " + ", ".join(
                f"{vid} {p50[vid]['serial'][-1]:.2f} / {p50[vid]['cluster'][-1]:.2f} ms" for vid in ids))
    rows, inside = [], {"cluster in serial": [], "serial in cluster": []}
    for vid in ids:
        s_, c_ = p50[vid]["serial"], p50[vid]["cluster"]
        med = {"serial": float(np.median(s_)), "cluster": float(np.median(c_))}
        ci = {"serial": bootstrap_interval(s_), "cluster": bootstrap_interval(c_)}
        ratios = [b / a for a, b in zip(s_, c_, strict=True)]
        row = {"variant_id": vid, "rounds": len(s_), "serial_p50_ms": med["serial"], "serial_ci_ms": ci["serial"],
               "cluster_p50_ms": med["cluster"], "cluster_ci_ms": ci["cluster"],
               "cluster_inside_serial_ci": ci["serial"][0] <= med["cluster"] <= ci["serial"][1],
               "serial_inside_cluster_ci": ci["cluster"][0] <= med["serial"] <= ci["cluster"][1],
               "paired_ratio": float(np.median(ratios)), "paired_ratio_ci": bootstrap_interval(ratios),
               "round_p50_ms": p50[vid], "accuracy": accuracy[vid],
               "accuracy_identical": accuracy[vid]["serial"] == accuracy[vid]["cluster"]}
        inside["cluster in serial"].append(row["cluster_inside_serial_ci"])
        inside["serial in cluster"].append(row["serial_inside_cluster_ci"])
        rows.append(row)
        print(f"{vid}: serial p50 {med['serial']:.2f} [{ci['serial'][0]:.2f}, {ci['serial'][1]:.2f}] ms, cluster "
              f"{med['cluster']:.2f} [{ci['cluster'][0]:.2f}, {ci['cluster'][1]:.2f}] ms, inside each other: "
              f"{row['cluster_inside_serial_ci']} / {row['serial_inside_cluster_ci']}; paired cluster/serial "
              f"x{row['paired_ratio']:.3f} [{row['paired_ratio_ci'][0]:.3f}, {row['paired_ratio_ci'][1]:.3f}]; "
              f"accuracy {accuracy[vid]['serial']:.4f} / {accuracy[vid]['cluster']:.4f}")
    ov = overlaps(recs)
    on_head = all(t == head for _, t in nodes) and all(b != head for b, _ in nodes)
    summary = {k: f"{sum(v)} of {len(v)}" for k, v in inside.items()}
    print(f"inside the other way's 95% interval: {summary}; overlapping timings: {len(ov)} of {len(recs)}; "
          f"cluster builds on workers and timings on the head: {on_head}; {time.perf_counter() - t_all:.0f} s")
    name = "smoke" if args.smoke else f"{'-'.join(args.models)}-s{args.seq_len}"
    out = HERE / "results" / f"cluster_vs_serial-{name}-paired{args.interleave}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "rows": rows, "inside_other_ci": summary,
                               "overlapping_timings": [list(o) for o in ov], "timings": len(recs),
                               "builds_on_workers_timings_on_head": on_head,
                               "wall_s": round(time.perf_counter() - t_all, 1), "environment": environment()},
                              indent=2, default=str))
    print(f"wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=4, help="serial/cluster pairs, alternating which goes first")
    ap.add_argument("--models", nargs="+", default=["tiny", "mini"])
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--max-train", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=1, help="bench.repeats: timing rounds per variant per run")
    ap.add_argument("--smoke", action="store_true",
                    help="the variants of +experiment=smoke instead of --models (its own bench=quick)")
    ap.add_argument("--interleave", type=int, default=0, metavar="R",
                    help="instead of whole runs: one cluster and R timing rounds per variant, serial and cluster "
                         "rounds interleaved (see paired())")
    args = ap.parse_args(argv)
    if args.interleave:
        return paired(args)
    from paretobert.schedule import overlaps

    with _built_once(args) as tmp:
        cache = tmp / "cache"
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
    name = "smoke" if args.smoke else f"{'-'.join(args.models)}-s{args.seq_len}"
    out = HERE / "results" / f"cluster_vs_serial-{name}{suffix}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "rows": rows, "inside_previous_ci": summary, "adjacent_ratios": spread,
                               "environment": environment()}, indent=2, default=str))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
