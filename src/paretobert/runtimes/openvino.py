"""OpenVINO (CPU plugin): its IR converted from the unfused ONNX export, run at fp32 (strict
``f32`` inference precision), bf16 (where the CPU has AVX512-BF16 or AMX-BF16), int8-static
(NNCF post-training quantization calibrated on train texts, the default int8) or int8-dynamic
(NNCF int8 weight compression; activations quantized per call by the CPU plugin).

Used directly (``openvino`` + ``nncf`` from PyPI) rather than through optimum-intel: the
pipeline already has the ONNX export, tokenizer and calibration texts, so the engine's own two
calls (``convert_model``, ``compile_model``) and NNCF's ``quantize`` are all it needs, with
every setting visible and cached by key.
"""

from __future__ import annotations

import logging
import os
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from paretobert.env import cpu_features
from paretobert.runtimes.base import BuildInputs, Prepared, Runtime, Session, Unsupported
from paretobert.store import stage

if TYPE_CHECKING:
    from paretobert.variant import Variant

__all__ = ["OpenVino", "OvSession"]

# compile-time inference precision per paretobert precision (int8 graphs run their int8
# parts as int8 and the rest at f32)
HINT = {"fp32": "f32", "bf16": "bf16", "int8-static": "f32", "int8-dynamic": "f32"}


def _ov() -> Any:
    try:
        import openvino
    except ImportError as e:  # pragma: no cover - installed by make install
        raise Unsupported("runtime=openvino needs the openvino package (make install)") from e
    return openvino


class OvSession(Session):
    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self.input_names = [i.get_any_name() for i in compiled.inputs]
        self.output_names = [o.get_any_name() for o in compiled.outputs]
        hint = compiled.get_property("INFERENCE_PRECISION_HINT")
        self.executed = {
            "inference_precision": hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint),
            "execution_devices": list(compiled.get_property("EXECUTION_DEVICES")),
            "threads": int(compiled.get_property("INFERENCE_NUM_THREADS")),
            "streams": int(compiled.get_property("NUM_STREAMS")),
        }

    def outputs(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        res = self.request.infer(feed)
        return {name: res[i] for i, name in enumerate(self.output_names)}

    def run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        return self.request.infer(feed)[0]


class OpenVino(Runtime):
    name = "openvino"

    def version(self) -> str:
        try:
            return version("openvino")
        except PackageNotFoundError:
            return "absent"

    def check(self, variant: Variant) -> None:
        if self.version() == "absent":
            raise Unsupported("runtime=openvino needs the openvino package (make install)")
        if variant.resolved_precision == "bf16" and not cpu_features()["bf16"]:
            raise Unsupported("bf16: this CPU has no AMX-BF16 / AVX512-BF16 (OpenVINO would run f32 instead)")

    def _ir(self, variant: Variant, inputs: BuildInputs):
        ov = _ov()
        raw = inputs.raw_onnx()

        def build(tmp: Path) -> dict[str, Any]:
            model = ov.convert_model(str(raw.dir / raw.meta["file"]))
            ov.save_model(model, str(tmp / "model.xml"), compress_to_fp16=False)
            return {"file": "model.xml", "inputs": list(raw.meta["inputs"]), "from": raw.key}

        key = variant.runtime_key(base_key=raw.key, tool=f"openvino={self.version()}")
        return stage(inputs.cache_dir, "openvino", key, build)

    def prepare(self, variant: Variant, inputs: BuildInputs) -> Prepared:
        self.check(variant)
        ir = self._ir(variant, inputs)
        precision = variant.resolved_precision
        if precision in ("fp32", "bf16"):
            return Prepared([ir.dir / ir.meta["file"]], ir.key)
        ov = _ov()
        import nncf

        nncf_version = version("nncf")
        data = inputs.data_fingerprint if precision == "int8-static" else None

        def build(tmp: Path) -> dict[str, Any]:
            model = ov.Core().read_model(str(ir.dir / ir.meta["file"]))
            logging.getLogger("nncf").setLevel(logging.WARNING)
            if precision == "int8-static":
                feeds = inputs.calibration(list(ir.meta["inputs"]))
                q = nncf.quantize(model, nncf.Dataset(feeds), model_type=nncf.ModelType.TRANSFORMER,
                                  subset_size=len(feeds))
                info = {"texts": len(feeds), "tool": f"nncf.quantize (TRANSFORMER) {nncf_version}"}
            else:
                q = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)
                info = {"tool": f"nncf.compress_weights (INT8_ASYM) {nncf_version}"}
            ov.save_model(q, str(tmp / "model.xml"), compress_to_fp16=False)
            return {"file": "model.xml", "calibration": info}

        key = variant.precision_key(base_key=ir.key, data_fingerprint=data, tool=f"nncf={nncf_version}")
        built = stage(inputs.cache_dir, f"openvino-{precision}", key, build)
        return Prepared([built.dir / built.meta["file"]], built.key, built)

    def open(self, path: Path, *, threads: int | None = None, spin: bool = True,
             precision: str = "fp32") -> tuple[Session, float]:
        ov = _ov()
        config = {"INFERENCE_NUM_THREADS": threads or (os.cpu_count() or 1), "NUM_STREAMS": 1,
                  "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": HINT[precision]}
        if precision == "int8-dynamic":
            config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = 32
        core = ov.Core()
        t0 = time.perf_counter()
        compiled = core.compile_model(str(path), "CPU", config)
        ms = (time.perf_counter() - t0) * 1000.0
        sess = OvSession(compiled)
        want = HINT[precision]
        if sess.executed["inference_precision"] != want:
            raise Unsupported(f"{precision}: OpenVINO compiled {path.name} at {sess.executed['inference_precision']}, "
                              f"not {want}, on this CPU")
        return sess, ms
