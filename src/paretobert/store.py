"""Files on disk: atomic writes, the content-addressed artifact cache, and result records.

An artifact directory is built under a temporary name and renamed into place only when
complete, with a ``meta.json`` that names its key and the size and sha256 of every file; a
directory without it is never trusted, and one whose files no longer match it (truncated,
altered, missing) is reported and rebuilt. Builds of the same key are serialised with a file
lock so two sweeps never train the same checkpoint at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

__all__ = [
    "add_cache_dir_argument",
    "RESULT_FILE",
    "Built",
    "artifact",
    "as_if_created",
    "atomic_write_json",
    "atomic_write_text",
    "swept_write_json",
    "umask",
    "DiskSpaceError",
    "ensure_free_space",
    "file_digests",
    "file_sha256",
    "find_results",
    "integrity_problems",
    "is_done",
    "Leftover",
    "leftovers",
    "load_results",
    "model_bytes",
    "prune",
    "read_json",
    "seal",
    "seal_ok",
    "stage",
]

RESULT_FILE = "result.json"
META_FILE = "meta.json"
INTEGRITY = "integrity"

log = logging.getLogger(__name__)


def umask() -> int:
    """This process's umask: read from ``/proc/self/status`` where Linux gives it, else set and
    restored at once (``os.umask`` has no read-only form)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def as_if_created(path: Path) -> None:
    """Give a file or directory made by :mod:`tempfile` (0600 / 0700, private to this user) the
    permissions a plain ``open`` or ``mkdir`` would have given it under the umask (0644 / 0755
    under the usual 022), so a published result, report or cache entry is as readable as any
    other file the user writes: a cache or an output folder shared with a group stays usable.
    Where the file system refuses a chmod (some network mounts), the file keeps its private mode
    and the first such refusal is logged as a warning."""
    try:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask())
    except OSError as e:
        if not _chmod_refused:
            _chmod_refused.append(str(path))
            log.warning("could not give %s the umask's permissions (%s): it stays readable by this user only "
                        "(later refusals are not logged)", path, e)


_chmod_refused: list[str] = []  # the first path whose chmod was refused, once logged


#: an atomic write's temporary file older than this was left by a writer killed mid-write
ATOMIC_GRACE_S = 60.0


def _temp_files(path: Path) -> Iterator[Path]:
    """The temporary files of :func:`atomic_write_text` beside ``path`` (``.NAME.RANDOM.tmp``)."""
    return path.parent.glob(f".{glob.escape(path.name)}.*.tmp")


