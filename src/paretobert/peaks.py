"""This machine's measured GEMM peak per precision: the yardstick for how far each variant is
from the hardware. A square matrix product (M=256, K=N=1024, batch 1) timed on the runtimes at
hand, the best of them kept: fp32 (ONNX Runtime MatMul, OpenVINO f32), int8 (ONNX Runtime
MatMulInteger u8 x s8, the kernel of its dynamic int8; OpenVINO on an NNCF-quantized MatMul),
bf16 (OpenVINO with the bf16 hint, where the CPU has bf16 units). Cached per machine and thread
count under ``cache_dir/peaks``; measured serially like every timing."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from paretobert.bench import summarize, time_loop
from paretobert.env import cpu_features, machine_id
from paretobert.runtimes import make_session
from paretobert.store import read_json, swept_write_json

__all__ = ["SHAPE", "gemm_peak", "measure_peaks"]

log = logging.getLogger(__name__)

SHAPE = (256, 1024, 1024)  # M, K, N


def _matmul_model(path: Path, *, integer: bool) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m, k, n = SHAPE
    rng = np.random.default_rng(0)
    if integer:
        w = numpy_helper.from_array(rng.integers(-127, 128, (k, n), dtype=np.int8), "w")
        node = helper.make_node("MatMulInteger", ["x", "w"], ["y"])
        x = helper.make_tensor_value_info("x", TensorProto.UINT8, [m, k])
        y = helper.make_tensor_value_info("y", TensorProto.INT32, [m, n])
    else:
        w = numpy_helper.from_array(rng.standard_normal((k, n)).astype(np.float32), "w")
        node = helper.make_node("MatMul", ["x", "w"], ["y"])
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])
    graph = helper.make_graph([node], "gemm", [x], [y], initializer=[w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), str(path))


def _gflops(run: Any, feed: dict[str, np.ndarray]) -> float:
    m, k, n = SHAPE
    ms = summarize(time_loop(lambda i: run(feed), n_inputs=1, warmup=3, min_iters=10, min_seconds=0.5,
                             max_seconds=5.0)).p50
    return 2.0 * m * k * n / (ms / 1000.0) / 1e9


def measure_peaks(threads: int) -> dict[str, Any]:
    """GFLOP/s (GOP/s for int8) of the GEMM per precision and per runtime, at ``threads``."""
    m, k, _ = SHAPE
    rng = np.random.default_rng(1)
    xf = {"x": rng.standard_normal((m, k)).astype(np.float32)}
    xi = {"x": rng.integers(0, 256, (m, k), dtype=np.uint8)}
    out: dict[str, Any] = {"shape_mkn": list(SHAPE), "threads": threads, "by_runtime": {}}
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = Path(tmp) / "f.onnx", Path(tmp) / "i.onnx"
        _matmul_model(fp32, integer=False)
        _matmul_model(int8, integer=True)
        res = out["by_runtime"]
        for name, path, feed in (("fp32", fp32, xf), ("int8", int8, xi)):
            sess, _ = make_session(path, threads=threads)
            res[f"onnxruntime/{name}"] = _gflops(lambda f, s=sess: s.run(None, f), feed)
        try:
            import openvino as ov

            core = ov.Core()
            hints = ["f32"] + (["bf16"] if cpu_features()["bf16"] else [])
            for hint in hints:
                cm = core.compile_model(str(fp32), "CPU", {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1,
                                                           "INFERENCE_PRECISION_HINT": hint})
                req = cm.create_infer_request()
                res[f"openvino/{'fp32' if hint == 'f32' else hint}"] = _gflops(lambda f, r=req: r.infer(f), xf)
        except ImportError:
            pass
    for cls in ("fp32", "bf16", "int8"):
        vals = [v for key, v in out["by_runtime"].items() if key.endswith("/" + cls)]
        out[cls] = max(vals) if vals else None
    out["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return out


def gemm_peak(*, threads: int, cache_dir: Path) -> dict[str, Any]:
    """The cached :func:`measure_peaks` of this machine at ``threads`` (measured on first use)."""
    path = Path(cache_dir) / "peaks" / f"{machine_id()}-t{threads}.json"
    got = read_json(path)
    if isinstance(got, dict) and got.get("threads") == threads:
        return got
    log.info("measuring this machine's GEMM peak at %d thread(s) (once; cached in %s)", threads, path)
    got = measure_peaks(threads)
    swept_write_json(path, got)
    return got
