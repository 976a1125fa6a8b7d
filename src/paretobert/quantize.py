"""ONNX -> int8 with ONNX Runtime's quantization tools: dynamic (weights int8, activations
quantized per call) and static (QDQ, activation ranges calibrated on train texts).

Defaults: signed int8 weights (QInt8; unsigned ran 1.2x slower here), per-channel scales
(the smallest output error against fp32 in ``benchmarks/int8_vs_fp32.py``) and
``reduce_range`` resolved per CPU (7-bit weights only where there is no VNNI: they keep the
AVX2 u8 x s8 -> int16 multiply-adds from saturating; with VNNI they cost accuracy for nothing).
``DefaultTensorType`` lets the quantizer type the fused contrib ops it cannot infer.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from paretobert.config import QuantizeConfig
from paretobert.env import default_reduce_range

__all__ = ["quantize_onnx", "quantize_static_onnx"]


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """The quantizer logs a line per tensor (and a pre-processing hint) on the root logger."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_onnx(src: Path, dst: Path, *, cfg: QuantizeConfig) -> None:
    """Write the int8 dynamic-quantized version of ``src`` to ``dst``."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet_root_logger():
        quantize_dynamic(
            model_input=str(src),
            model_output=str(dst),
            weight_type=QuantType.QInt8 if cfg.weight_type == "qint8" else QuantType.QUInt8,
            per_channel=cfg.per_channel,
            reduce_range=_reduce_range(cfg),
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )


def _reduce_range(cfg: QuantizeConfig) -> bool:
    """``reduce_range`` as set, or (null) by this CPU: 7-bit weights only without VNNI. Variants
    arrive resolved (``env.resolve_variant``, so their cache keys say which); this serves direct calls."""
    return default_reduce_range() if cfg.reduce_range is None else cfg.reduce_range


def quantize_static_onnx(src: Path, dst: Path, feeds: Sequence[dict[str, np.ndarray]], *,
                         cfg: QuantizeConfig) -> dict[str, Any]:
    """Write the static int8 (QDQ) version of the unfused graph ``src`` to ``dst``, activation
    ranges calibrated on ``feeds`` with ``cfg.calibrate_method``; returns what was done."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.it, None)

    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[cfg.calibrate_method]
    with _quiet_root_logger(), tempfile.TemporaryDirectory(dir=dst.parent) as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(
            model_input=str(pre), model_output=str(dst), calibration_data_reader=Reader(),
            quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8 if cfg.weight_type == "qint8" else QuantType.QUInt8,
            per_channel=cfg.per_channel, reduce_range=_reduce_range(cfg), calibrate_method=method,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    return {"texts": len(feeds), "method": cfg.calibrate_method, "format": "QDQ"}
