"""The environment a result was measured in: CPU, ISA flags, threads, library versions."""

from __future__ import annotations

import os
import platform
from functools import lru_cache
from typing import Any

from paretobert.variant import content_hash, library_versions

__all__ = ["environment", "machine_id"]

_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8")


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


def environment(*, threads: int | None = None) -> dict[str, Any]:
    """A fingerprint of this machine and software stack, stored in every result."""
    model, flags = _cpuinfo()
    return {
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "isa_flags": list(flags),
        "vnni": any(f in flags for f in ("avx512_vnni", "avx_vnni")),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": library_versions(),
        "threads": threads,
        "machine_id": machine_id(),
    }


def machine_id() -> str:
    """Hash of what decides latency: CPU model, core count, ISA flags, ONNX Runtime version."""
    model, flags = _cpuinfo()
    return content_hash([model, os.cpu_count(), flags, library_versions()["onnxruntime"]], length=12)
