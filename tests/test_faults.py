"""Fault injection on real smoke sweeps (slow: `make test` runs these, `make test-fast` skips).

Kills at random moments (SIGKILL, SIGTERM, SIGINT), two sweeps on one cache at once, and bad
input through the command line: afterwards the results must equal a clean run's (a fine-tune
killed mid-way resumes from its snapshot, taken after every step here, to the same accuracy),
no cached artifact may be trusted that is incomplete, and no error may be a bare traceback.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from paretobert.store import META_FILE, integrity_problems, read_json

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SMOKE = ("-m", "paretobert", "+experiment=smoke", "allow_network=false")
KILLS = int(os.environ.get("PARETOBERT_FAULT_KILLS", "4"))


def _env(cache: Path) -> dict[str, str]:
    # a fine-tune snapshot after every step: kills land mid-fine-tune and the re-run resumes from one
    return {**os.environ, "PARETOBERT_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "PARETOBERT_SNAPSHOT_SECONDS": "0"}


def _run(*args: str, cache: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, env=_env(cache), capture_output=True, text=True,
                          timeout=timeout)


def _results(sweep: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/result.json")}


def _assert_cache_trustworthy(cache: Path) -> int:
    """Every artifact directory with a meta.json is intact; returns how many there are."""
    n = 0
    for meta_path in cache.glob("*/*/" + META_FILE):
        meta = read_json(meta_path)
        assert isinstance(meta, dict), f"unreadable {meta_path}"
        assert not integrity_problems(meta_path.parent, meta), meta_path.parent
        n += 1
    return n


def test_killed_at_random_moments_the_sweep_resumes_to_the_clean_result(tmp_path):
    clean = tmp_path / "clean"
    t0 = time.monotonic()
    p = _run(*SMOKE, f"hydra.sweep.dir={clean}", cache=tmp_path / "clean-cache")
    duration = time.monotonic() - t0
    assert p.returncode == 0, p.stderr[-3000:]
    want = {vid: r["accuracy"] for vid, r in _results(clean).items()}
    assert len(want) == 4

    rng = random.Random(1234)
    signals = [signal.SIGKILL, signal.SIGTERM, signal.SIGINT]
    log = []
    for k in range(KILLS):  # each round: a fresh sweep and cache, killed twice, then resumed
        sweep, cache = tmp_path / f"sweep{k}", tmp_path / f"cache{k}"
        for attempt in range(2):
            proc = subprocess.Popen([sys.executable, *SMOKE, f"hydra.sweep.dir={sweep}"], cwd=REPO,
                                    env=_env(cache), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True)
            delay = rng.uniform(3.0, max(4.0, duration * (0.9 if attempt == 0 else 0.5)))
            sig = signals[(2 * k + attempt) % len(signals)]
            started = time.monotonic()
            try:
                proc.wait(timeout=delay)
                log.append((k, sig.name, round(delay, 1), "finished first"))
                if attempt == 0:  # a whole sweep from a fresh cache, faster than the clean run (that one
                    duration = min(duration, time.monotonic() - started)  # ran under more load): aim by it
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=60)
                snaps = len(list(cache.glob("checkpoints/.*.resume.pt")))  # a fine-tune killed mid-way
                log.append((k, sig.name, round(delay, 1), f"killed with {len(_results(sweep))} results, {snaps} "
                                                          "snapshots"))
            _assert_cache_trustworthy(cache)
            for vid, rec in _results(sweep).items():  # whatever was written is whole and right
                assert rec["status"] == "ok" and rec["accuracy"] == want[vid], (vid, log)
        final = _run(*SMOKE, f"hydra.sweep.dir={sweep}", cache=cache)
        assert final.returncode == 0, (final.stderr[-3000:], log)
        got = _results(sweep)
        assert {vid: r["accuracy"] for vid, r in got.items()} == want, log
        assert all(r["status"] == "ok" for r in got.values())
        assert _assert_cache_trustworthy(cache) >= 4  # checkpoint, onnx, int8, evaluations
        assert not list(cache.glob("*/.*.tmp")), "temp dirs of killed builds are swept by the next build"
        assert not list(cache.glob("checkpoints/.*.resume.pt*")), "finished fine-tunes leave no snapshot"
    killed = sum("killed" in entry[3] for entry in log)
    assert killed >= KILLS, log  # most attempts really interrupted a run
    print(f"faults ({killed} kills of {len(log)} attempts):", log)


def test_two_sweeps_at_once_on_one_cache(tmp_path):
    cache = tmp_path / "cache"
    procs = [subprocess.Popen([sys.executable, *SMOKE, f"hydra.sweep.dir={tmp_path / name}"], cwd=REPO,
                              env=_env(cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in ("a", "b")]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    a, b = _results(tmp_path / "a"), _results(tmp_path / "b")
    assert set(a) == set(b) and len(a) == 4  # each sweep has its own complete results
    assert all(r["status"] == "ok" for r in [*a.values(), *b.values()])
    assert {k: r["accuracy"] for k, r in a.items()} == {k: r["accuracy"] for k, r in b.items()}
    ckpts = [d for d in (cache / "checkpoints").iterdir() if d.is_dir() and not d.name.startswith(".")]
    assert len(ckpts) == 1  # the lock made the second sweep wait for the first fine-tune
    _assert_cache_trustworthy(cache)


@pytest.mark.parametrize("override,message", [
    ("model=nosuch", "Could not find 'model/nosuch'"),
    ("seq_len=0", "invalid config: seq_len=0"),
    ("runtime.threads=999", "invalid config: runtime.threads=999"),
    ("dataset=csv", "invalid config: dataset.path=None"),
    ("dataset=csv dataset.path=/nonexistent.csv", "invalid config: dataset.path='/nonexistent.csv'"),
    ("drop.strategy=sideways", "invalid config: drop.strategy='sideways'"),
    ("model=tfidf exit.threshold=0.1", "invalid config:"),
])
def test_bad_input_is_one_line_before_any_work(tmp_path, override, message):
    cache = tmp_path / "cache"
    p = _run("-m", "paretobert", *override.split(), f"hydra.run.dir={tmp_path / 'run'}", cache=cache, timeout=120)
    assert p.returncode != 0
    assert message in p.stderr, p.stderr[-2000:]
    assert "Traceback" not in p.stderr
    assert not cache.exists() or not any(cache.rglob("meta.json"))  # nothing built


def test_a_sweep_killed_mid_fine_tune_resumes_it_from_its_snapshot(tmp_path):
    """SIGKILL the moment a fine-tune's snapshot exists: the re-run says it resumed that
    fine-tune (not started over) and every result equals a clean run's."""
    clean = tmp_path / "clean"
    p = _run(*SMOKE, f"hydra.sweep.dir={clean}", cache=tmp_path / "clean-cache")
    assert p.returncode == 0, p.stderr[-3000:]
    want = {vid: r["accuracy"] for vid, r in _results(clean).items()}
    sweep, cache = tmp_path / "sweep", tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, *SMOKE, f"hydra.sweep.dir={sweep}"], cwd=REPO, env=_env(cache),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    while not list(cache.glob("checkpoints/.*.resume.pt")):
        assert proc.poll() is None and time.monotonic() < deadline, "no fine-tune snapshot seen"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    _assert_cache_trustworthy(cache)
    left = sorted(p.name for p in cache.glob("checkpoints/.*.resume.pt"))
    again = _run(*SMOKE, f"hydra.sweep.dir={sweep}", cache=cache)
    assert again.returncode == 0, again.stderr[-3000:]
    said = [line for line in (again.stdout + again.stderr).splitlines() if "resum" in line or "snapshot" in line]
    assert left and any("fine-tune: resumed at step" in line for line in said), (left, said)
    assert {vid: r["accuracy"] for vid, r in _results(sweep).items()} == want
    assert not list(cache.glob("checkpoints/.*.resume.pt*"))
