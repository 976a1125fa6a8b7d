"""Re-time a finished sweep from its cached artifacts: nothing is retrained or re-exported.

``paretobert retime SWEEP_DIR --rounds N`` (or ``python -m paretobert.retime``) times every ok
variant N more times, each round in a fresh ONNX Runtime session, the variants interleaved in
a new random order every round, so drift of the machine hits all variants alike. Each
``result.json`` is rewritten (atomically) with the median of the round medians as
``latency_p50_ms``, a bootstrap interval over the rounds, the per-round figures under
``retime`` and the environment of this machine; the sweep report is rebuilt.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from paretobert import measure, schedule
from paretobert.config import BenchConfig, ConfigError, load_bench_preset, presets
from paretobert.env import environment
from paretobert.report import write_report
from paretobert.store import (
    RESULT_FILE,
    add_cache_dir_argument,
    atomic_write_json,
    load_results,
    seal,
)
from paretobert.variant import Variant, VariantError

__all__ = ["RetimeError", "main", "retime_sweep", "variant_from_dict"]

log = logging.getLogger(__name__)


class RetimeError(RuntimeError):
    """A sweep that cannot be re-timed (no results, artifacts gone), with what to do."""


def variant_from_dict(d: dict[str, Any]) -> Variant:
    """:meth:`Variant.from_dict`, failing as a :class:`RetimeError`."""
    try:
        return Variant.from_dict(d)
    except VariantError as e:
        raise RetimeError(str(e)) from None


def retime_sweep(sweep_dir: Path, *, rounds: int = 3, cache_dir: Path, seed: int = 0,
                 progress: bool = True, bench: BenchConfig | None = None) -> list[dict[str, Any]]:
    """Re-time every ok variant of ``sweep_dir`` ``rounds`` times, interleaved; returns the
    updated records (failed variants are left as they are). ``bench``: one timing protocol
    (texts, warm-up, iterations) for every variant instead of each one's own ``bench`` (a
    sweep run with ``bench=quick`` timed 20 texts; ``--bench default`` times 200), recorded
    under ``retime.bench``."""
    if rounds < 1:
        raise RetimeError(f"--rounds={rounds}: need at least 1")
    recs = [r for r in load_results(sweep_dir) if r.get("status") == "ok" and "variant" in r]
    if not recs:
        raise RetimeError(f"no ok result.json under {sweep_dir}: run the sweep first")
    jobs = []
    for rec in recs:
        variant = variant_from_dict(rec["variant"])
        if bench is not None:
            variant = dataclasses.replace(variant, bench=bench)
        try:
            paths, ckpt = measure.cached_artifacts(rec, cache_dir)
        except FileNotFoundError as e:
            raise RetimeError(str(e)) from None
        split = measure.split_of(variant, Path(cache_dir).expanduser(), False)
        model = measure.open_model(variant, paths, variant.runtime.threads)
        prepare, _ = measure.preparer(variant, ckpt, model.input_names)
        del model
        jobs.append({"rec": rec, "variant": variant, "paths": paths, "ckpt": ckpt, "cache_dir": Path(cache_dir).expanduser(),
                     "feeds": [prepare(t) for t in measure.bench_texts(variant, split)], "rounds": []})
    rng = np.random.default_rng(seed)
    with schedule.timing() as window:  # one hold for all rounds: the variants interleave inside it
        for r in range(rounds):
            for j in rng.permutation(len(jobs)):
                job = jobs[j]
                v, b = job["variant"], job["variant"].bench
                model = measure.open_model(v, job["paths"], v.runtime.threads)
                job["rounds"].append(measure.time_round(model, job["feeds"], b, progress=progress,
                                                        desc=f"retime {r + 1}/{rounds} {v.variant_id}"))
                del model
        for job in jobs:  # may time the GEMM peak
            job["hardware"] = measure.hardware_fields(job["variant"], job["ckpt"],
                                                      {**job["rec"], **measure.latency_fields(job["rounds"])},
                                                      job["cache_dir"])
    return [_write(job, window) for job in jobs]


def _write(job: dict[str, Any], window: dict[str, Any]) -> dict[str, Any]:
    rec = dict(job["rec"])
    before = {k: rec.get(k) for k in ("latency_p50_ms", "latency_p50_ms_ci_lo", "latency_p50_ms_ci_hi",
                                       "latency_rounds")}
    rec.update(measure.latency_fields(job["rounds"]))
    rec.update(job["hardware"], timing_window=window)
    rec["retime"] = {"rounds": len(job["rounds"]), "p50_ms": [r["stats"].p50 for r in job["rounds"]],
                     "before": before, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                     "bench": dataclasses.asdict(job["variant"].bench)}
    rec["environment"] = environment(threads=job["variant"].runtime.threads)
    rec.pop("reused_from", None)
    job_dir = Path(rec.pop("job_dir"))
    atomic_write_json(job_dir / RESULT_FILE, seal(rec))
    return rec


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="paretobert retime", description=__doc__.splitlines()[0])
    ap.add_argument("sweep", help="a sweep directory (with result.json files)")
    ap.add_argument("--rounds", type=int, default=3, help="timing rounds per variant (default 3)")
    add_cache_dir_argument(ap)
    ap.add_argument("--seed", type=int, default=0, help="seed of the interleaving order")
    ap.add_argument("--bench", choices=presets("bench"), default=None,
                    help="time every variant with this bench preset (texts, warm-up, iterations) "
                         "instead of the one it was swept with")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        bench = load_bench_preset(args.bench) if args.bench else None
        recs = retime_sweep(Path(args.sweep), rounds=args.rounds, cache_dir=Path(args.cache_dir), seed=args.seed,
                            bench=bench)
        out = write_report(Path(args.sweep))
    except (RetimeError, ConfigError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for rec in sorted(recs, key=lambda r: r["variant_id"]):
        old = rec["retime"]["before"]["latency_p50_ms"]
        print(f"{rec['variant_id']}: p50 {old:.3f} -> {rec['latency_p50_ms']:.3f} ms "
              f"[{rec['latency_p50_ms_ci_lo']:.3f}, {rec['latency_p50_ms_ci_hi']:.3f}] over {rec['latency_rounds']} rounds")
    print(f"report: {out['frontier']}  {out['plot']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