def atomic_write_text(path: Path, text: str, *, stale_after: float | None = ATOMIC_GRACE_S) -> None:
    """Write ``text`` to ``path`` via a temp file in the same directory and ``os.replace``. A
    temp file of the same name older than ``stale_after`` seconds (:data:`ATOMIC_GRACE_S`; one
    lives for milliseconds) was left by a writer killed mid-write (SIGKILL; an exception unlinks
    it) and is deleted first; ``None``: every one, whatever its age (a caller that holds the
    file's lock, so no other writer is mid-write: :func:`swept_write_json`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for stale in _temp_files(path):
        with contextlib.suppress(OSError):  # gone already, or not ours to delete
            if stale.is_file() and (stale_after is None or now - stale.stat().st_mtime > stale_after):
                stale.unlink()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        as_if_created(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, obj: Any, *, stale_after: float | None = ATOMIC_GRACE_S) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", stale_after=stale_after)


def swept_write_json(path: Path, obj: Any) -> None:
    """:func:`atomic_write_json` for a file that several runs may write (a cached result):
    under the lock of its key (:func:`_key_of`, as :func:`leftovers` reads it), it
    first deletes the temporary files that killed writers of the same file left behind."""
    key = _key_of(path.name)
    with _locked(path.parent / f"{key}.lock"):
        atomic_write_json(path, obj, stale_after=None)  # any temp file is a killed writer's: we hold its lock


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


# what a build leaves beside the artifacts of a kind while it runs ("." names, never published):
# its temporary directory (.KEY.RANDOM.tmp), a fine-tune's snapshot and teacher logits
# (.KEY.resume.pt, .KEY.teacher.pt) and their torn writes (.KEY.resume.pt.PID.part); an
# atomic write's temporary file (.NAME.RANDOM.tmp) lives for milliseconds (ATOMIC_GRACE_S, above)
RESUMABLE = (".resume.pt", ".teacher.pt")


class Leftover(NamedTuple):
    """A build's file or directory beside the artifacts of ``kind``: its key, bytes, age, and
    whether a build of that key runs now (holds the key's lock)."""

    path: Path
    kind: str
    key: str
    bytes: int
    age_s: float
    running: bool

    @property
    def resumable(self) -> bool:
        """A fine-tune's snapshot or teacher logits: a re-run of its key resumes from it."""
        return self.path.name.endswith(RESUMABLE)


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size if path.exists() else 0


def _lock_free(lock_path: Path) -> bool:
    """True when no process holds ``lock_path`` (a non-blocking try, released at once)."""
    try:
        with open(lock_path, "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(f, fcntl.LOCK_UN)
            return True
    except OSError:
        return True


def _key_of(name: str) -> str:
    """The key a cache file or directory name belongs to (its lock is ``KEY.lock``): the name up
    to its first dot, after the leading dot of a build's leftover (``.KEY.RANDOM.tmp``)."""
    return name.removeprefix(".").split(".", 1)[0]


def leftovers(root: Path) -> list[Leftover]:
    """Everything under the cache ``root`` that a build left beside its artifacts (temporary
    directories of killed builds, snapshots and teacher logits of fine-tunes killed and never
    re-run, torn writes), and whether a build of its key is running now."""
    out: list[Leftover] = []
    root, now = Path(root).expanduser(), time.time()
    if not root.is_dir():
        return out
    for kind_dir in sorted(d for d in root.iterdir() if d.is_dir()):
        for path in sorted(kind_dir.glob(".*")):
            key = _key_of(path.name)
            lock = kind_dir / f"{key}.lock"
            try:
                age = now - path.stat().st_mtime
            except FileNotFoundError:  # finished while we looked
                continue
            running = not _lock_free(lock) if lock.exists() else age < ATOMIC_GRACE_S
            out.append(Leftover(path, kind_dir.name, key, _size(path), age, running))
    return out


def prune(root: Path, *, resumable: bool = False) -> list[Leftover]:
    """Delete the :func:`leftovers` of builds that are not running (holding each key's lock
    while deleting, so a build starting meanwhile waits); snapshots and teacher logits only
    with ``resumable`` (a re-run of their key would resume from them). Returns what was deleted."""
    gone = []
    for left in leftovers(root):
        if left.running or (left.resumable and not resumable):
            continue
        lock = left.path.parent / f"{left.key}.lock"
        if lock.exists():
            with open(lock, "a") as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # a build of this key started since we looked
                    continue
                try:
                    _remove(left.path)
                finally:
                    fcntl.flock(f, fcntl.LOCK_UN)
        else:
            _remove(left.path)
        gone.append(left)
    return gone


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def is_done(directory: Path, key: str) -> bool:
    """True when ``directory`` is a complete artifact built for ``key``."""
    meta = read_json(directory / META_FILE)
    return isinstance(meta, dict) and meta.get("key") == key


def add_cache_dir_argument(ap: Any) -> None:
    """``--cache-dir`` for a command that reads a finished sweep's artifacts (argparse)."""
    ap.add_argument("--cache-dir", default=os.environ.get("PARETOBERT_CACHE", "~/.cache/paretobert"),
                    help="the artifact cache the sweep used (default $PARETOBERT_CACHE or ~/.cache/paretobert)")


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_digests(directory: Path) -> dict[str, dict[str, Any]]:
    """``{relative path: {"size", "sha256"}}`` of every file under ``directory`` but meta.json."""
    return {
        p.relative_to(directory).as_posix(): {"size": p.stat().st_size, "sha256": file_sha256(p)}
        for p in sorted(directory.rglob("*")) if p.is_file() and p.name != META_FILE
    }


def integrity_problems(directory: Path, meta: dict[str, Any]) -> list[str]:
    """What no longer matches the digests recorded at build time (empty: intact). Artifacts
    built before digests were recorded cannot be checked and pass."""
    want = meta.get(INTEGRITY)
    if not isinstance(want, dict):
        return []
    problems = []
    for rel, d in want.items():
        p = directory / rel
        if not p.is_file():
            problems.append(f"{rel} missing")
        elif p.stat().st_size != d.get("size"):
            problems.append(f"{rel} has {p.stat().st_size} bytes, built with {d.get('size')}")
        elif file_sha256(p) != d.get("sha256"):
            problems.append(f"{rel} altered (sha256 differs)")
    return problems


def _intact(directory: Path, key: str) -> dict[str, Any] | None:
    """The metadata of a complete artifact built for ``key`` whose files still match their
    digests; None otherwise (a mismatch is logged: the caller rebuilds)."""
    meta = read_json(directory / META_FILE)
    if not isinstance(meta, dict) or meta.get("key") != key:
        return None
    problems = integrity_problems(directory, meta)
    if problems:
        log.warning("corrupt cached artifact %s (%s): rebuilding it", directory, "; ".join(problems))
        return None
    return meta


def artifact(
    root: Path, kind: str, key: str, build: Callable[[Path], dict[str, Any]]
) -> tuple[Path, dict[str, Any], bool]:
    """The cached artifact ``root/kind/key``, built by ``build(tmp_dir)`` if absent.

    ``build`` writes its files into the temporary directory it is given and returns
    metadata; the directory is renamed into place with ``meta.json`` only on success.
    The files are checked against their recorded digests before reuse. Returns (directory,
    metadata, reused).
    """
    final = root / kind / key
    if (meta := _intact(final, key)) is not None:
        return final, meta, True
    with _locked(root / kind / f"{key}.lock"):
        if (meta := _intact(final, key)) is not None:  # built by a concurrent run while we waited
            return final, meta, True
        for stale in (root / kind).glob(f".{key}.*.tmp"):  # left by a killed build (we hold its lock)
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(dir=root / kind, prefix=f".{key}.", suffix=".tmp"))
        try:
            meta = dict(build(tmp))
            meta["key"] = key
            meta[INTEGRITY] = file_digests(tmp)
            atomic_write_json(tmp / META_FILE, meta)
            as_if_created(tmp)
            if final.exists():
                shutil.rmtree(final)  # incomplete or stale leftover
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final, meta, False


class Built(NamedTuple):
    """A stage's artifact: its cache key, directory, metadata and whether it was reused."""

    key: str
    dir: Path
    meta: dict[str, Any]
    reused: bool


def stage(root: Path, kind: str, key: str, build: Callable[[Path], dict[str, Any]]) -> Built:
    """:func:`artifact` as a :class:`Built` value (what every stage returns)."""
    d, meta, reused = artifact(root, kind, key, build)
    return Built(key, d, meta, reused)


class DiskSpaceError(OSError):
    """Not enough free space for an artifact, with what to do."""


def ensure_free_space(directory: Path, need_bytes: float, what: str) -> None:
    """Raise :class:`DiskSpaceError` unless ``directory``'s file system has ``need_bytes`` free
    (checked before large writes, so a full disk fails a variant cleanly and early)."""
    free = shutil.disk_usage(directory).free
    if free < need_bytes:
        raise DiskSpaceError(
            f"only {free / 1e6:.0f} MB free under {directory}; {what} needs about {need_bytes / 1e6:.0f} MB: "
            "free some space (old artifacts under cache_dir can go) or set cache_dir elsewhere")


SEAL = "record_sha256"


def seal(rec: dict[str, Any]) -> dict[str, Any]:
    """``rec`` with the sha256 of its canonical JSON (without the seal) under ``record_sha256``."""
    body = {k: v for k, v in rec.items() if k != SEAL}
    blob = json.dumps(body, sort_keys=True, default=str, separators=(",", ":"))
    return {**body, SEAL: hashlib.sha256(blob.encode()).hexdigest()}


def seal_ok(rec: dict[str, Any]) -> bool:
    """False when a sealed record was altered since it was written (unsealed ones pass)."""
    return SEAL not in rec or seal(rec)[SEAL] == rec[SEAL]


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


def model_bytes(path: Path) -> int:
    """Bytes on disk of a model file and the files that belong to it: ONNX external data
    (``NAME.data*``), an OpenVINO IR's weights (``NAME.bin`` beside ``NAME.xml``)."""
    total = path.stat().st_size
    for f in path.parent.glob(f"{path.name}.data*"):
        total += f.stat().st_size
    if path.suffix == ".xml" and path.with_suffix(".bin").is_file():
        total += path.with_suffix(".bin").stat().st_size
    return total
