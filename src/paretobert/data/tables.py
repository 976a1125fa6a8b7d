"""Tabular corpora: SST-2's TSVs and any CSV/TSV with a text and a label column."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from paretobert.data.base import DataError, Document

__all__ = ["load_table", "sst2_files"]

log = logging.getLogger(__name__)


_DELIMITERS = (",", "\t", ";", "|")


def _delimiter(path: Path, header_line: str, columns: tuple[str, ...]) -> str:
    """The extension's delimiter (``,`` for .csv, tab otherwise), or the first other common
    one (tab, ``;``, ``|``) whose header holds every wanted column (a spreadsheet's export
    with semicolons)."""
    default = "," if path.suffix.lower() == ".csv" else "\t"
    for d in (default, *(d for d in _DELIMITERS if d != default)):
        header = next(csv.reader([header_line], delimiter=d), [])
        if all(c in header for c in columns):
            if d != default:
                log.info("%s: %r-separated (the header names %s that way)", path, d, list(columns))
            return d
    return default


def load_table(path: Path, *, text_column: str, label_column: str) -> list[Document]:
    """Rows of a CSV (``.csv``) or TSV (other extensions) file with a header line (another
    common delimiter when the header says so; a UTF-8 byte-order mark is allowed). Rows
    without a text or a label are left out, with a warning that counts them."""
    if not path.is_file():
        raise DataError(f"{path} is not a file")
    csv.field_size_limit(2**31 - 1)  # a whole article in one field is fine (the default stops at 128 KiB)
    delimiter, reader = ",", None
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            delimiter = _delimiter(path, f.readline(), (text_column, label_column))
            f.seek(0)
            reader = csv.DictReader(f, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL)
            header = reader.fieldnames or []
            for col, key in ((text_column, "dataset.text_column"), (label_column, "dataset.label_column")):
                if col not in header:
                    near = [h for h in header if h.strip().lower() == col.strip().lower()]
                    hint = f"; did you mean {key}={near[0]}?" if near else ""
                    raise DataError(f"{path}: no column {col!r} ({key}); columns are {header}{hint}")
            docs, empty = [], []
            for row in reader:
                text, label = (row.get(text_column) or "").strip(), (row.get(label_column) or "").strip()
                if text and label:
                    docs.append(Document(text, label))
                else:
                    empty.append(reader.line_num)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: invalid UTF-8 ({e.reason} at byte {e.start})") from e
    except csv.Error as e:
        raise DataError(f"{path}: not readable as {'CSV' if delimiter == ',' else repr(delimiter) + '-separated'} "
                        f"near line {getattr(reader, 'line_num', 1)}: {e}") from e
    if not docs:
        raise DataError(f"{path}: no rows with both {text_column!r} and {label_column!r}")
    if empty:
        log.warning("%s: left out %d row(s) without a text or a label (line %s)", path, len(empty),
                    ", ".join(map(str, empty[:5])) + (", ..." if len(empty) > 5 else ""))
    return docs


def sst2_files(path: Path, test_split: str) -> tuple[Path, Path]:
    """(train.tsv, dev.tsv or test.tsv) of a GLUE SST-2 directory."""
    train, test = path / "train.tsv", path / f"{test_split}.tsv"
    for f in (train, test):
        if not f.is_file():
            raise DataError(f"dataset=sst2: {f} not found; pass dataset.path=DIR holding train.tsv and {test_split}.tsv")
    return train, test
