"""Early exit at inference: one model file per layer segment, run in turn, stopping at the first
off-ramp whose prediction entropy is below the threshold S (DeeBERT; the segments are built
by :mod:`paretobert.models.early_exit`). Runs on any runtime whose sessions return named
outputs; numpy only."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from paretobert.runtimes.base import Runtime
from paretobert.runtimes.onnxruntime import OnnxRuntime

__all__ = ["EarlyExitRunner", "entropy", "exit_entropy"]


def entropy(logits: np.ndarray) -> np.ndarray:
    """Entropy (nats) of the softmax of each row of ``logits``."""
    z = logits - logits.max(axis=-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=-1, keepdims=True)
    return -(p * np.log(np.clip(p, 1e-12, None))).sum(axis=-1)


def exit_entropy(logits: np.ndarray) -> float:
    """What the exit rule compares with the threshold, for the first row of a batch-1 output: a
    classifier's ``(1, classes)`` logits give their entropy; a reader's ``(1, 2, sequence)``
    start/end logits give the mean of the start and end distributions' entropies (nats)."""
    return float(np.mean(entropy(np.asarray(logits))[0]))


class EarlyExitRunner:
    """Runs the segments in order and stops at the first layer whose entropy is below ``threshold``
    (:func:`exit_entropy`: a reader's is the mean over its start and end distributions).

    ``threshold=0`` never exits early (entropy is never negative): the full model, segmented.
    """

    def __init__(self, paths: Sequence[Path], *, threshold: float, threads: int | None = None,
                 runtime: Runtime | None = None, precision: str = "fp32") -> None:
        runtime = runtime or OnnxRuntime()
        # one session per segment, called in turn: with several threads each, spinning idle
        # pools slow every call down (measured 3-4x at 2 threads on 2 cores)
        self.sessions = [runtime.open(p, threads=threads, spin=False, precision=precision)[0] for p in paths]
        self.executed = self.sessions[0].executed
        self.threshold = threshold
        self.input_names = self.sessions[0].input_names

    def _step(self, i: int, feed: dict[str, np.ndarray], hidden: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if i:
            feed = {"hidden_in": hidden, "attention_mask": feed["attention_mask"]}
        out = self.sessions[i].outputs(feed)
        return out["hidden"], out["logits"]

    def __call__(self, feed: dict[str, np.ndarray]) -> tuple[np.ndarray, int]:
        """(logits, 1-based exit layer) for a batch-1 feed."""
        hidden, logits = self._step(0, feed, None)
        for i in range(1, len(self.sessions)):
            if exit_entropy(logits) < self.threshold:
                return logits, i
            hidden, logits = self._step(i, feed, hidden)
        return logits, len(self.sessions)

    def all_logits(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Every layer's logits (no exit): for checks against torch."""
        hidden, logits = self._step(0, feed, None)
        out = [logits]
        for i in range(1, len(self.sessions)):
            hidden, logits = self._step(i, feed, hidden)
            out.append(logits)
        return out
