"""ONNX -> int8 with ONNX Runtime dynamic quantization, tuned for AVX2 CPUs without VNNI.

Defaults: signed int8 weights (QInt8; unsigned ran 1.2x slower here), per-channel scales
(the smallest output error against fp32 in ``benchmarks/int8_vs_fp32.py``) and
``reduce_range`` (7-bit weights, which keep the AVX2 u8 x s8 -> int16 multiply-adds of CPUs
without VNNI from saturating; no speed cost). ``DefaultTensorType`` lets the quantizer type
the fused contrib ops it cannot infer.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from paretobert.config import QuantizeConfig

__all__ = ["quantize_onnx"]


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
            reduce_range=cfg.reduce_range,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
