"""The machine lock: builds share the machine, a timing has it alone, overlaps are found."""

from __future__ import annotations

import multiprocessing as mp
import time

import pytest

from paretobert import schedule


def _hold(name: str, kind: str, seconds: float, events, lock: str) -> None:
    import os

    os.environ["PARETOBERT_MACHINE_LOCK"] = lock
    with (schedule.building() if kind == "build" else schedule.timing()):
        events.put((name, "in", time.time()))
        time.sleep(seconds)
        events.put((name, "out", time.time()))


class _Holds:
    """Processes holding the lock; ``start`` returns once the process is in (or ``wait=False``)."""

    def __init__(self, lock: str) -> None:
        self.ctx, self.lock, self.procs, self.t = mp.get_context("spawn"), lock, [], {}
        self.q = self.ctx.Queue()

    def start(self, name: str, kind: str, seconds: float, *, wait: bool = True) -> None:
        p = self.ctx.Process(target=_hold, args=(name, kind, seconds, self.q, self.lock))
        p.start()
        self.procs.append(p)
        if wait:
            self._until(name, "in")
        else:
            time.sleep(0.5)  # long enough to start and block on the lock

    def _until(self, name: str, what: str) -> None:
        while (name, what) not in self.t:
            n, w, t = self.q.get(timeout=30)
            self.t[(n, w)] = t

    def finish(self) -> dict[tuple[str, str], float]:
        for p in self.procs:
            p.join(30)
        while not self.q.empty():
            n, w, t = self.q.get()
            self.t[(n, w)] = t
        return self.t


def test_builds_share_the_machine_and_a_timing_waits_for_them(tmp_path):
    h = _Holds(str(tmp_path / "m.lock"))
    h.start("b1", "build", 1.5)
    h.start("b2", "build", 1.5)  # gets in while b1 holds the machine
    h.start("t", "time", 0.1, wait=False)
    t = h.finish()
    assert t[("b2", "in")] < t[("b1", "out")]
    assert t[("t", "in")] >= max(t[("b1", "out")], t[("b2", "out")])


def test_a_build_waits_for_a_running_timing(tmp_path):
    h = _Holds(str(tmp_path / "m.lock"))
    h.start("t", "time", 1.0)
    h.start("b", "build", 0.1, wait=False)
    t = h.finish()
    assert t[("b", "in")] >= t[("t", "out")]


def test_a_timing_that_must_wait_says_so_before_it_blocks(tmp_path, monkeypatch, caplog):
    import threading

    monkeypatch.setenv("PARETOBERT_MACHINE_LOCK", str(tmp_path / "m.lock"))
    h = _Holds(str(tmp_path / "m.lock"))
    h.start("b", "build", 1.0)
    with caplog.at_level("INFO", logger="paretobert.schedule"):
        done = threading.Event()

        def time_one() -> None:
            with schedule.timing():
                done.set()

        threading.Thread(target=time_one, daemon=True).start()
        deadline = time.time() + 5
        while "waits for the machine" not in caplog.text and time.time() < deadline:
            time.sleep(0.05)
        assert "this timing waits for the machine: a build or a timing" in caplog.text
        assert not done.is_set()  # still blocked while the build holds the machine
    h.finish()
    assert done.wait(10)


def test_an_uncontended_lock_says_nothing(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("PARETOBERT_MACHINE_LOCK", str(tmp_path / "m.lock"))
    with caplog.at_level("INFO", logger="paretobert.schedule"), schedule.timing():
        pass
    assert "waits" not in caplog.text


def _rec(vid: str, host: str, start: str, end: str, pid: int = 1) -> dict:
    return {"variant_id": vid, "timing_window": {"host": host, "pid": pid, "started_at": f"2026-01-01T00:00:{start}+00:00",
                                                 "ended_at": f"2026-01-01T00:00:{end}+00:00"}}


def test_overlaps_are_same_host_intersecting_windows_of_different_holds():
    recs = [_rec("a", "h1", "00", "10"), _rec("b", "h1", "09", "12", pid=2), _rec("c", "h2", "05", "06"),
            _rec("d", "h1", "12", "13", pid=3), {"variant_id": "old"}]
    assert schedule.overlaps(recs) == [("a", "b", "h1")]  # b ends as d starts: no overlap; other host: none
    # one retime holds the machine once for all its variants: they do not overlap each other
    assert schedule.overlaps([_rec("a", "h1", "00", "10"), _rec("b", "h1", "00", "10")]) == []


def test_the_timing_window_is_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv("PARETOBERT_MACHINE_LOCK", str(tmp_path / "m.lock"))
    with schedule.timing() as w:
        time.sleep(0.01)
    assert w["host"] == schedule.host() and w["waited_s"] >= 0 and w["ended_at"] > w["started_at"]
    assert schedule.timing_window({"timing_window": w})[0] == schedule.host()


@pytest.mark.parametrize("kind", ["build", "time"])
def test_the_lock_file_is_machine_local_and_configurable(tmp_path, monkeypatch, kind):
    monkeypatch.setenv("PARETOBERT_MACHINE_LOCK", str(tmp_path / "sub" / "m.lock"))
    with (schedule.building() if kind == "build" else schedule.timing()):
        assert (tmp_path / "sub" / "m.lock").exists()


def test_the_report_calls_overlapping_timings_an_error(tmp_path, variant_of, caplog):
    import json

    import pandas as pd

    from paretobert import pipeline
    from paretobert.config import BenchConfig
    from paretobert.report import write_report
    from paretobert.store import atomic_write_json, seal

    sweep, cache = tmp_path / "sweep", tmp_path / "cache"
    bench = BenchConfig(warmup=1, min_iters=3, min_seconds=0.0, max_seconds=1.0, n_texts=3)
    recs = [pipeline.run_variant(variant_of(quant=q, bench=bench), out_dir=sweep / f"v{q}", cache_dir=cache,
                                 progress=False) for q in (False, True)]
    assert schedule.overlaps(recs) == []  # one after the other under the lock
    write_report(sweep)
    assert pd.read_csv(sweep / "results.csv")["timing_overlap"].isna().all()
    # a second process timed the int8 variant inside the fp32 one's window
    late = json.loads((sweep / "vTrue" / "result.json").read_text())
    late["timing_window"] = {**recs[0]["timing_window"], "pid": -1}
    atomic_write_json(sweep / "vTrue" / "result.json", seal(late))
    with caplog.at_level("ERROR"):
        write_report(sweep)
    table = pd.read_csv(sweep / "results.csv").set_index("variant_id")
    assert table.loc[recs[0]["variant_id"], "timing_overlap"] == recs[1]["variant_id"]
    assert "re-time the sweep alone" in caplog.text
