"""The environment a result was measured in: CPU, ISA flags, threads, library versions; and the
defaults that depend on this CPU (resolved once, before a variant is hashed).

The CPU's flags come from ``/proc/cpuinfo``; ``PARETOBERT_CPU_FLAGS=avx2,avx512_vnni,...``
replaces them (to simulate another CPU in tests; a result then records the simulated flags).
Whether bf16 pays for training is measured, not read (:func:`bf16_speedup`: the flags say a
CPU *can* multiply bf16, not that it does so faster than fp32); ``PARETOBERT_BF16_SPEEDUP=2.5``
replaces that measurement likewise.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
import tempfile
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from paretobert.config import TrainConfig
from paretobert.store import as_if_created
from paretobert.variant import Variant, content_hash, library_versions

log = logging.getLogger(__name__)

__all__ = ["BF16_MIN_SPEEDUP", "bf16_probe_path", "bf16_speedup", "cpu_features", "default_reduce_range", "default_train_precision",
           "environment", "machine_id", "resolve_variant", "train_precision"]

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
        "bf16_speedup": bf16_speedup(measure=False),  # what train.precision=auto measured, if it did
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


#: ``train.precision=auto`` trains in bf16 on a CPU only where a bf16 matrix product is at least
#: this much faster than fp32 (:func:`bf16_speedup`). Measured (benchmarks/train_precision.py,
#: whole training steps): an AMD EPYC with AVX512-BF16 (Zen 5) trained 2.1-2.85x faster in
#: bf16; an Intel Xeon (family 6 model 207, AVX512-BF16, AMX not exposed by its VM) 0.68-0.82x,
#: its bf16 products (oneDNN's avx512_core_bf16) slower than fp32.
BF16_MIN_SPEEDUP = 1.2


def _time_bf16_products() -> float:
    """fp32 time / bf16 time of a fine-tune-sized matrix product (a batch of 16 x 128 tokens
    through a 384 -> 1536 feed-forward layer) at torch's threads, the two interleaved round by
    round, the fastest of 7 rounds each after a warm-up (interference only adds time: a median
    of 5 once read 2.0 where this CPU's figure is 0.6-0.8, and flipped a test sweep's keys between
    two processes); ~0.4 s, under the machine's shared lock (:func:`paretobert.schedule.building`:
    never beside another process's timing)."""
    import torch

    from paretobert.schedule import building

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2048, 384, generator=g), torch.randn(384, 1536, generator=g)
    pairs = {"fp32": (a, b), "bf16": (a.bfloat16(), b.bfloat16())}
    seconds: dict[str, list[float]] = {k: [] for k in pairs}
    with building():
        for x, y in pairs.values():  # oneDNN picks (and builds) its kernels on the first calls
            x @ y
            x @ y
        for _ in range(7):
            for k, (x, y) in pairs.items():
                t = time.perf_counter()
                x @ y
                x @ y
                seconds[k].append(time.perf_counter() - t)
    return min(seconds["fp32"]) / min(seconds["bf16"])


def bf16_probe_path() -> Path:
    """Where this machine keeps its bf16 figure: beside its lock file (:func:`paretobert.schedule.lock_path`,
    machine-local, shared by every paretobert process that shares the lock), one file per
    machine fingerprint (:func:`machine_id`), torch version and thread count."""
    import torch

    from paretobert.schedule import lock_path

    lock = lock_path()
    key = content_hash([machine_id(), torch.__version__, torch.get_num_threads()], length=12)
    return lock.with_name(f"{lock.name}.bf16-speedup-{key}.json")


def _read_probe(path: Path) -> float | None:
    try:
        value = json.loads(path.read_text())["speedup"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


@lru_cache(maxsize=1)
def _measured_bf16_speedup() -> float:
    """This machine's bf16 figure (:func:`_time_bf16_products`), measured once a machine: the
    first process to ask times the products and publishes the figure at :func:`bf16_probe_path`
    (first writer wins: two processes that measured at once both take the file's), every later
    process reads it, so all the processes of a sweep resolve ``train.precision=auto`` alike (one
    process measured 2.0 and the next 0.61 on one Xeon and their keys differed). Delete the file
    to measure again. Where it cannot be written, this process's own figure is used, with a warning."""
    path = bf16_probe_path()
    shared = _read_probe(path)
    if shared is None:
        measured = _time_bf16_products()
        record = {"speedup": measured, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "pid": os.getpid(), "machine_id": machine_id()}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=path.name, suffix=".tmp",
                                             delete=False) as f:
                json.dump(record, f)
            as_if_created(Path(f.name))  # every process of a shared cache reads it
            try:
                os.link(f.name, path)  # atomic, and fails where another process published first
            except FileExistsError:
                pass
            finally:
                os.unlink(f.name)
        except OSError as e:
            log.warning("could not keep this machine's bf16 figure at %s (%s): this process uses its own "
                        "measurement, %.2f, and another process may measure otherwise", path, e, measured)
            shared = measured
        else:
            shared = _read_probe(path)
            if shared is None:
                raise RuntimeError(f"{path}: unreadable right after it was written; delete it and run again")
        log.info("this CPU's bf16 matrix products ran %.2fx as fast as fp32 (measured once a machine, kept at %s): "
                 "train.precision=auto fine-tunes in %s here (bf16 from %.1fx)", shared, path,
                 "bf16" if shared >= BF16_MIN_SPEEDUP else "fp32", BF16_MIN_SPEEDUP)
    return shared


def bf16_speedup(*, measure: bool = True) -> float | None:
    """How much faster this CPU multiplies bf16 than fp32 (fp32 time / bf16 time, 2 decimals),
    measured once a machine (:func:`_measured_bf16_speedup`); None where its flags have no
    bf16 units (AVX512-BF16, AMX-BF16: bf16 would be emulated, slower than fp32, nothing to
    measure), or with ``measure=False`` where this process has not measured it (what a
    record says: the figure ``train.precision=auto`` was decided by, if it was).
    ``PARETOBERT_BF16_SPEEDUP`` replaces the measurement (tests, or to pin it)."""
    if not cpu_features()["bf16"]:
        return None
    simulated = os.environ.get("PARETOBERT_BF16_SPEEDUP")
    if simulated is not None:
        try:
            return float(simulated)
        except ValueError:
            raise ValueError(f"PARETOBERT_BF16_SPEEDUP={simulated!r}: not a number (fp32 time / bf16 time, "
                             "e.g. 2.5)") from None
    if not measure and not _measured_bf16_speedup.cache_info().currsize:
        return None
    return round(_measured_bf16_speedup(), 2)


def default_train_precision(device: str = "auto") -> str:
    """``train.precision=auto`` for a fine-tune on ``device`` (``train.device``): bf16 autocast
    where the hardware multiplies bf16 natively and faster: a CUDA device that supports it; a
    CPU with AVX512-BF16 or AMX-BF16 whose bf16 products are at least
    :data:`BF16_MIN_SPEEDUP` x faster than fp32 (:func:`bf16_speedup`); fp32 elsewhere (a CPU
    without the units would emulate bf16; one with them can still be slower in bf16)."""
    if device in ("auto", "cuda"):
        import torch

        if torch.cuda.is_available():
            return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    speedup = bf16_speedup()
    return "bf16" if speedup is not None and speedup >= BF16_MIN_SPEEDUP else "fp32"


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
