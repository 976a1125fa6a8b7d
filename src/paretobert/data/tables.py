"""Tabular corpora: SST-2's TSVs and any CSV/TSV with a text and a label column."""

from __future__ import annotations

import csv
from pathlib import Path

from paretobert.data.base import DataError, Document

__all__ = ["load_table", "sst2_files"]


def load_table(path: Path, *, text_column: str, label_column: str) -> list[Document]:
    """Rows of a CSV (``.csv``) or TSV (other extensions) file with a header line."""
    if not path.is_file():
        raise DataError(f"{path} is not a file")
    delimiter = "," if path.suffix.lower() == ".csv" else "\t"
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL)
            header = reader.fieldnames or []
            for col, key in ((text_column, "dataset.text_column"), (label_column, "dataset.label_column")):
                if col not in header:
                    raise DataError(f"{path}: no column {col!r} ({key}); columns are {header}")
            docs = []
            for row in reader:
                text, label = (row.get(text_column) or "").strip(), (row.get(label_column) or "").strip()
                if text and label:
                    docs.append(Document(text, label))
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: invalid UTF-8 ({e.reason} at byte {e.start})") from e
    if not docs:
        raise DataError(f"{path}: no rows with both {text_column!r} and {label_column!r}")
    return docs


def sst2_files(path: Path, test_split: str) -> tuple[Path, Path]:
    """(train.tsv, dev.tsv or test.tsv) of a GLUE SST-2 directory."""
    train, test = path / "train.tsv", path / f"{test_split}.tsv"
    for f in (train, test):
        if not f.is_file():
            raise DataError(f"dataset=sst2: {f} not found; pass dataset.path=DIR holding train.tsv and {test_split}.tsv")
    return train, test
