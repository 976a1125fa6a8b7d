"""paretobert cluster on a local Ray cluster: a head with the `timer` resource and no CPUs
(the reference machine) and two one-CPU workers, all on this machine (slow)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from paretobert import compose, distributed, pipeline, schedule  # noqa: E402
from paretobert.retime import variant_from_dict  # noqa: E402
from paretobert.store import META_FILE, read_json  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    """One cluster for the module (each new Ray worker imports torch: tens of seconds on 2
    cores); the kill test runs last, it replaces the workers."""
    from ray.cluster_utils import Cluster

    # the nodes inherit the suite's own machine lock (conftest)
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "resources": {distributed.TIMER: 1}})
    workers = [c.add_node(num_cpus=1) for _ in range(2)]
    ray.init(address=c.address, logging_level="WARNING")
    try:
        yield c, workers
    finally:
        ray.shutdown()
        c.shutdown()


def _smoke(*extra: str) -> list:
    space, fixed = compose.sweep_space(["+experiment=smoke", "allow_network=false", *extra])
    return [compose.variant_of(o, resolve=False)[1] for o in compose.grid(space, fixed)]


def _trusted(cache: Path) -> None:
    """Every artifact in the cache is complete (its meta.json written last), no build left half-done."""
    for kind in cache.iterdir():
        if kind.is_dir() and kind.name not in ("results", "data", "peaks"):
            for d in kind.iterdir():
                if d.is_dir() and not d.name.startswith("."):
                    assert isinstance(read_json(d / META_FILE), dict), d


def test_builds_on_workers_timings_on_the_reference_machine(cluster, tmp_path):
    c, workers = cluster
    cache = tmp_path / "cache"
    recs = distributed.run_sweep(_smoke(), tmp_path / "sweep", cache_dir=cache)
    assert len(recs) == 4 and all(r["status"] == "ok" for r in recs), [r.get("error") for r in recs]
    assert {r["build_node"] for r in recs} <= {w.node_id for w in workers}
    assert {r["timing_node"] for r in recs} == {c.head_node.node_id}
    assert schedule.overlaps(recs) == [] and len({r["train_key"] for r in recs}) == 1
    # the same variants run serially on this machine: the same accuracy, to the last digit
    for rec in recs:
        v = variant_from_dict(rec["variant"])
        serial = pipeline.run_variant(v, out_dir=tmp_path / "serial" / v.variant_id, cache_dir=tmp_path / "cache2",
                                      progress=False)
        assert serial["variant_id"] == rec["variant_id"] and serial["accuracy"] == rec["accuracy"]
    # a re-run reuses every result, building nothing
    again = distributed.run_sweep(_smoke(), tmp_path / "sweep", cache_dir=cache)
    assert [r["started_at"] for r in again] == [r["started_at"] for r in recs]


def test_the_cluster_command_runs_a_sweep_grid(cluster, tmp_path):
    import json
    import os
    import subprocess
    import sys

    c, _ = cluster
    env = {**os.environ, "PARETOBERT_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    p = subprocess.run([sys.executable, "-m", "paretobert", "cluster", "+experiment=smoke", "allow_network=false",
                        "quant=false", "--address", c.address, "--sweep-dir", str(tmp_path / "sweep")],
                       cwd=Path(__file__).resolve().parents[1], env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    recs = [json.loads(f.read_text()) for f in (tmp_path / "sweep").glob("*/result.json")]
    assert len(recs) == 2 and all(r["status"] == "ok" and r["timing_node"] == c.head_node.node_id for r in recs)
    assert (tmp_path / "sweep" / "frontier.csv").exists() and "cluster sweep: 2 of 2 ok" in p.stdout


def test_a_cluster_without_a_reference_machine_is_refused(monkeypatch):
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 4.0})
    with pytest.raises(distributed.ClusterError, match="timer"):
        distributed.check_cluster()
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"timer": 1.0})
    with pytest.raises(distributed.ClusterError, match="build CPUs"):
        distributed.check_cluster()


def test_a_worker_killed_mid_build_leaves_nothing_trusted_and_the_sweep_completes(cluster, tmp_path):
    c, workers = cluster
    cache = tmp_path / "cache"
    variants = _smoke("train.epochs=40")  # a fine-tune long enough to be killed in
    out: dict = {}
    t = threading.Thread(target=lambda: out.update(recs=distributed.run_sweep(variants, tmp_path / "sweep",
                                                                              cache_dir=cache)))
    t.start()
    deadline = time.time() + 120
    while not list((cache / "checkpoints").glob(".*.tmp")) and time.time() < deadline:
        time.sleep(0.2)
    assert list((cache / "checkpoints").glob(".*.tmp")), "no fine-tune started"
    for w in workers:  # the build machines die mid-build (SIGKILL); a new one joins
        c.remove_node(w, allow_graceful=False)
    c.add_node(num_cpus=1)
    t.join(600)
    assert not t.is_alive()
    _trusted(cache)
    recs = out["recs"]
    assert len(recs) == 4 and all(r["status"] == "ok" for r in recs), [r.get("error") for r in recs]
    again = distributed.run_sweep(variants, tmp_path / "sweep", cache_dir=cache)
    assert all(r["status"] == "ok" for r in again)
