"""Orchestration of one variant: stages, cache checks and the result record.

Stages: data -> weights source -> fine-tune (cached) -> ONNX export + fusion (cached) ->
int8 (cached, when ``quant``) -> accuracy on the whole test split (cached: it does not depend
on the thread count) -> latency.
A failing stage is recorded in the result (status ``failed`` with the traceback) and never
raised, so the rest of a sweep goes on and its frontier is still built.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from paretobert.bench import make_session, summarize, time_loop
from paretobert.data import Split, load_split
from paretobert.env import environment, machine_id
from paretobert.evaluate import classification_metrics, predict
from paretobert.store import (
    RESULT_FILE,
    artifact,
    atomic_write_json,
    ensure_free_space,
    read_json,
    seal,
    seal_ok,
)
from paretobert.variant import Variant

__all__ = ["bench_variant", "format_result_line", "run_variant"]

log = logging.getLogger(__name__)

_SPLITS: dict[str, Split] = {}


def _split(variant: Variant, cache_dir: Path, allow_network: bool) -> Split:
    """The variant's data split, loaded once per process (a multirun shares it)."""
    key = variant.data_key()
    if key not in _SPLITS:
        _SPLITS[key] = load_split(variant.dataset, cache_dir=cache_dir, allow_network=allow_network)
    return _SPLITS[key]


def _evenly_spaced(n: int, k: int) -> list[int]:
    """k indices spread over range(n): a class-balanced timing sample of a sorted test split."""
    if k >= n:
        return list(range(n))
    return sorted({int(i) for i in np.linspace(0, n - 1, k)})


class _Stages:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str, variant_id: str):
        log.info("[%s] %s ...", variant_id, name)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - t0, 3)


def _teacher_variant(variant: Variant) -> Variant:
    """The distillation teacher: the preset ``distill.teacher`` fine-tuned like the variant."""
    from paretobert.config import DistillConfig, DropConfig, load_model_preset

    teacher = load_model_preset(variant.distill.teacher or "")
    return dataclasses.replace(variant, model=teacher, weights="auto", drop=DropConfig(),
                               distill=DistillConfig(), quant=False)


def _train_stage(variant: Variant, split: Split, source: Any, cache_dir: Path, progress: bool,
                 allow_network: bool = True):
    from paretobert.models import build_model, load_tokenizer, resolve_source
    from paretobert.models.zoo import Source, new_vocab_mlm, transplant_body
    from paretobert.train import default_lr, fine_tune, mlm_warmup

    retok = variant.model.retokenize and source.pretrained
    teacher_key = teacher_ckpt = None
    if variant.distill.teacher:
        tv = _teacher_variant(variant)
        tsource = resolve_source(tv.model, weights="auto", cache_dir=cache_dir, allow_network=allow_network)
        log.info("[%s] teacher %s (%s) ...", variant.variant_id, tv.model.name, tsource.label)
        teacher_key, (teacher_ckpt, _, _) = _train_stage(tv, split, tsource, cache_dir, progress, allow_network)

    def build(tmp: Path) -> dict[str, Any]:
        # retokenize: the tokenizer is trained on the train split as for scratch weights
        tok = load_tokenizer(Source("scratch") if retok else source, variant.model,
                             train_texts=split.train_texts, cache_dir=cache_dir)
        # with distill.layers the student is cut from the teacher: nothing to build here
        model = None if variant.distill.layers is not None else build_model(
            source, variant.model, num_labels=len(split.label_names), tokenizer=tok, cache_dir=cache_dir,
            label_names=split.label_names, seed=variant.seed)
        distill, kd_stats = None, None
        if teacher_ckpt is not None:
            model, tok, distill, kd_stats = _distill_setup(variant, split, teacher_ckpt, model, tok, progress)
        warm = None
        if retok:
            mlm = new_vocab_mlm(source, tok, cache_dir=cache_dir, seed=variant.seed)
            warm = mlm_warmup(mlm, tok, texts=split.train_texts, max_length=variant.train_length,
                              epochs=variant.model.mlm_epochs, batch_size=variant.train.batch_size,
                              seed=variant.seed, truncation=variant.truncation,
                              device=variant.train.device, progress=progress)
            transplant_body(mlm, model)
            del mlm
        dropped = None
        if variant.drop.strategy != "none":
            dropped = _drop_stage(variant, model, tok, split)
        ensure_free_space(tmp, 4 * sum(p.numel() for p in model.parameters()) * 1.2 + 50e6,
                          "the fine-tuned checkpoint")
        stats = fine_tune(model, tok, texts=split.train_texts, labels=split.train_labels,
                          cfg=variant.train, seed=variant.seed, lr=lr, max_length=variant.train_length,
                          truncation=variant.truncation, distill=distill, progress=progress)
        if warm is not None:
            stats = {**stats, "mlm_warmup": warm, "seconds": stats["seconds"] + warm["seconds"]}
        if dropped is not None:
            stats = {**stats, "drop": dropped}
        if kd_stats is not None:
            stats = {**stats, "distill": kd_stats}
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        return {"train": stats, "source": source.label, "model": variant.model.name,
                "n_params": int(sum(p.numel() for p in model.parameters())),
                "label_names": split.label_names, "data": split.fingerprint()}

    lr = default_lr(variant.train, pretrained=source.pretrained or variant.distill.layers is not None,
                    hidden=variant.model.hidden)
    key = variant.train_key(data_fingerprint=split.fingerprint(), source=source.label, lr=lr,
                            teacher_key=teacher_key)
    return key, artifact(cache_dir, "checkpoints", key, build)


