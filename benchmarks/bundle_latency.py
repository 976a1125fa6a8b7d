"""A shipped bundle runs as fast as what the sweep measured: ``load_bundle(...)`` timed beside
the sweep's own timing path, on the same texts, threads and loop, one after the other.

    python benchmarks/bundle_latency.py SWEEP_DIR [VARIANT_ID ...] [--rounds 3]

For each variant (default: every ok variant of the sweep) the bundle is exported into a
temporary directory, then, ``--rounds`` times in alternation, (a) the sweep's path
(``measure.open_model`` + the feeds ``measure.preparer`` makes) and (b) the bundle's path
(``Bundle.encode`` + ``Bundle.logits``) are timed on the sweep's timing texts with the
sweep's bench settings (warmup, iterations, seconds; batch 1; the variant's threads). It
prints each p50 (median of the rounds), the ratio bundle / sweep measured side by side, and
the ratio to the p50 in the record (taken earlier, maybe on another day). Hold the machine
alone (the machine lock is taken).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from paretobert import bundle, measure, schedule
from paretobert.bench.timing import summarize, time_loop
from paretobert.retime import variant_from_dict
from paretobert.store import load_results


def _p50(run, feeds, b) -> float:
    lat = summarize(time_loop(lambda i: run(feeds[i]), n_inputs=len(feeds), warmup=b.warmup, min_iters=b.min_iters,
                              min_seconds=b.min_seconds, max_seconds=b.max_seconds, desc="", progress=False))
    return lat.p50


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sweep", type=Path)
    ap.add_argument("variants", nargs="*")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cache-dir", type=Path, default=Path(os.environ.get("PARETOBERT_CACHE", "~/.cache/paretobert")))
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args(argv)
    cache = args.cache_dir.expanduser()
    recs = [r for r in load_results(args.sweep) if r.get("status") == "ok"
            and (not args.variants or r["variant_id"] in args.variants) and r.get("model") != "tfidf"]
    if not recs:
        print(f"error: no ok transformer variant to time in {args.sweep}", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory() as tmp, schedule.timing():
        for rec in sorted(recs, key=lambda r: r["variant_id"]):
            v = variant_from_dict(rec["variant"])
            b_dir = bundle.export_bundle(args.sweep, rec["variant_id"], Path(tmp) / rec["variant_id"], cache_dir=cache)
            texts = measure.bench_texts(v, measure.split_of(v, cache, False))
            paths, ckpt = measure.cached_artifacts(rec, cache)
            model = measure.open_model(v, paths, v.runtime.threads)
            prepare, _ = measure.preparer(v, ckpt, model.input_names)
            sweep_feeds = [prepare(t) for t in texts]
            b = bundle.load_bundle(b_dir)
            bundle_feeds = [b.encode(t) for t in texts]
            same = all(np.array_equal(x["input_ids"], y["input_ids"]) for x, y in zip(sweep_feeds, bundle_feeds,
                                                                                        strict=True))
            s, k = [], []
            for _ in range(args.rounds):  # alternate: drift hits both alike
                s.append(_p50(model.run, sweep_feeds, v.bench))
                k.append(_p50(b.logits, bundle_feeds, v.bench))
            del model, b
            row = {"variant_id": rec["variant_id"], "threads": v.runtime.threads, "same_token_ids": same,
                   "sweep_path_p50_ms": float(np.median(s)), "bundle_p50_ms": float(np.median(k)),
                   "record_p50_ms": rec["latency_p50_ms"]}
            row["bundle_over_sweep_path"] = row["bundle_p50_ms"] / row["sweep_path_p50_ms"]
            row["bundle_over_record"] = row["bundle_p50_ms"] / row["record_p50_ms"]
            rows.append(row)
            print(f"{row['variant_id']}: sweep path {row['sweep_path_p50_ms']:.3f} ms, bundle {row['bundle_p50_ms']:.3f} ms "
                  f"(x{row['bundle_over_sweep_path']:.3f} side by side; x{row['bundle_over_record']:.3f} the record's "
                  f"{row['record_p50_ms']:.3f} ms), same token ids: {same}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
