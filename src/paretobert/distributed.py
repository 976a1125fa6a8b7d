"""Sweeps on a Ray cluster: builds on any worker, timings on the one reference machine.

The reference machine (the CPU you deploy to) joins the cluster with **zero CPUs** and one
unit of a custom resource, ``timer``::

    ray start --head --num-cpus=0 --resources='{"timer": 1}'      # the reference machine
    ray start --address=HEAD:6379                                  # every build machine
    PARETOBERT_CACHE=/shared/paretobert paretobert cluster +experiment=design-card --address HEAD:6379

Each variant is three Ray tasks, the same three functions a serial run calls
(:mod:`paretobert.pipeline`): ``lookup`` and ``time_variant`` require the ``timer`` resource
(so they run on the reference machine, one at a time: its CPU decides the variant's defaults,
its machine id the results cache, and no two timings overlap), ``build_variant`` requires one
CPU (so it never runs on the reference machine, whose zero CPUs keep it quiet). Ray starts a
timing when its build is done, while other builds go on elsewhere. The reference machine's
own :mod:`paretobert.schedule` lock still guards its timings against anything else it runs.

Artifacts travel through ``cache_dir``, a filesystem path every node mounts (NFS, a cloud
file store): the store's guarantees hold there: an artifact is built in a temporary
directory and renamed into place with its ``meta.json`` (sizes and sha256) only when
complete, every reuse re-checks the digests, and one build lock per key (``fcntl.flock`` on
the shared path: use a filesystem whose locks work across clients, such as NFSv4) keeps two
builders of one key apart. A worker killed mid-build leaves only a temporary directory that
no one trusts; Ray re-runs the task elsewhere (``max_retries``) and it builds again.

Trust: the reference machine loads whatever a builder writes into ``cache_dir`` (ONNX / IR
models, tokenizers, JSON). Only the cluster's own machines may write there. paretobert's
neural artifacts are data formats, not code; the TF-IDF baseline's fitted pipeline is a
pickle, so ``model=tfidf`` is refused on a cluster (run it on the reference machine).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from paretobert import pipeline
from paretobert.variant import Variant

__all__ = ["TIMER", "ClusterError", "remote_stages", "run_sweep"]

log = logging.getLogger(__name__)

TIMER = "timer"


class ClusterError(RuntimeError):
    """A cluster that cannot run a sweep (no reference machine, no build CPUs), with what to do."""


def _node() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


def _lookup(variant: Variant, sweep_dir: Path, cache_dir: Path, force: bool, allow_network: bool):
    from paretobert.env import resolve_variant

    out_dir = sweep_dir / resolve_variant(variant).variant_id  # named by the timer's defaults
    return pipeline.lookup(variant, out_dir, cache_dir, force=force, allow_network=allow_network), out_dir


def _build(looked, cache_dir: Path, allow_network: bool) -> pipeline.BuiltVariant:
    variant, source, _ = looked
    built = pipeline.build_variant(variant, source, cache_dir=cache_dir, progress=False, allow_network=allow_network)
    built.record["build_node"] = _node()
    return built


def _time(built: pipeline.BuiltVariant, out_dir: Path, cache_dir: Path) -> dict[str, Any]:
    built.record["timing_node"] = _node()
    return pipeline.time_variant(built, out_dir=out_dir, cache_dir=cache_dir, progress=False)


def check_cluster() -> dict[str, float]:
    """The cluster's resources; raises :class:`ClusterError` without a ``timer`` or CPUs."""
    import ray

    res = ray.cluster_resources()
    if res.get(TIMER, 0) < 1:
        raise ClusterError("no node has the 'timer' resource: start the reference machine with "
                           "ray start --head --num-cpus=0 --resources='{\"timer\": 1}'")
    if res.get("CPU", 0) < 1:
        raise ClusterError("no build CPUs in the cluster: join a build machine with ray start --address=HEAD:6379")
    return res