def _distill_setup(variant: Variant, split: Split, teacher_ckpt: Path, model: Any | None, tok: Any,
                   progress: bool):
    """(student, its tokenizer, Distillation, stats): with ``distill.layers`` the student is the
    fine-tuned teacher keeping those layers (and its tokenizer; ``model`` is None), else the
    variant's own ``model``."""
    import copy

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from paretobert.models.drop import drop_layers, encoder_layers
    from paretobert.train import Distillation, teacher_logits

    d = variant.distill
    teacher = AutoModelForSequenceClassification.from_pretrained(teacher_ckpt, attn_implementation="eager")
    ttok = AutoTokenizer.from_pretrained(teacher_ckpt)
    n_teacher = len(encoder_layers(teacher))
    if d.layers is not None:
        if max(d.layers) >= n_teacher:
            raise ValueError(f"distill.layers={d.layers}: the teacher has {n_teacher} layers")
        model, tok = copy.deepcopy(teacher), ttok
        drop_layers(model, d.layers)
    soft = teacher_logits(teacher, ttok, split.train_texts, max_length=variant.train_length,
                          truncation=variant.truncation, progress=progress)
    teacher_acc = float((soft.argmax(-1) == torch.as_tensor(split.train_labels)).float().mean())
    kd = Distillation(soft_targets=soft, temperature=d.temperature, alpha=d.alpha, hidden_mse=d.hidden_mse,
                      teacher=teacher if d.hidden_mse else None, layer_map=d.layers)
    stats = {"teacher_layers": n_teacher, "student_init": d.layers, "teacher_train_accuracy": teacher_acc}
    return model, tok, kd, stats


def _drop_stage(variant: Variant, model: Any, tok: Any, split: Split) -> dict[str, Any]:
    """Drop layers before fine-tuning; returns what was kept (and the ranking for contribution)."""
    from paretobert.models.drop import drop_layers, encoder_layers, kept_layers, layer_similarity

    d = variant.drop
    n = len(encoder_layers(model))
    sim = None
    if d.strategy == "contribution":  # deterministic: eval mode, evenly spaced texts
        pick = _evenly_spaced(len(split.train_texts), d.sample)
        sim = layer_similarity(model, tok, [split.train_texts[i] for i in pick],
                               max_length=variant.train_length)
    kept = kept_layers(d.strategy, n, d.keep or n, similarity=sim)
    drop_layers(model, kept)
    log.info("[%s] kept layers %s of %d (%s)", variant.variant_id, kept, n, d.strategy)
    return {"strategy": d.strategy, "kept": kept, "of": n, "similarity": sim}


