"""``paretobert cache [--cache-dir DIR] [--prune] [--prune-snapshots]``: what the artifact
cache holds per kind, and what builds left beside it (temporary directories of killed builds,
snapshots and teacher logits of fine-tunes killed and never re-run), which ``--prune``
deletes unless a build of that key is running now."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from paretobert.store import Leftover, add_cache_dir_argument, leftovers, prune

__all__ = ["main", "usage"]

MB = 1e6


def usage(root: Path) -> list[tuple[str, int, int]]:
    """(kind, artifacts, bytes) per kind directory of the cache, leftovers and locks excluded."""
    out = []
    for kind in sorted(d for d in root.iterdir() if d.is_dir()):
        items = [p for p in kind.iterdir() if not p.name.startswith(".") and not p.name.endswith(".lock")]
        size = sum(f.stat().st_size for p in items for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file())
        out.append((kind.name, len(items), size))
    return out


def _age(seconds: float) -> str:
    for unit, n in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= n:
            return f"{seconds / n:.1f} {unit}"
    return f"{seconds:.0f} s"


def _why(left: Leftover) -> str:
    if left.running:
        return "a build of this key is running: kept"
    if left.resumable:
        return "of a fine-tune not running now: its re-run resumes from it (--prune-snapshots deletes it)"
    return "left by a build that ended or was killed: nothing trusts it (--prune deletes it)"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="paretobert cache", description=__doc__.splitlines()[0])
    add_cache_dir_argument(ap)
    ap.add_argument("--prune", action="store_true",
                    help="delete leftovers of builds not running (temporary directories, torn writes)")
    ap.add_argument("--prune-snapshots", action="store_true",
                    help="with --prune: also the snapshots and teacher logits of fine-tunes not running "
                         "(their re-run would start over)")
    args = ap.parse_args(argv)
    root = Path(args.cache_dir).expanduser()
    if not root.is_dir():
        print(f"error: no cache at {root} (--cache-dir or $PARETOBERT_CACHE)", file=sys.stderr)
        return 2
    rows = usage(root)
    print(f"cache {root}: {sum(r[2] for r in rows) / MB:,.1f} MB in {sum(r[1] for r in rows)} artifacts")
    for kind, n, size in rows:
        print(f"  {kind:<14} {n:>5} artifact{'' if n == 1 else 's'} {size / MB:>10,.1f} MB")
    left = leftovers(root)
    print(f"leftovers: {len(left)} ({sum(x.bytes for x in left) / MB:,.1f} MB)")
    for x in left:
        print(f"  {x.path.relative_to(root)}  {x.bytes / MB:,.1f} MB, last written {_age(x.age_s)} ago: {_why(x)}")
    if args.prune or args.prune_snapshots:
        gone = prune(root, resumable=args.prune_snapshots)
        print(f"pruned {len(gone)} ({sum(x.bytes for x in gone) / MB:,.1f} MB): "
              + (", ".join(str(x.path.relative_to(root)) for x in gone) or "nothing"))
    return 0