def remote_stages(*, build_cpus: float = 1, max_retries: int = 3) -> tuple[Any, Any, Any]:
    """The three Ray remote functions of a variant (``lookup``, ``build``, ``timing``) with
    their placement: lookup and timing on the ``timer`` node with zero CPUs, the build on one
    CPU elsewhere. :func:`run_sweep` chains them; a benchmark may call them one by one."""
    import ray

    on_timer = {"num_cpus": 0, "resources": {TIMER: 1}}
    return (ray.remote(**on_timer)(_lookup),
            ray.remote(num_cpus=build_cpus, max_retries=max_retries)(_build),
            ray.remote(max_retries=max_retries, **on_timer)(_time))


def run_sweep(variants: Sequence[Variant], sweep_dir: Path, *, cache_dir: Path, force: bool = False,
              allow_network: bool = True, build_cpus: float = 1, max_retries: int = 3) -> list[dict[str, Any]]:
    """Run ``variants`` (their CPU defaults left open: the reference machine fills them in)
    into ``sweep_dir/<variant_id>/`` on the connected Ray cluster (``ray.init`` done by the
    caller); returns their records in order. Variants already measured on the reference
    machine are reused without building."""
    import ray

    check_cluster()
    if any(v.model.arch == "tfidf" for v in variants):
        raise ClusterError("model=tfidf stores a pickle: run it on the reference machine, not on a cluster")
    lookup, build, timing = remote_stages(build_cpus=build_cpus, max_retries=max_retries)
    looked = ray.get([lookup.remote(v, Path(sweep_dir), cache_dir, force, allow_network) for v in variants])
    refs: list[Any] = []
    for found, out in looked:
        if found[2] is not None:
            refs.append(found[2])
            continue
        refs.append(timing.remote(build.remote(found, cache_dir, allow_network), out, cache_dir))
    return [r if isinstance(r, dict) else ray.get(r) for r in refs]


def main(argv: Sequence[str] | None = None) -> int:
    """``paretobert cluster [+experiment=NAME] [axis=a,b ...] --address ADDR [--sweep-dir DIR]``."""
    import argparse
    import os
    import sys
    import time

    from paretobert import compose
    from paretobert.report import write_report

    ap = argparse.ArgumentParser(
        prog="paretobert cluster",
        description="Run a sweep's grid on a Ray cluster: builds on the workers, timings on the reference machine "
                    "(the node started with the 'timer' resource).")
    ap.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. +experiment=smoke; axis=a,b,c adds an axis")
    ap.add_argument("--address", default=os.environ.get("RAY_ADDRESS", "auto"),
                    help="the Ray cluster (default $RAY_ADDRESS or auto)")
    ap.add_argument("--sweep-dir", help="default multirun/cluster-<time> (on a path the reference machine sees)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    try:
        space, fixed = compose.sweep_space(list(args.overrides))
        combos = compose.grid(space, fixed) if space else [fixed]
        composed = [compose.variant_of(o, resolve=False) for o in combos]
    except Exception as e:  # noqa: BLE001 - a bad value or Hydra's composition error: one line
        print(compose.error_line(e), file=sys.stderr)
        return 2
    import ray

    try:
        ray.init(address=args.address, logging_level=logging.WARNING)
    except Exception as e:  # noqa: BLE001 - no cluster there: one line
        print(f"error: cannot connect to Ray at {args.address!r}: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    sweep = Path(args.sweep_dir or f"multirun/cluster-{time.strftime('%Y-%m-%d_%H-%M-%S')}").resolve()
    conf = composed[0][0]
    try:
        recs = run_sweep([v for _, v in composed], sweep, cache_dir=Path(conf.cache_dir).expanduser(), force=conf.force,
                         allow_network=conf.allow_network)
    except ClusterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for rec in recs:
        print(pipeline.format_result_line(rec))
    out = write_report(sweep)
    print(f"cluster sweep: {sum(r.get('status') == 'ok' for r in recs)} of {len(recs)} ok; report: {out['frontier']}")
    return 0
