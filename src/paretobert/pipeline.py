"""Orchestration of one variant: what to reuse, the order of the stages, and the record.

Stages: data -> weights source -> fine-tune (cached) -> ONNX export + fusion (cached) ->
the runtime's precision artifact (int8, cached) or early-exit segments (cached) -> accuracy
on the whole test split (cached: it does not depend on the thread count) -> latency.
Building lives in :mod:`paretobert.stages`, running in :mod:`paretobert.runtimes`, measuring
in :mod:`paretobert.measure`, the record's columns in :mod:`paretobert.record`.
A failing stage is recorded in the result (status ``failed`` with the traceback) and never
raised, so the rest of a sweep goes on and its frontier is still built.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from paretobert import measure, schedule, stages
from paretobert import train as training
from paretobert.data import Split
from paretobert.env import environment, machine_id, resolve_variant
from paretobert.models import ModelError, Source, resolve_source
from paretobert.runtimes import BuildInputs, get_runtime
from paretobert.store import (
    RESULT_FILE,
    Built,
    atomic_write_json,
    read_json,
    seal,
    seal_ok,
    swept_write_json,
)
from paretobert.variant import Variant

__all__ = ["format_result_line", "run_variant"]

log = logging.getLogger(__name__)


class _Stages:
    """Wall time of each stage, logged as it starts."""

    def __init__(self, variant_id: str) -> None:
        self.variant_id = variant_id
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        log.info("[%s] %s ...", self.variant_id, name)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - t0, 3)


def _reusable(rec: Any, variant: Variant, source: Source | None) -> bool:
    return (isinstance(rec, dict) and seal_ok(rec) and rec.get("status") == "ok" and rec.get("hash") == variant.hash
            and rec.get("environment", {}).get("machine_id") == machine_id()
            and rec.get("train_policy", 0) == training.TRAIN_POLICY
            and (source is None or rec.get("weights_source") == source.label))


def _reuse(variant: Variant, result_path: Path, shared: Path, source: Source | None) -> dict[str, Any] | None:
    """A finished record of this variant measured on this machine (copied into the job dir
    when found in the shared results cache) from the weights ``source`` resolves to now
    (``weights=auto`` resolves by what can be had), or None."""
    for path in (result_path, shared):
        rec = read_json(path)
        if _reusable(rec, variant, source):
            log.info("[%s] done already (%s): skipped; force=true redoes it", variant.variant_id, path)
            if path != result_path:
                rec = {**rec, "reused_from": str(path)}
                atomic_write_json(result_path, seal(rec))
            return rec
    return None


def _new_record(variant: Variant) -> dict[str, Any]:
    env = environment(threads=variant.runtime.threads)
    runtime = get_runtime(variant.runtime_name)
    record: dict[str, Any] = {
        "variant_id": variant.variant_id, "name": variant.name, "hash": variant.hash, "variant": variant.to_dict(),
        "train_policy": training.TRAIN_POLICY,
        **variant.axes(), **runtime.describe(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "pid": os.getpid(), "build_host": schedule.host(),
        "environment": env, "warnings": [],
    }
    if variant.quant and not env["vnni"]:
        msg = (f"int8 on a CPU without VNNI (AVX-512 VNNI / AVX-VNNI): {variant.runtime_name}'s int8 kernels run "
               "the slower AVX2 path here (7-bit weights: quantize.reduce_range); int8 speed-ups on VNNI machines "
               "will be larger")
        log.warning("[%s] %s", variant.variant_id, msg)
        record["warnings"].append(msg)
    return record


def _source(variant: Variant, cache_dir: Path, allow_network: bool) -> Source | None:
    """The resolved weight source (None for TF-IDF). With ``distill.teacher`` set the
    distillation is that axis's: ``weights=auto``'s selected-kd initialises by selection only,
    its distilled is random init (config validation refuses those methods named explicitly)."""
    if variant.model.arch == "tfidf":
        return None
    src = resolve_source(variant.model, weights=variant.weights, weights_from=variant.weights_from,
                         cache_dir=cache_dir, allow_network=allow_network, task=variant.task)
    if variant.distill.teacher and src.distils:
        src = Source("scratch") if src.kind == "distilled" else dataclasses.replace(src, kind="selected")
    return src


def _build(variant: Variant, split: Split, record: dict[str, Any], stage: _Stages, *, cache_dir: Path,
           progress: bool, allow_network: bool, source: Source | None) -> tuple[list[Path], str, Built]:
    """Every artifact the variant needs, built or reused; returns (model paths, the key of the
    model artifact, the checkpoint)."""
    runtime = get_runtime(variant.runtime_name)
    runtime.check(variant)  # before any work: a runtime x precision this machine cannot run
    classic = variant.model.arch == "tfidf"
    if classic:
        record.update(weights_source="tfidf", pretrained=False)
    else:
        if source is None:  # resolution failed before: again, to record why
            with stage("weights"):
                source = _source(variant, cache_dir, allow_network)
        assert source is not None
        record.update(weights_source=source.label, pretrained=source.pretrained)
    with stage("fine-tune"):
        ckpt = (stages.fine_tune_tfidf(variant, split, cache_dir) if classic else
                stages.fine_tune(variant, split, source, cache_dir, progress=progress, allow_network=allow_network))
    record.update(train_key=ckpt.key, train=ckpt.meta["train"], n_params=ckpt.meta["n_params"],
                  train_cached=ckpt.reused)
    if ckpt.meta["train"].get("warning"):
        if ckpt.reused:  # said when it was trained; say it again for this run
            log.warning("[%s] fine-tune: %s", variant.variant_id, ckpt.meta["train"]["warning"])
        record["warnings"].append(f"fine-tune: {ckpt.meta['train']['warning']}")
    with stage("export"):
        onnx = (stages.export_tfidf if classic else stages.export)(variant, ckpt, split, cache_dir)
    record.update(export_key=onnx.key, fusion=onnx.meta["fusion"], onnx_max_abs_diff=onnx.meta["max_abs_diff"])
    if variant.exit.threshold is not None:
        with stage("early-exit"):
            segs = stages.early_exit(variant, ckpt, split, cache_dir, progress=progress)
        record.update(exit_key=segs.key, exit_train=segs.meta["train"], exit_max_abs_diff=segs.meta["max_abs_diff"])
        return [segs.dir / f for f in segs.meta["files"]], segs.key, ckpt
    inputs = BuildInputs(
        exported=onnx, raw_onnx=lambda: stages.export(stages.unfused(variant), ckpt, split, cache_dir),
        calibration=lambda names: measure.calibration_feeds(variant, split, ckpt.dir, names),
        data_fingerprint=split.fingerprint(), cache_dir=cache_dir)
    with stage("prepare " + variant.resolved_precision) if variant.resolved_precision != "fp32" or \
            runtime.name != "onnxruntime" else nullcontext():
        prepared = runtime.prepare(variant, inputs)
    record["model_key"] = prepared.key
    if variant.quant:
        record["quant_key"] = prepared.key
    if prepared.stage is not None and "calibration" in prepared.stage.meta:
        record["calibration"] = prepared.stage.meta["calibration"]
    return prepared.paths, prepared.key, ckpt


def _evaluate(variant: Variant, split: Split, paths: list[Path], ckpt: Path, model_key: str,
              cache_dir: Path, stage: _Stages, progress: bool) -> dict[str, Any]:
    """Accuracy of the built model (a cached evaluation): build work, beside other builds."""
    out: dict[str, Any] = {"model_mb": measure.model_mb(paths)}
    with stage("evaluate"):
        ev = stages.evaluation(variant, split, paths, ckpt, model_key, cache_dir, progress=progress)
    out.update({k: v for k, v in ev.meta.items() if k not in ("key", "predictions", "integrity")})
    out.update(eval_key=ev.key, eval_cached=ev.reused)
    if "accuracy_ci_lo" not in out:  # a QA reader's comes with its exact-match rate (bootstrap)
        out.update(measure.accuracy_interval(out["accuracy"], out["n_test"]))
    return out


def _time(variant: Variant, texts: list[str], paths: list[Path], ckpt: Path, measured: dict[str, Any],
          cache_dir: Path, stage: _Stages, progress: bool) -> dict[str, Any]:
    """Latency, memory and the hardware figures of the built model, with the machine alone
    (:func:`paretobert.schedule.timing`); the window it held is recorded as ``timing_window``."""
    out: dict[str, Any] = {}
    with schedule.timing() as window, stage("bench"):
        if variant.bench.isolate:
            bench = measure.isolated(measure.bench_variant, variant, paths, ckpt, texts, False)
        else:
            bench = measure.bench_variant(variant, paths, ckpt, texts, progress)
        out.update(measure.latency_fields(bench.pop("rounds")))
        out.update(bench)
        out["bench_isolated"] = variant.bench.isolate
        out.update(measure.hardware_fields(variant, ckpt, {**measured, **out}, cache_dir))  # may time the GEMM peak
    out["timing_window"] = window
    if window["waited_s"] >= 1:
        log.info("[%s] waited %.1f s for the machine (builds or another timing were running)",
                 variant.variant_id, window["waited_s"])
    return out


@dataclasses.dataclass
class BuiltVariant:
    """A variant after its build (:func:`build_variant`), before its timing
    (:func:`time_variant`): picklable, so a build on one machine can be timed on another
    that sees the same cache directory. ``record`` has status ``built`` or ``failed``."""

    variant: Variant
    record: dict[str, Any]
    paths: list[Path]
    ckpt_dir: Path | None
    bench_texts: list[str]
    stage_seconds: dict[str, float]


def lookup(variant: Variant, out_dir: Path, cache_dir: Path, *, force: bool = False,
           allow_network: bool = True) -> tuple[Variant, Source | None, dict[str, Any] | None]:
    """(the variant with this CPU's defaults, its resolved weight source, the stored result
    to reuse or None). A result is reused when it is ok, has the variant's hash and was
    measured on this machine: first from ``out_dir``, then from the shared results cache;
    ``force`` redoes it. Run it on the machine that times (its CPU decides the defaults)."""
    variant = resolve_variant(variant)  # this CPU's defaults, before the hash
    try:
        source = _source(variant, Path(cache_dir).expanduser(), allow_network)
    except ModelError:
        source = None  # raised again in _build, recorded as the variant's failure
    if force:
        return variant, source, None
    return variant, source, _reuse(variant, Path(out_dir) / RESULT_FILE, _shared(variant, cache_dir), source)


def _shared(variant: Variant, cache_dir: Path) -> Path:
    return Path(cache_dir).expanduser() / "results" / f"{variant.hash}-{machine_id()}.json"


def build_variant(variant: Variant, source: Source | None, *, cache_dir: Path, progress: bool = True,
                  allow_network: bool = True) -> BuiltVariant:
    """Every artifact of a resolved variant (:func:`lookup`) built or reused and its accuracy
    evaluated, holding the machine shared (:func:`paretobert.schedule.building`): may run on
    any machine that sees ``cache_dir``. Failures are recorded, not raised."""
    cache_dir = Path(cache_dir).expanduser()
    t0 = time.perf_counter()
    stage = _Stages(variant.variant_id)
    record = _new_record(variant)
    paths: list[Path] = []
    ckpt_dir, texts = None, []
    try:
        with schedule.building() as waited:
            if waited >= 1:
                log.info("[%s] waited %.1f s for a timing to end before building", variant.variant_id, waited)
            with stage("data"):
                split = measure.split_of(variant, cache_dir, allow_network)
            record["data"] = split.stats()
            paths, model_key, ckpt = _build(variant, split, record, stage, cache_dir=cache_dir, progress=progress,
                                            allow_network=allow_network, source=source)
            ckpt_dir = ckpt.dir
            record["onnx_path"] = str(paths[0] if len(paths) == 1 else paths[0].parent)
            record.update(_evaluate(variant, split, paths, ckpt.dir, model_key, cache_dir, stage, progress))
            texts = measure.bench_texts(variant, split)
        record["status"] = "built"
    except Exception as e:  # noqa: BLE001 - recorded, the sweep goes on
        _failed(variant, record, e)
    stage.seconds.setdefault("build", round(time.perf_counter() - t0, 3))
    return BuiltVariant(variant, record, paths, ckpt_dir, texts, stage.seconds)


def _failed(variant: Variant, record: dict[str, Any], e: BaseException) -> None:
    log.error("[%s] failed: %s: %s", variant.variant_id, type(e).__name__, e)
    record.update(status="failed", error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc())


def time_variant(built: BuiltVariant, *, out_dir: Path, cache_dir: Path, progress: bool = True) -> dict[str, Any]:
    """Time a built variant with the machine alone (:func:`paretobert.schedule.timing`), on
    the machine the result is for: the record takes this machine's environment. Writes
    ``out_dir/result.json`` (and, when ok, the shared results cache); returns the record."""
    variant, record = built.variant, dict(built.record)
    stage = _Stages(variant.variant_id)
    stage.seconds.update(built.stage_seconds)
    cache_dir = Path(cache_dir).expanduser()
    if record.get("status") == "built":
        try:
            record["environment"] = environment(threads=variant.runtime.threads)
            record.update(_time(variant, built.bench_texts, built.paths, built.ckpt_dir, record, cache_dir, stage,
                                progress))
            record["status"] = "ok"
        except Exception as e:  # noqa: BLE001 - recorded, the sweep goes on
            _failed(variant, record, e)
    record["stage_seconds"] = stage.seconds
    record["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    record = seal(record)
    atomic_write_json(Path(out_dir) / RESULT_FILE, record)
    if record["status"] == "ok":
        swept_write_json(_shared(variant, cache_dir), record)
    return record


def run_variant(
    variant: Variant,
    *,
    out_dir: Path,
    cache_dir: Path,
    force: bool = False,
    allow_network: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Run (or reuse) one variant and write ``out_dir/result.json``; returns the record:
    :func:`lookup`, then :func:`build_variant` and :func:`time_variant` on this machine (the
    distributed engine runs the same three functions, the build on a worker)."""
    t0 = time.perf_counter()
    variant, source, rec = lookup(variant, out_dir, cache_dir, force=force, allow_network=allow_network)
    if rec is not None:
        return rec
    weights_s = round(time.perf_counter() - t0, 3)
    built = build_variant(variant, source, cache_dir=cache_dir, progress=progress, allow_network=allow_network)
    built.stage_seconds = {"weights": weights_s, **built.stage_seconds}
    return time_variant(built, out_dir=out_dir, cache_dir=cache_dir, progress=progress)


def format_result_line(rec: dict[str, Any]) -> str:
    """One line summarising a result record."""
    if rec.get("status") != "ok":
        return f"{rec.get('variant_id')}: FAILED {rec.get('error', '')}"
    quality = (f"exact_match={rec['exact_match']:.4f} f1={rec['f1']:.4f}" if rec.get("task") == "qa" else
               f"accuracy={rec['accuracy']:.4f} macro_f1={rec['macro_f1']:.4f}")
    return (
        f"{rec['variant_id']}: {quality} "
        f"p50={rec['latency_p50_ms']:.2f}ms p99={rec['latency_p99_ms']:.2f}ms "
        f"tokenize_p50={rec['tokenize_p50_ms']:.2f}ms model={rec['model_mb']:.1f}MB "
        f"weights={rec.get('weights_source')} n_test={rec['n_test']}"
    )
