"""The environment a result was measured in: CPU, ISA flags, threads, library versions; and the
defaults that depend on this CPU (resolved once, before a variant is hashed).

The CPU's flags come from ``/proc/cpuinfo``; ``PARETOBERT_CPU_FLAGS=avx2,avx512_vnni,...``
replaces them (to simulate another CPU in tests; a result then records the simulated flags).
"""

from __future__ import annotations

import dataclasses
import os
import platform
from functools import lru_cache
from typing import Any

from paretobert.config import TrainConfig
from paretobert.variant import Variant, content_hash, library_versions

__all__ = ["cpu_features", "default_reduce_range", "default_train_precision", "environment", "machine_id",
           "resolve_variant", "train_precision"]

_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_bf16",
          "amx_int8")


@lru_cache(maxsize=1)
def _cpuinfo() -> tuple[str, tuple[str, ...]]:
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return model, tuple(f for f in _FLAGS if f in flags)


def _flags() -> tuple[str, ...]:
    simulated = os.environ.get("PARETOBERT_CPU_FLAGS")
    if simulated is not None:
        return tuple(f for f in _FLAGS if f in {x.strip() for x in simulated.split(",")})
    return _cpuinfo()[1]


def cpu_features() -> dict[str, bool]:
    """What the precisions need from this CPU: VNNI (fast int8 dot products), BF16 (AVX512-BF16
    or AMX-BF16 for bf16 matrix work), AMX-INT8."""
    f = set(_flags())
    return {"avx2": "avx2" in f, "avx512": "avx512f" in f, "vnni": bool(f & {"avx512_vnni", "avx_vnni"}),
            "bf16": bool(f & {"avx512_bf16", "amx_bf16"}), "amx_bf16": "amx_bf16" in f, "amx_int8": "amx_int8" in f}


def environment(*, threads: int | None = None) -> dict[str, Any]:
    """A fingerprint of this machine and software stack, stored in every result."""
    model, _ = _cpuinfo()
    feats = cpu_features()
    return {
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "isa_flags": list(_flags()),
        "simulated_flags": os.environ.get("PARETOBERT_CPU_FLAGS") is not None,
        "vnni": feats["vnni"],
        "bf16": feats["bf16"],
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": library_versions(),
        "threads": threads,
        "machine_id": machine_id(),
    }


def machine_id() -> str:
    """Hash of what decides latency: CPU model, core count, ISA flags, ONNX Runtime version."""
    model, _ = _cpuinfo()
    return content_hash([model, os.cpu_count(), _flags(), library_versions()["onnxruntime"]], length=12)


def default_reduce_range() -> bool:
    """``quantize.reduce_range`` on this CPU: true only where there is no VNNI (7-bit weights
    keep the AVX2 int8 kernels from saturating; on VNNI they cost accuracy for nothing)."""
    return not cpu_features()["vnni"]


def default_train_precision(device: str = "auto") -> str:
    """``train.precision=auto`` for a fine-tune on ``device`` (``train.device``): bf16 autocast
    where the hardware multiplies bf16 natively (a CUDA device that supports it; a CPU with
    AVX512-BF16 or AMX-BF16, where a training step ran 2.3-2.9x faster than fp32:
    benchmarks/train_precision.py), fp32 elsewhere (a CPU without them would emulate bf16,
    slower than fp32)."""
    if device in ("auto", "cuda"):
        import torch

        if torch.cuda.is_available():
            return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_features()["bf16"] else "fp32"


def train_precision(cfg: TrainConfig) -> str:
    """``train.precision`` as it runs: ``auto`` is :func:`default_train_precision` of
    ``train.device``; fp32 / bf16 as set (never second-guessed)."""
    return default_train_precision(cfg.device) if cfg.precision == "auto" else cfg.precision


def resolve_variant(variant: Variant) -> Variant:
    """The variant with this machine's defaults filled in (before it is hashed): ``quantize.reduce_range``
    null becomes :func:`default_reduce_range`, ``train.precision`` auto :func:`train_precision`."""
    if variant.quantize.reduce_range is None:
        q = dataclasses.replace(variant.quantize, reduce_range=default_reduce_range())
        variant = dataclasses.replace(variant, quantize=q)
    if variant.train.precision == "auto":
        variant = dataclasses.replace(variant, train=dataclasses.replace(variant.train,
                                                                         precision=train_precision(variant.train)))
    return variant
