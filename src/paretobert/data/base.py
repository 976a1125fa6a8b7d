"""The in-memory result of loading a corpus: a train/test split with label names."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field

__all__ = ["DataError", "Document", "Split", "read_text_file"]

log = logging.getLogger(__name__)


class DataError(RuntimeError):
    """A corpus that cannot be read, with a message that says what to do."""


@dataclass(frozen=True)
class Document:
    text: str
    label: str


@dataclass
class Split:
    """Train and test texts with integer labels indexing ``label_names``."""

    train_texts: list[str]
    train_labels: list[int]
    test_texts: list[str]
    test_labels: list[int]
    label_names: list[str]
    source: str
    skipped: list[str] = field(default_factory=list)

    def fingerprint(self) -> str:
        """Content hash of the split: any change in texts, labels or order changes it."""
        h = hashlib.sha256()
        h.update(json.dumps(self.label_names).encode())
        for part in (self.train_texts, self.train_labels, self.test_texts, self.test_labels):
            h.update(json.dumps(part, ensure_ascii=False).encode())
        return h.hexdigest()[:16]

    def stats(self) -> dict[str, object]:
        return {
            "source": self.source,
            "n_train": len(self.train_texts),
            "n_test": len(self.test_texts),
            "n_classes": len(self.label_names),
            "labels": self.label_names,
            "skipped": self.skipped,
            "fingerprint": self.fingerprint(),
        }


def read_text_file(raw: bytes, name: str, skipped: list[str]) -> str | None:
    """Decode one document; record and skip invalid UTF-8 and empty files by name."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        skipped.append(f"{name}: invalid UTF-8 ({e.reason} at byte {e.start})")
        return None
    if not text.strip():
        skipped.append(f"{name}: empty")
        return None
    return text
