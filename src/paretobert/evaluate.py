"""Accuracy and macro-F1 over the whole test split, through ONNX Runtime."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from paretobert.encoding import encode_text

__all__ = ["batch_feeds", "classification_metrics", "encode", "predict"]


def encode(tokenizer: Any, texts: Sequence[str], *, seq_len: int, names: Sequence[str],
           truncation: str = "head") -> list[dict[str, np.ndarray]]:
    """Batch-1 feeds truncated to ``seq_len`` tokens; [CLS] and [SEP] are kept."""
    return [encode_text(tokenizer, t, max_length=seq_len, names=names, truncation=truncation) for t in texts]


def batch_feeds(feeds: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One batch of batch-1 feeds: token inputs zero-padded to the longest (the attention
    mask hides the padding), other inputs (raw strings) stacked."""
    if "input_ids" not in feeds[0]:
        return {name: np.concatenate([f[name] for f in feeds]) for name in feeds[0]}
    width = max(f["input_ids"].shape[1] for f in feeds)
    batch = {}
    for name in feeds[0]:
        rows = [np.pad(f[name][0], (0, width - f[name].shape[1])) for f in feeds]
        batch[name] = np.stack(rows)
    return batch


def predict(session: Any, feeds: Sequence[dict[str, np.ndarray]], *, batch_size: int = 1,
            progress: bool = False) -> np.ndarray:
    """Predicted class per feed through ``session.run(feed) -> logits`` (a runtime session);
    batches are zero-padded, the attention mask hides the padding."""
    preds = []
    for start in tqdm(range(0, len(feeds), batch_size), desc="evaluate", unit="batch",
                      disable=not progress, leave=False):
        chunk = feeds[start : start + batch_size]
        feed = chunk[0] if len(chunk) == 1 else batch_feeds(chunk)
        logits = session.run(feed)
        preds.append(np.argmax(logits, axis=-1))
    return np.concatenate(preds) if preds else np.zeros(0, dtype=int)


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int]) -> dict[str, float]:
    """Accuracy and macro-F1 (over the labels seen in either sequence, as scikit-learn)."""
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.shape != p.shape or t.size == 0:
        raise ValueError(f"need equal, non-empty label arrays (got {t.shape} and {p.shape})")
    f1s = []
    for c in np.union1d(t, p):
        tp = float(np.sum((p == c) & (t == c)))
        fp = float(np.sum((p == c) & (t != c)))
        fn = float(np.sum((p != c) & (t == c)))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return {"accuracy": float(np.mean(t == p)), "macro_f1": float(np.mean(f1s))}