def _tfidf_train_stage(variant: Variant, split: Split, cache_dir: Path):
    from paretobert.classic import fit_tfidf, prepare_text, save_tfidf

    def build(tmp: Path) -> dict[str, Any]:
        t0 = time.perf_counter()
        texts = [prepare_text(t, max_chars=variant.train_length, truncation=variant.truncation)
                 for t in split.train_texts]
        pipe = fit_tfidf(texts, split.train_labels, ngrams=variant.model.ngrams, seed=variant.seed)
        save_tfidf(pipe, tmp / "model.pkl")
        svm = pipe.named_steps["svm"]
        return {"train": {"seconds": time.perf_counter() - t0, "max_length": variant.train_length,
                          "truncation": variant.truncation,
                          "n_features": len(pipe.named_steps["tfidf"].vocabulary_)},
                "source": "tfidf", "model": variant.model.name,
                "n_params": int(svm.coef_.size + svm.intercept_.size),
                "label_names": split.label_names, "data": split.fingerprint()}

    key = variant.train_key(data_fingerprint=split.fingerprint(), source="tfidf", lr=0.0)
    return key, artifact(cache_dir, "checkpoints", key, build)


def _tfidf_export_stage(variant: Variant, ckpt: Path, train_key: str, split: Split, cache_dir: Path):
    from paretobert.classic import check_tfidf_onnx, export_tfidf, load_tfidf, prepare_text

    def build(tmp: Path) -> dict[str, Any]:
        pipe = load_tfidf(ckpt / "model.pkl")
        names = export_tfidf(pipe, tmp / "model.onnx", opset=variant.export.opset)
        sample = [prepare_text(t, max_chars=variant.seq_len, truncation=variant.truncation)
                  for t in split.test_texts[:16]]
        return {"inputs": names, "file": "model.onnx", "fusion": {},
                "max_abs_diff": check_tfidf_onnx(tmp / "model.onnx", pipe, sample)}

    key = variant.export_key(train_key=train_key)
    return key, artifact(cache_dir, "onnx", key, build)


