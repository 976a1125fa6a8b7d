"""A QA reader's answer span from its start/end logits: numpy only, so an exported bundle
(:mod:`paretobert.bundle`) answers with it without torch, transformers or the data loaders."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["best_span"]


def best_span(start: np.ndarray, end: np.ndarray, offsets: Sequence[tuple[int, int] | None], *, n_best: int = 20,
              max_answer_length: int = 30) -> tuple[float, int, int] | None:
    """(start + end logit, first char, end char) of one window's best context span: end not
    before start, at most ``max_answer_length`` tokens, among the ``n_best`` starts and ends;
    None when the window offers no span of the context."""
    n = len(offsets)
    s_top = np.argsort(start[:n])[::-1][:n_best]
    e_top = np.argsort(end[:n])[::-1][:n_best]
    best = None
    for s in s_top:
        if offsets[s] is None:
            continue
        for e in e_top:
            if offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                continue
            value = float(start[s] + end[e])
            if best is None or value > best[0]:
                best = (value, offsets[s][0], offsets[e][1])
    return best
