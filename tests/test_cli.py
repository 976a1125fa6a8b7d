"""End to end through the command line, as a user runs it (slow: `make test` runs these)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str, cache: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PARETOBERT_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_smoke_sweep_end_to_end(tmp_path):
    sweep, cache = tmp_path / "sweep", tmp_path / "cache"
    p = _run("-m", "paretobert", "+experiment=smoke", f"hydra.sweep.dir={sweep}", "allow_network=false",
             cache=cache)
    assert p.returncode == 0, p.stderr[-3000:]
    results = sorted(sweep.glob("*/result.json"))
    assert len(results) == 4
    recs = [json.loads(r.read_text()) for r in results]
    assert all(r["status"] == "ok" for r in recs), [r.get("error") for r in recs]
    assert {r["variant_id"] for r in recs} == {r.parent.name for r in results}  # stable job dirs
    assert {(r["quant"], r["seq_len"]) for r in recs} == {(True, 32), (True, 64), (False, 32), (False, 64)}
    assert len({r["train_key"] for r in recs}) == 1  # one fine-tune serves the four variants
    table = pd.read_csv(sweep / "results.csv")
    assert len(table) == 4 and {"variant_id", "status", "accuracy", "latency_p50_ms"} <= set(table.columns)
    front = pd.read_csv(sweep / "frontier.csv")
    assert 1 <= len(front) <= 4 and set(front["variant_id"]) <= set(table["variant_id"])
    assert (sweep / "frontier.png").stat().st_size > 1000

    # a re-run skips every variant already done
    again = _run("-m", "paretobert", "+experiment=smoke", f"hydra.sweep.dir={sweep}", "allow_network=false",
                 cache=cache)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (again.stdout + again.stderr).count("done already") == 4
    assert [json.loads(r.read_text())["started_at"] for r in results] == [r["started_at"] for r in recs]

    # the report CLI rebuilds the three files
    (sweep / "frontier.csv").unlink()
    rep = _run("-m", "paretobert.report", str(sweep), cache=cache)
    assert rep.returncode == 0 and (sweep / "frontier.csv").exists(), rep.stderr


def test_failed_variant_is_recorded_and_the_sweep_goes_on(tmp_path):
    sweep = tmp_path / "sweep"
    p = _run("-m", "paretobert", "+experiment=smoke", f"hydra.sweep.dir={sweep}", "allow_network=false",
             "quant=false", "seq_len=32,9999", cache=tmp_path / "cache")
    assert p.returncode == 0, p.stderr[-3000:]
    table = pd.read_csv(sweep / "results.csv")
    assert sorted(table["status"]) == ["failed", "ok"]
    assert "seq_len" in table.loc[table["status"] == "failed", "error"].iloc[0]
    # two invalid variants in one sweep: two failed records, neither overwrites the other
    two = tmp_path / "two"
    p = _run("-m", "paretobert", "+experiment=smoke", f"hydra.sweep.dir={two}", "allow_network=false",
             "quant=false", "seq_len=9998,9999", cache=tmp_path / "cache")
    assert p.returncode == 0, p.stderr[-3000:]
    failed = pd.read_csv(two / "results.csv")
    assert len(failed) == 2 and (failed["status"] == "failed").all()
    assert sorted(e.split("seq_len=")[1][:4] for e in failed["error"]) == ["9998", "9999"]


def test_invalid_config_is_one_clear_line(tmp_path):
    p = _run("-m", "paretobert", "seq_len=9999", f"hydra.run.dir={tmp_path}/run", cache=tmp_path / "c", timeout=60)
    assert p.returncode == 2
    assert "error: invalid config: seq_len=9999; accepted: <= model.max_position=512" in p.stderr
    assert "Traceback" not in p.stderr


def test_frontier_is_stable_across_two_runs_and_a_retime(tmp_path):
    """The smoke sweep (micro + TF-IDF, 300 test texts, 3 timing rounds) run twice and
    re-timed once: every pair of variants whose intervals are apart on both objectives is
    judged alike in all three, and a point clearly dominated in one is on no frontier."""
    import shutil

    from paretobert.frontier import noise_aware_frontier, separated_dominance

    cache = tmp_path / "cache"
    args = ("+experiment=smoke", "model=micro,tfidf", "dataset.max_train=300", "dataset.max_test=300",
            "bench.repeats=3", "allow_network=false")
    runs = {}
    for name, extra in (("first", ()), ("second", ("force=true",))):  # force: measured again
        p = _run("-m", "paretobert", *args, *extra, f"hydra.sweep.dir={tmp_path / name}", cache=cache)
        assert p.returncode == 0, p.stderr[-3000:]
        runs[name] = tmp_path / name
    shutil.copytree(tmp_path / "first", tmp_path / "retimed")
    p = _run("-m", "paretobert", "retime", str(tmp_path / "retimed"), "--rounds", "2", "--cache-dir", str(cache),
             cache=cache)
    assert p.returncode == 0, p.stderr[-3000:]
    runs["retimed"] = tmp_path / "retimed"

    tables = {k: pd.read_csv(d / "results.csv") for k, d in runs.items()}
    assert all(len(t) == 8 and (t["status"] == "ok").all() for t in tables.values())
    assert (tables["retimed"]["latency_rounds"] == 2).all()  # the re-timed rounds replace the first ones
    relations = {k: separated_dominance(t, key="hash") for k, t in tables.items()}
    common = set.intersection(*(set(r) for r in relations.values()))
    assert len(common) >= 8, relations  # the check below is not vacuous
    for pair in common:
        assert len({r[pair] for r in relations.values()}) == 1, (pair, {k: r[pair] for k, r in relations.items()})
    losers = {r[pair] == pair[0] and pair[1] or pair[0] for r in relations.values() for pair in r
              if r[pair] != "neither"}
    for k, t in tables.items():
        front = set(noise_aware_frontier(t)["hash"])
        assert not front & losers, (k, front & losers)
        assert set(pd.read_csv(runs[k] / "frontier.csv")["hash"]) == front


def test_joblib_launcher_builds_in_parallel_and_times_one_at_a_time(tmp_path):
    """hydra/launcher=joblib with 2 workers: every variant ok from two worker processes, one
    fine-tune shared (the store's build lock), and no two timings at once (the machine lock)."""
    from paretobert import schedule

    sweep = tmp_path / "sweep"
    p = _run("-m", "paretobert", "+experiment=smoke", f"hydra.sweep.dir={sweep}", "allow_network=false",
             "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", cache=tmp_path / "cache")
    assert p.returncode == 0, p.stderr[-3000:]
    recs = [json.loads(r.read_text()) for r in sorted(sweep.glob("*/result.json"))]
    assert len(recs) == 4 and all(r["status"] == "ok" for r in recs), [r.get("error") for r in recs]
    assert len({r["pid"] for r in recs}) == 2 and len({r["train_key"] for r in recs}) == 1
    assert schedule.overlaps(recs) == [] and len({r["timing_window"]["pid"] for r in recs}) == 2
    windows = sorted((r["timing_window"]["started_at"], r["timing_window"]["ended_at"]) for r in recs)
    assert all(end <= nxt for (_, end), (nxt, _) in zip(windows, windows[1:], strict=False))
    assert (sweep / "frontier.csv").exists()


def test_search_evaluates_a_budget_and_reuses_what_is_done(tmp_path):
    """paretobert search over the smoke sweep's axes: 2 of its 4 variants, one fine-tune for
    both; a second search into the same sweep with a bigger budget reuses those 2 results."""
    sweep, cache = tmp_path / "search", tmp_path / "cache"
    args = ("-m", "paretobert", "search", "+experiment=smoke", "allow_network=false", "--sweep-dir", str(sweep))
    p = _run(*args, "--budget", "2", cache=cache)
    assert p.returncode == 0, p.stderr[-3000:]
    recs = [json.loads(r.read_text()) for r in sorted(sweep.glob("*/result.json"))]
    assert len(recs) == 2 and all(r["status"] == "ok" for r in recs)
    assert len({r["train_key"] for r in recs}) == 1 and len([d for d in (cache / "checkpoints").iterdir() if d.is_dir()]) == 1
    assert (sweep / "frontier.csv").exists() and json.loads((sweep / "search.json").read_text())["grid"] == 4
    again = _run(*args, "--budget", "4", cache=cache)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (again.stdout + again.stderr).count("done already") == 2 and len(list(sweep.glob("*/result.json"))) == 4
    bad = _run("-m", "paretobert", "search", "model=tiny", cache=cache)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error: nothing to search")
