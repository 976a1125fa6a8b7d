"""ONNX Runtime (CPU execution provider): fp32 as exported and fused, int8 dynamic quantization,
int8 static quantization (QDQ, calibrated on train texts). No bf16: its x86 CPU kernels have none."""

from __future__ import annotations

import os
import time
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from paretobert.quantize import quantize_onnx, quantize_static_onnx
from paretobert.runtimes.base import BuildInputs, Prepared, Runtime, Session, Unsupported
from paretobert.store import stage

if TYPE_CHECKING:
    from paretobert.variant import Variant

__all__ = ["OnnxRuntime", "OrtSession", "make_session"]


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


class OrtSession(Session):
    def __init__(self, sess: Any, threads: int | None) -> None:
        self.sess = sess
        self.input_names = [i.name for i in sess.get_inputs()]
        self.output_names = [o.name for o in sess.get_outputs()]
        self.executed = {"providers": sess.get_providers(), "threads": threads or (os.cpu_count() or 1)}

    def outputs(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.sess.run(None, feed), strict=True))

    def run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        return self.sess.run(None, feed)[0]  # the first output is the logits (classification graphs)


class OnnxRuntime(Runtime):
    name = "onnxruntime"

    def version(self) -> str:
        return version("onnxruntime")

    def check(self, variant: Variant) -> None:
        if variant.resolved_precision == "bf16":
            raise Unsupported("bf16: ONNX Runtime's CPU execution provider has no bf16 kernels on x86 "
                              "(use runtime=openvino)")

    def prepare(self, variant: Variant, inputs: BuildInputs) -> Prepared:
        exported = inputs.exported.dir / inputs.exported.meta["file"]
        precision = variant.resolved_precision
        if precision == "fp32":
            return Prepared([exported], inputs.exported.key)
        if precision == "int8-dynamic":
            def build(tmp: Path) -> dict[str, Any]:
                quantize_onnx(exported, tmp / "model.int8.onnx", cfg=variant.quantize)
                return {"file": "model.int8.onnx"}

            built = stage(inputs.cache_dir, "int8", variant.quant_key(export_key=inputs.exported.key), build)
            return Prepared([built.dir / built.meta["file"]], built.key, built)
        if precision == "int8-static":
            raw = inputs.raw_onnx()
            raw_path = raw.dir / raw.meta["file"]

            def build_static(tmp: Path) -> dict[str, Any]:
                feeds = inputs.calibration(list(raw.meta["inputs"]))
                info = quantize_static_onnx(raw_path, tmp / "model.int8-static.onnx", feeds, cfg=variant.quantize)
                return {"file": "model.int8-static.onnx", "calibration": info}

            key = variant.precision_key(base_key=raw.key, data_fingerprint=inputs.data_fingerprint,
                                        tool=f"onnxruntime={self.version()}")
            built = stage(inputs.cache_dir, "int8-static", key, build_static)
            return Prepared([built.dir / built.meta["file"]], built.key, built)
        raise Unsupported(f"{precision}: not offered by runtime=onnxruntime")

    def open(self, path: Path, *, threads: int | None = None, spin: bool = True,
             precision: str = "fp32") -> tuple[Session, float]:
        sess, ms = make_session(path, threads=threads, spin=spin)
        return OrtSession(sess, threads), ms
