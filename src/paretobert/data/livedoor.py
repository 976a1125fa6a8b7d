"""The livedoor news corpus, read from the official ``ldcc-20140209.tar.gz`` layout.

The articles are CC BY-ND: they are parsed and normalised in memory, never rewritten.
A document is the NFKC-normalised title and body (URL and date lines dropped).
"""

from __future__ import annotations

import logging
import os
import re
import tarfile
import unicodedata
import urllib.request
from pathlib import Path

from paretobert.data.base import DataError, Document, read_text_file

__all__ = ["LIVEDOOR_SHA256", "LIVEDOOR_URL", "load_livedoor", "parse_article", "resolve_livedoor"]

log = logging.getLogger(__name__)

LIVEDOOR_URL = "https://www.rondhuit.com/download/ldcc-20140209.tar.gz"
LIVEDOOR_SHA256 = "d5ac02113dd0526d2a3fb73f03a514f81378f18e928a8f5c45fed6ad1efd6a20"
_ARTICLE = re.compile(r"(?:^|/)text/([^/]+)/\1-\d+\.txt$")


def parse_article(text: str) -> str | None:
    """Title + body of one article file (line 1 URL, line 2 date, line 3 title, body)."""
    lines = text.splitlines()
    if len(lines) < 3:
        return None
    doc = "\n".join([lines[2], *lines[3:]]).strip()
    return unicodedata.normalize("NFKC", doc) or None


def _iter_tar(path: Path):
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if member.isfile() and _ARTICLE.search(member.name):
                    f = tar.extractfile(member)
                    assert f is not None
                    yield member.name, f.read()
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DataError(
            f"livedoor tarball {path} cannot be read ({type(e).__name__}: {e}); it may be cut short: "
            f"download it again from {LIVEDOOR_URL} (sha256 {LIVEDOOR_SHA256})"
        ) from e


def _iter_dir(path: Path):
    root = path / "text" if (path / "text").is_dir() else path
    for file in sorted(root.glob("*/*.txt")):
        name = f"text/{file.parent.name}/{file.name}"
        if _ARTICLE.search(name):
            yield name, file.read_bytes()


def load_livedoor(path: str | os.PathLike[str], skipped: list[str]) -> list[Document]:
    """All articles under ``path`` (the tarball or its extracted directory)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"livedoor corpus not found at {p}: pass dataset.path=PATH/ldcc-20140209.tar.gz")
    items = _iter_tar(p) if p.is_file() else _iter_dir(p)
    docs = []
    for name, raw in items:
        text = read_text_file(raw, name, skipped)
        if text is None:
            continue
        doc = parse_article(text)
        if doc is None:
            skipped.append(f"{name}: fewer than 3 lines (URL, date, title)")
            continue
        docs.append(Document(doc, name.split("/")[-2]))
    if not docs:
        raise DataError(f"no livedoor articles (text/<category>/<category>-<id>.txt) found in {p}")
    return docs


def resolve_livedoor(path: str | None, *, cache_dir: Path, allow_network: bool) -> Path:
    """The corpus location: ``path`` if given, else a cached download of the official tarball."""
    if path:
        return Path(path).expanduser()
    target = cache_dir / "data" / "ldcc-20140209.tar.gz"
    if target.exists():
        return target
    if not allow_network:
        raise DataError(
            "dataset=livedoor needs the corpus: pass dataset.path=PATH/ldcc-20140209.tar.gz "
            f"(or an extracted directory); download it from {LIVEDOOR_URL}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    log.info("downloading %s", LIVEDOOR_URL)
    try:
        with urllib.request.urlopen(LIVEDOOR_URL, timeout=10) as r, open(tmp, "wb") as f:
            while chunk := r.read(1 << 20):
                f.write(chunk)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise DataError(
            f"could not download {LIVEDOOR_URL} ({e}); pass dataset.path=PATH/ldcc-20140209.tar.gz"
        ) from e
    import hashlib

    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    if digest != LIVEDOOR_SHA256:
        tmp.unlink(missing_ok=True)
        raise DataError(f"downloaded livedoor tarball has sha256 {digest}, expected {LIVEDOOR_SHA256}")
    os.replace(tmp, target)
    return target
