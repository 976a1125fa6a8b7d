"""Sharing one machine between builds and timings.

A latency is only true when nothing else ran on the machine while it was measured. Every
process of paretobert on a machine (parallel launcher workers, two sweeps, a ``retime``)
takes one machine-wide lock file: a **build** (fine-tune, export, quantize, evaluate) holds
it shared, so builds run beside each other; a **timing** holds it exclusive, so it waits
until no build and no other timing runs, and none starts until it is done. Each timing
records where and when it ran (:func:`timing_window`); :func:`overlaps` finds two timings of
one host whose windows intersect (a process that ignored the lock, or a host whose lock
file is not shared by everything running there), which the report calls an error.

Why a lock and not a build phase followed by a serial timing phase: every job stays
whole (its record is complete when it ends, so an interrupted sweep loses nothing), it
works the same under every Hydra launcher and across sweeps and processes, and timing
still starts as soon as the CPU is free. A timing waits for the builds running when it
asks; the lock does not favour waiting timings, so with many workers it may wait several
builds (each worker alternates build and timing, so it never waits forever).

The lock file is machine-local (``$PARETOBERT_MACHINE_LOCK``, default
``<tmp>/paretobert-machine.lock``): never put it on a shared filesystem, where it would
serialise every machine's builds behind one timing. Measurement code (no Hydra here).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import os
import socket
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["building", "host", "lock_path", "overlaps", "timing", "timing_window"]


def lock_path() -> Path:
    """This machine's lock file (``$PARETOBERT_MACHINE_LOCK`` or ``<tmp>/paretobert-machine.lock``)."""
    return Path(os.environ.get("PARETOBERT_MACHINE_LOCK") or Path(tempfile.gettempdir()) / "paretobert-machine.lock")


def host() -> str:
    """This machine's name as recorded with every build and timing."""
    return socket.gethostname()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


@contextlib.contextmanager
def _flock(mode: int, what: str) -> Iterator[float]:
    path = lock_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        t0 = time.perf_counter()
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:  # say so before blocking: a wait of an hour must not look like a hang
            held = "a timing" if mode == fcntl.LOCK_SH else "a build or a timing"
            log.info("%s waits for the machine: %s of another paretobert process holds %s; it starts when "
                     "that ends", what, held, path)
            fcntl.flock(fd, mode)
        try:
            yield time.perf_counter() - t0
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


_timing_here: list[bool] = []  # non-empty while this process holds the machine for a timing


@contextlib.contextmanager
def building() -> Iterator[float]:
    """Hold the machine shared (beside other builds, never beside a timing); yields the
    seconds waited. Do not nest :func:`timing` inside it: one process would wait for itself.
    Inside this process's own :func:`timing` it takes nothing (the machine is already its
    own; asking would wait for itself) and yields 0."""
    if _timing_here:
        yield 0.0
        return
    with _flock(fcntl.LOCK_SH, "this build") as waited:
        yield waited


@contextlib.contextmanager
def timing() -> Iterator[dict[str, Any]]:
    """Hold the machine alone for one timing; yields the window record, filled on exit:
    ``host``, ``pid``, ``waited_s`` (for the lock), ``started_at`` / ``ended_at`` (UTC ISO,
    microseconds) and ``lock`` (the lock file's path)."""
    window: dict[str, Any] = {"host": host(), "pid": os.getpid(), "lock": str(lock_path())}
    with _flock(fcntl.LOCK_EX, "this timing") as waited:
        window.update(waited_s=round(waited, 3), started_at=_now())
        _timing_here.append(True)
        try:
            yield window
        finally:
            _timing_here.pop()
            window["ended_at"] = _now()


def timing_window(rec: dict[str, Any]) -> tuple[str, dt.datetime, dt.datetime] | None:
    """(host, start, end) of a record's timing, or None for a record from before the lock."""
    w = rec.get("timing_window")
    if not isinstance(w, dict) or not w.get("started_at") or not w.get("ended_at"):
        return None
    return str(w.get("host")), dt.datetime.fromisoformat(w["started_at"]), dt.datetime.fromisoformat(w["ended_at"])


def overlaps(records: Sequence[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """Every pair of records timed on one host in windows that intersect:
    (variant_id, variant_id, host), in start order. Records that share one hold of the lock
    (``retime`` times all its variants, interleaved, in one) do not overlap each other."""
    spans = sorted(((w, r.get("variant_id", "?"), _hold(r)) for r in records if (w := timing_window(r)) is not None),
                   key=lambda s: s[0][1])
    out = []
    for i, ((h, _start, end), vid, hold) in enumerate(spans):
        for (h2, start2, _), vid2, hold2 in spans[i + 1:]:
            if start2 >= end:
                break
            if h2 == h and hold2 != hold:
                out.append((vid, vid2, h))
    return out


def _hold(rec: dict[str, Any]) -> tuple[Any, ...]:
    w = rec["timing_window"]
    return w.get("host"), w.get("pid"), w.get("started_at")
