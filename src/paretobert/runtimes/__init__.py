"""Runtimes: one module per way to run an exported model (see :mod:`paretobert.runtimes.base`)."""

from __future__ import annotations

from paretobert.runtimes.base import Prepared, Runtime, Session
from paretobert.runtimes.onnxruntime import OnnxRuntime, make_session

__all__ = ["RUNTIMES", "OnnxRuntime", "Prepared", "Runtime", "Session", "get_runtime", "make_session"]

RUNTIMES: dict[str, Runtime] = {r.name: r for r in (OnnxRuntime(),)}


def get_runtime(name: str) -> Runtime:
    """The runtime called ``name`` (a ValueError naming the known ones otherwise)."""
    try:
        return RUNTIMES[name]
    except KeyError:
        raise ValueError(f"unknown runtime {name!r}; accepted: {' | '.join(RUNTIMES)}") from None
