"""ONNX Runtime sessions built from runtime settings."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

__all__ = ["make_session"]


def make_session(path: Path, *, threads: int | None = None, spin: bool = True) -> tuple[Any, float]:
    """A fresh CPU session with pinned intra-op threads (default: all cores), sequential
    execution and all graph optimisations; returns (session, creation milliseconds).
    ``spin=False`` stops idle intra-op threads from spin-waiting: needed when several
    multi-threaded sessions take turns (their spinning pools would fight for the cores)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or (os.cpu_count() or 1)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    if not spin:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    t0 = time.perf_counter()
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return sess, (time.perf_counter() - t0) * 1000.0
