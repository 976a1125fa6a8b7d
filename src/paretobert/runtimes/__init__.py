"""Runtimes: one module per way to run an exported model (see :mod:`paretobert.runtimes.base`)."""

from __future__ import annotations

from paretobert.runtimes.base import BuildInputs, Prepared, Runtime, Session, Unsupported
from paretobert.runtimes.onnxruntime import OnnxRuntime, make_session
from paretobert.runtimes.openvino import OpenVino

__all__ = ["RUNTIMES", "BuildInputs", "OnnxRuntime", "OpenVino", "Prepared", "Runtime", "Session", "Unsupported",
           "get_runtime", "make_session"]

RUNTIMES: dict[str, Runtime] = {r.name: r for r in (OnnxRuntime(), OpenVino())}


def get_runtime(name: str) -> Runtime:
    """The runtime called ``name`` (a ValueError naming the known ones otherwise)."""
    try:
        return RUNTIMES[name]
    except KeyError:
        raise ValueError(f"unknown runtime {name!r}; accepted: {' | '.join(RUNTIMES)}") from None