def _export_stage(variant: Variant, ckpt: Path, train_key: str, split: Split, cache_dir: Path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from paretobert.export import check_onnx, export_onnx, fuse_onnx

    def build(tmp: Path) -> dict[str, Any]:
        model = AutoModelForSequenceClassification.from_pretrained(ckpt, attn_implementation="eager")
        tok = AutoTokenizer.from_pretrained(ckpt)
        ensure_free_space(tmp, 4 * sum(p.numel() for p in model.parameters()) * 2.5 + 50e6, "the ONNX export")
        raw = tmp / "model.onnx"
        names = export_onnx(model, tok, raw, opset=variant.export.opset)
        meta: dict[str, Any] = {"inputs": names, "file": raw.name, "fusion": {}}
        if variant.export.optimize:
            cfg = model.config
            meta["fusion"] = fuse_onnx(raw, tmp / "model.fused.onnx", num_heads=cfg.num_attention_heads,
                                       hidden_size=cfg.hidden_size)
            raw.unlink()
            meta["file"] = "model.fused.onnx"
        sample = split.test_texts[:4]
        meta["max_abs_diff"] = check_onnx(tmp / meta["file"], model, tok, sample,
                                          max_length=min(variant.train_length, 512))
        return meta

    key = variant.export_key(train_key=train_key)
    return key, artifact(cache_dir, "onnx", key, build)


def _exit_stage(variant: Variant, ckpt: Path, train_key: str, split: Split, cache_dir: Path, progress: bool):
    """Off-ramps trained on the frozen checkpoint, one ONNX graph per layer (int8 with quant)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from paretobert.encoding import encode_text
    from paretobert.models.early_exit import (
        EarlyExitRunner,
        export_segments,
        layer_logits,
        train_ramps,
    )
    from paretobert.quantize import quantize_onnx
    from paretobert.variant import content_hash, library_versions

    def build(tmp: Path) -> dict[str, Any]:
        import torch

        model = AutoModelForSequenceClassification.from_pretrained(ckpt, attn_implementation="eager")
        tok = AutoTokenizer.from_pretrained(ckpt)
        ramps, stats = train_ramps(model, tok, texts=split.train_texts, labels=split.train_labels,
                                   max_length=variant.train_length, truncation=variant.truncation,
                                   epochs=variant.exit.epochs, lr=variant.exit.lr,
                                   batch_size=variant.train.batch_size, seed=variant.seed, progress=progress)
        files = export_segments(model, ramps, tok, tmp, opset=variant.export.opset)
        runner = EarlyExitRunner([tmp / f for f in files], threshold=0.0)
        diff = 0.0
        for text in split.test_texts[:4]:
            feed = encode_text(tok, text, max_length=variant.seq_len, names=runner.input_names,
                               truncation=variant.truncation)
            want = layer_logits(model, ramps, {k: torch.from_numpy(v) for k, v in feed.items()})
            diff = max(diff, *(float(np.abs(g - w.numpy()).max()) for g, w in
                               zip(runner.all_logits(feed), want, strict=True)))
        del runner
        if variant.quant:
            for f in files:
                quantize_onnx(tmp / f, tmp / f.replace(".onnx", ".int8.onnx"), cfg=variant.quantize)
                (tmp / f).unlink()
            files = [f.replace(".onnx", ".int8.onnx") for f in files]
        return {"files": files, "train": stats, "max_abs_diff": diff}

    key = content_hash({"train": train_key, "exit": {"epochs": variant.exit.epochs, "lr": variant.exit.lr},
                        "length": variant.train_length, "truncation": variant.truncation,
                        "opset": variant.export.opset, "quant": variant.quantize if variant.quant else None,
                        "v": library_versions()})
    return key, artifact(cache_dir, "exit", key, build)


def _quant_stage(variant: Variant, fp32: Path, export_key: str, cache_dir: Path):
    from paretobert.quantize import quantize_onnx

    def build(tmp: Path) -> dict[str, Any]:
        quantize_onnx(fp32, tmp / "model.int8.onnx", cfg=variant.quantize)
        return {"file": "model.int8.onnx"}

    key = variant.quant_key(export_key=export_key)
    return key, artifact(cache_dir, "int8", key, build)


def _preparer(variant: Variant, ckpt: Path, names: list[str]) -> tuple[Callable, Callable]:
    """(text -> batch-1 feed, feed -> its length in tokens) for the variant's model."""
    if variant.model.arch == "tfidf":
        from paretobert.classic import prepare_text

        def prep_text(text: str) -> dict[str, np.ndarray]:
            s = prepare_text(text, max_chars=variant.seq_len, truncation=variant.truncation)
            return {names[0]: np.array([[s]], dtype=object)}

        return prep_text, lambda feed: len(feed[names[0]][0, 0])

    from transformers import AutoTokenizer

    from paretobert.encoding import encode_text

    tok = AutoTokenizer.from_pretrained(ckpt)

    def prep_tokens(text: str) -> dict[str, np.ndarray]:
        return encode_text(tok, text, max_length=variant.seq_len, names=names, truncation=variant.truncation)

    return prep_tokens, lambda feed: feed["input_ids"].shape[1]


def _open_model(variant: Variant, paths: list[Path], threads: int | None):
    """(run(feed) -> (logits, exit layer or None), input names, session creation ms)."""
    if variant.exit.threshold is None:
        sess, ms = make_session(paths[0], threads=threads)
        return (lambda feed: (sess.run(None, feed)[0], None)), [i.name for i in sess.get_inputs()], ms
    from paretobert.models.early_exit import EarlyExitRunner

    t0 = time.perf_counter()
    runner = EarlyExitRunner(paths, threshold=variant.exit.threshold, threads=threads)
    return runner, runner.input_names, (time.perf_counter() - t0) * 1000.0


def _evaluate(variant: Variant, split: Split, paths: list[Path], ckpt: Path, progress: bool) -> dict[str, Any]:
    """Accuracy on the whole test split, with the predictions (they do not depend on threads)."""
    out: dict[str, Any] = {}
    if variant.exit.threshold is None:
        sess, _ = make_session(paths[0])  # all cores: not timed
        prepare, length = _preparer(variant, ckpt, [i.name for i in sess.get_inputs()])
        feeds = [prepare(t) for t in split.test_texts]
        preds = predict(sess, feeds, batch_size=variant.eval.batch_size, progress=progress)
        del sess
    else:  # batch 1: where each input exits is the point
        run, names, _ = _open_model(variant, paths, None)
        prepare, length = _preparer(variant, ckpt, names)
        feeds = [prepare(t) for t in split.test_texts]
        outs = [run(f) for f in tqdm(feeds, desc="evaluate", unit="text", disable=not progress, leave=False)]
        preds = np.array([int(np.argmax(lg)) for lg, _ in outs])
        layers = [layer for _, layer in outs]
        out["exit_layer_mean"] = float(np.mean(layers))
        out["exit_layer_counts"] = {str(k): int(v) for k, v in
                                    zip(*np.unique(layers, return_counts=True), strict=True)}
        del run
    out.update(classification_metrics(split.test_labels, preds.tolist()))
    out["n_test"] = len(feeds)
    out["mean_tokens"] = float(np.mean([length(f) for f in feeds]))
    out["predictions"] = [int(p) for p in preds]
    return out


def _eval_stage(variant: Variant, split: Split, paths: list[Path], ckpt: Path, model_key: str,
                cache_dir: Path, progress: bool):
    """The cached evaluation of one model artifact at one seq_len / truncation / exit threshold."""
    from paretobert.variant import content_hash

    key = content_hash({"model": model_key, "data": split.fingerprint(), "seq_len": variant.seq_len,
                        "truncation": variant.truncation, "exit": variant.exit.threshold,
                        "batch": variant.eval.batch_size if variant.exit.threshold is None else 1})
    return key, artifact(cache_dir, "eval", key,
                         lambda tmp: _evaluate(variant, split, paths, ckpt, progress))


def time_round(run: Callable, create_ms: float, feeds: list[dict[str, np.ndarray]], b: Any, *, desc: str,
               progress: bool) -> dict[str, Any]:
    """One timing round of a freshly opened model: its cold first call, then the timing loop."""
    t0 = time.perf_counter()
    run(feeds[0])
    first_ms = (time.perf_counter() - t0) * 1000.0
    lat = summarize(time_loop(lambda i: run(feeds[i]), n_inputs=len(feeds), warmup=b.warmup,
                              min_iters=b.min_iters, min_seconds=b.min_seconds, max_seconds=b.max_seconds,
                              desc=desc, progress=progress))
    return {"stats": lat, "session_create_ms": create_ms, "first_inference_ms": first_ms}


def bench_variant(variant: Variant, paths: list[Path], ckpt: Path, texts: list[str],
                  progress: bool = False) -> dict[str, Any]:
    """Time one variant on ``texts`` (batch 1, ``bench.repeats`` rounds, each in a fresh
    session), its tokenization, its peak memory and (``bench.batch_sizes``) its throughput.
    A plain function of picklable arguments, so ``bench.isolate`` can run it in a spawned process."""
    from paretobert.bench.memory import peak_rss_mb, reset_peak_rss, rss_mb

    b = variant.bench
    before = rss_mb()
    peak_resets = reset_peak_rss()
    rounds, prepare, length, feeds = [], None, None, []
    for r in range(b.repeats):  # a fresh session per round: creation and cold start included
        run, names, create_ms = _open_model(variant, paths, variant.runtime.threads)
        if prepare is None:
            prepare, length = _preparer(variant, ckpt, names)
            feeds = [prepare(t) for t in texts]
        rounds.append(time_round(run, create_ms, feeds, b, desc=f"time {r + 1}/{b.repeats}", progress=progress))
        if r < b.repeats - 1:
            del run  # before the next round's session: never two in memory
    out: dict[str, Any] = {"rounds": rounds}
    if b.batch_sizes:  # in the last round's session
        out["throughput"] = _throughput(variant, run, feeds, progress)
    del run
    peak = peak_rss_mb()
    out["peak_rss_mb"] = peak
    out["peak_rss_scope"] = "timing" if peak_resets else "process"
    if before is not None and peak_resets:
        out["rss_growth_mb"] = max(0.0, peak - before)
    tok = summarize(time_loop(lambda i: prepare(texts[i]), n_inputs=len(texts), warmup=min(5, b.warmup),
                              min_iters=len(texts), min_seconds=0.0, max_seconds=b.max_seconds))
    out["tokenize_p50_ms"], out["tokenize_mean_ms"] = tok.p50, tok.mean
    out["bench_tokens_mean"] = float(np.mean([length(f) for f in feeds]))
    return out


def _throughput(variant: Variant, run: Callable, feeds: list[dict[str, np.ndarray]],
                progress: bool) -> dict[str, Any]:
    """Texts per second at each of ``bench.batch_sizes`` (zero-padded batches of the bench
    texts, in order). Early exit decides per input, so it is measured at batch 1 only."""
    from paretobert.evaluate import batch_feeds

    b = variant.bench
    out: dict[str, Any] = {}
    for size in b.batch_sizes:
        if size > 1 and variant.exit.threshold is not None:
            out[str(size)] = None
            continue
        batches = [batch_feeds([feeds[(k * size + j) % len(feeds)] for j in range(size)])
                   for k in range(max(1, len(feeds) // size))]
        ms = summarize(time_loop(lambda i, batches=batches: run(batches[i]), n_inputs=len(batches),
                                 warmup=min(3, b.warmup), min_iters=max(3, b.min_iters // size),
                                 min_seconds=b.min_seconds, max_seconds=b.max_seconds,
                                 desc=f"throughput b{size}", progress=progress))
        out[str(size)] = size * 1000.0 / ms.p50
    return out


def _isolated(fn: Callable, *args: Any) -> Any:
    """``fn(*args)`` in a freshly spawned Python process (nothing inherited but the arguments)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def _measure(variant: Variant, split: Split, paths: list[Path], ckpt: Path, model_key: str,
             cache_dir: Path, stages: _Stages, progress: bool) -> dict[str, Any]:
    from paretobert.export import model_bytes

    vid = variant.variant_id
    out: dict[str, Any] = {"model_mb": sum(model_bytes(p) for p in paths) / 1e6}
    with stages("evaluate", vid):
        ekey, (_, emeta, reused) = _eval_stage(variant, split, paths, ckpt, model_key, cache_dir, progress)
    out.update({k: v for k, v in emeta.items() if k not in ("key", "predictions", "integrity")})
    out.update(eval_key=ekey, eval_cached=reused)
    with stages("bench", vid):
        pick = _evenly_spaced(len(split.test_texts), variant.bench.n_texts)
        texts = [split.test_texts[i] for i in pick]
        if variant.bench.isolate:
            bench = _isolated(bench_variant, variant, paths, ckpt, texts, False)
        else:
            bench = bench_variant(variant, paths, ckpt, texts, progress)
    out.update(_latency_fields(bench.pop("rounds")))
    out.update(bench)
    out["bench_isolated"] = variant.bench.isolate
    out.update(_accuracy_interval(out["accuracy"], out["n_test"]))
    return out


def _latency_fields(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Latency of one or more timing rounds: percentiles of the single round, or the median of
    the round medians; a bootstrap 95% interval of p50 (over the raw timings of a single round,
    over the round medians otherwise)."""
    from paretobert.stats import bootstrap_interval

    lats = [r["stats"] for r in rounds]
    out: dict[str, Any] = {"latency": lats[0].as_dict() if len(lats) == 1 else
                           {"unit": "ms", "rounds": [lat.as_dict() for lat in lats]}}
    for stat in ("p50", "p90", "p99", "mean", "std", "min", "max"):
        out[f"latency_{stat}_ms"] = float(np.median([getattr(lat, stat) for lat in lats]))
    out["latency_n"] = int(sum(lat.n for lat in lats))
    out["latency_rounds"] = len(lats)
    out["latency_p50_rounds_ms"] = [lat.p50 for lat in lats]
    sample = lats[0].raw if len(lats) == 1 else [lat.p50 for lat in lats]
    out["latency_p50_ms_ci_lo"], out["latency_p50_ms_ci_hi"] = bootstrap_interval(sample)
    out["session_create_ms"] = float(np.median([r["session_create_ms"] for r in rounds]))
    out["first_inference_ms"] = float(np.median([r["first_inference_ms"] for r in rounds]))
    return out


def _accuracy_interval(accuracy: float, n: int) -> dict[str, float]:
    from paretobert.stats import wilson_interval

    lo, hi = wilson_interval(int(round(accuracy * n)), n)
    return {"accuracy_ci_lo": lo, "accuracy_ci_hi": hi}


def _reusable(rec: Any, variant: Variant) -> bool:
    return (isinstance(rec, dict) and seal_ok(rec) and rec.get("status") == "ok" and rec.get("hash") == variant.hash
            and rec.get("environment", {}).get("machine_id") == machine_id())


def run_variant(
    variant: Variant,
    *,
    out_dir: Path,
    cache_dir: Path,
    force: bool = False,
    allow_network: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Run (or reuse) one variant and write ``out_dir/result.json``; returns the record.

    A result is reused when it is ok, has the variant's hash and was measured on this
    machine: first from ``out_dir``, then from the shared results cache; ``force`` redoes it.
    """
    out_dir, cache_dir = Path(out_dir), Path(cache_dir).expanduser()
    result_path = out_dir / RESULT_FILE
    shared = cache_dir / "results" / f"{variant.hash}-{machine_id()}.json"
    if not force:
        for path in (result_path, shared):
            rec = read_json(path)
            if _reusable(rec, variant):
                log.info("[%s] done already (%s): skipped; force=true redoes it", variant.variant_id, path)
                if path != result_path:
                    rec = {**rec, "reused_from": str(path)}
                    atomic_write_json(result_path, seal(rec))
                return rec

    stages = _Stages()
    vid = variant.variant_id
    env = environment(threads=variant.runtime.threads)
    record: dict[str, Any] = {
        "variant_id": vid, "name": variant.name, "hash": variant.hash, "variant": variant.to_dict(),
        "model": variant.model.name, "dataset": variant.dataset.name, "quant": variant.quant,
        "seq_len": variant.seq_len, "truncation": variant.truncation,
        "train_length": variant.train_length, "threads": variant.runtime.threads, "weights": variant.weights,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "pid": os.getpid(),
        "environment": env,
        "warnings": [],
    }
    if variant.quant and not env["vnni"]:
        msg = ("int8 on a CPU without VNNI (AVX-512 VNNI / AVX-VNNI): ONNX Runtime's int8 kernels run "
               "the slower AVX2 path here; int8 speed-ups on VNNI machines will be larger")
        log.warning("[%s] %s", vid, msg)
        record["warnings"].append(msg)
    try:
        with stages("data", vid):
            split = _split(variant, cache_dir, allow_network)
        record["data"] = split.stats()
        from paretobert.models import resolve_source

        classic = variant.model.arch == "tfidf"
        if classic:
            record.update(weights_source="tfidf", pretrained=False)
        else:
            with stages("weights", vid):
                source = resolve_source(variant.model, weights=variant.weights, cache_dir=cache_dir,
                                        allow_network=allow_network)
            record.update(weights_source=source.label, pretrained=source.pretrained)
        with stages("fine-tune", vid):
            if classic:
                tkey, (ckpt, tmeta, reused) = _tfidf_train_stage(variant, split, cache_dir)
            else:
                tkey, (ckpt, tmeta, reused) = _train_stage(variant, split, source, cache_dir, progress,
                                                           allow_network)
        record.update(train_key=tkey, train=tmeta["train"], n_params=tmeta["n_params"],
                      train_cached=reused)
        with stages("export", vid):
            export = _tfidf_export_stage if classic else _export_stage
            ekey, (onnx_dir, emeta, _) = export(variant, ckpt, tkey, split, cache_dir)
        record.update(export_key=ekey, fusion=emeta["fusion"], onnx_max_abs_diff=emeta["max_abs_diff"])
        onnx_path = onnx_dir / emeta["file"]
        if variant.quant:
            with stages("quantize", vid):
                qkey, (qdir, qmeta, _) = _quant_stage(variant, onnx_path, ekey, cache_dir)
            record["quant_key"] = qkey
            onnx_path = qdir / qmeta["file"]
        paths, model_key = [onnx_path], record.get("quant_key", ekey)
        if variant.exit.threshold is not None:
            with stages("early-exit", vid):
                xkey, (xdir, xmeta, _) = _exit_stage(variant, ckpt, tkey, split, cache_dir, progress)
            record.update(exit_key=xkey, exit_train=xmeta["train"], exit_max_abs_diff=xmeta["max_abs_diff"])
            paths, model_key = [xdir / f for f in xmeta["files"]], xkey
        record["onnx_path"] = str(paths[0] if len(paths) == 1 else paths[0].parent)
        record.update(_measure(variant, split, paths, ckpt, model_key, cache_dir, stages, progress))
        record["status"] = "ok"
    except Exception as e:  # noqa: BLE001 - recorded, the sweep goes on
        log.error("[%s] failed: %s: %s", vid, type(e).__name__, e)
        record.update(status="failed", error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc())
    record["stage_seconds"] = stages.seconds
    record["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    record = seal(record)
    atomic_write_json(result_path, record)
    if record["status"] == "ok":
        atomic_write_json(shared, record)
    return record


def format_result_line(rec: dict[str, Any]) -> str:
    """One line summarising a result record."""
    if rec.get("status") != "ok":
        return f"{rec.get('variant_id')}: FAILED {rec.get('error', '')}"
    return (
        f"{rec['variant_id']}: accuracy={rec['accuracy']:.4f} macro_f1={rec['macro_f1']:.4f} "
        f"p50={rec['latency_p50_ms']:.2f}ms p99={rec['latency_p99_ms']:.2f}ms "
        f"tokenize_p50={rec['tokenize_p50_ms']:.2f}ms model={rec['model_mb']:.1f}MB "
        f"weights={rec.get('weights_source')} n_test={rec['n_test']}"
    )
