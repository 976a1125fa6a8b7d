"""Files on disk: atomic writes, the content-addressed artifact cache, and result records.

An artifact directory is built under a temporary name and renamed into place only when
complete, with a ``meta.json`` that names its key; a directory without it is never trusted.
Builds of the same key are serialised with a file lock so two sweeps never train the same
checkpoint at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "RESULT_FILE",
    "artifact",
    "atomic_write_json",
    "atomic_write_text",
    "find_results",
    "is_done",
    "load_results",
    "read_json",
]

RESULT_FILE = "result.json"
META_FILE = "meta.json"


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same directory and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: Path) -> Any | None:
    """The parsed JSON at ``path``, or None when missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def is_done(directory: Path, key: str) -> bool:
    """True when ``directory`` is a complete artifact built for ``key``."""
    meta = read_json(directory / META_FILE)
    return isinstance(meta, dict) and meta.get("key") == key


def artifact(
    root: Path, kind: str, key: str, build: Callable[[Path], dict[str, Any]]
) -> tuple[Path, dict[str, Any], bool]:
    """The cached artifact ``root/kind/key``, built by ``build(tmp_dir)`` if absent.

    ``build`` writes its files into the temporary directory it is given and returns
    metadata; the directory is renamed into place with ``meta.json`` only on success.
    Returns (directory, metadata, reused).
    """
    final = root / kind / key
    if is_done(final, key):
        return final, read_json(final / META_FILE), True
    with _locked(root / kind / f"{key}.lock"):
        if is_done(final, key):  # built by a concurrent run while we waited
            return final, read_json(final / META_FILE), True
        tmp = Path(tempfile.mkdtemp(dir=root / kind, prefix=f".{key}.", suffix=".tmp"))
        try:
            meta = dict(build(tmp))
            meta["key"] = key
            atomic_write_json(tmp / META_FILE, meta)
            if final.exists():
                shutil.rmtree(final)  # incomplete or stale leftover
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final, meta, False


def find_results(sweep_dir: Path) -> list[Path]:
    """Every ``result.json`` below ``sweep_dir``, sorted."""
    return sorted(Path(sweep_dir).rglob(RESULT_FILE))


def load_results(sweep_dir: Path) -> list[dict[str, Any]]:
    """The result records of a sweep directory (unreadable files are skipped)."""
    out = []
    for path in find_results(sweep_dir):
        rec = read_json(path)
        if isinstance(rec, dict):
            rec.setdefault("job_dir", str(path.parent))
            out.append(rec)
    return out
