"""Measurement of one prepared model: inputs, accuracy over the test split, latency rounds,
tokenization, memory, throughput, and timing in an isolated process.

Public API used by the pipeline, ``retime``, ``compare``, experiments and benchmarks. Plain
functions of a :class:`~paretobert.variant.Variant` and model paths; never imports Hydra.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from paretobert.bench import summarize, time_loop
from paretobert.bench.memory import peak_rss_mb, reset_peak_rss, rss_mb
from paretobert.classic import prepare_text
from paretobert.config import BenchConfig
from paretobert.data import QASplit, Split, load_split
from paretobert.encoding import encode_text
from paretobert.evaluate import batch_feeds, classification_metrics, predict
from paretobert.flops import encoder_flops, precision_class
from paretobert.peaks import gemm_peak
from paretobert.runtimes import get_runtime
from paretobert.runtimes.segmented import EarlyExitRunner
from paretobert.stats import bootstrap_interval, wilson_interval
from paretobert.store import model_bytes, read_json
from paretobert.variant import Variant

__all__ = [
    "OpenModel",
    "accuracy_interval",
    "bench_texts",
    "bench_variant",
    "calibration_feeds",
    "clear_split_cache",
    "evaluate",
    "evenly_spaced",
    "exit_fields",
    "hardware_fields",
    "isolated",
    "latency_fields",
    "model_mb",
    "model_paths",
    "open_model",
    "preparer",
    "split_inputs",
    "split_of",
    "throughput",
    "time_round",
]

Feed = dict[str, np.ndarray]

_SPLITS: dict[str, Split] = {}


def split_of(variant: Variant, cache_dir: Path, allow_network: bool) -> Split:
    """The variant's data split, loaded once per process (a multirun shares it)."""
    key = variant.data_key()
    if key not in _SPLITS:
        _SPLITS[key] = load_split(variant.dataset, cache_dir=cache_dir, allow_network=allow_network)
    return _SPLITS[key]


def clear_split_cache() -> None:
    _SPLITS.clear()


def evenly_spaced(n: int, k: int) -> list[int]:
    """k indices spread over range(n): a class-balanced timing sample of a sorted test split."""
    if k >= n:
        return list(range(n))
    return sorted({int(i) for i in np.linspace(0, n - 1, k)})


Pair = tuple[str, str]  # a QA input: (question, context)


def split_inputs(split: Split | QASplit, part: str) -> list[str] | list[Pair]:
    """The model inputs of a split's ``train`` or ``test`` side: texts, or QA pairs."""
    if isinstance(split, QASplit):
        return [(i.question, i.context) for i in getattr(split, part)]
    return split.train_texts if part == "train" else split.test_texts


def bench_texts(variant: Variant, split: Split | QASplit) -> list[str] | list[Pair]:
    """The inputs every variant of a sweep is timed on: ``bench.n_texts`` spread over the
    test split (texts; (question, context) pairs for a QA dataset)."""
    items = split_inputs(split, "test")
    return [items[i] for i in evenly_spaced(len(items), variant.bench.n_texts)]


def calibration_feeds(variant: Variant, split: Split | QASplit, ckpt: Path, names: list[str]) -> list[Feed]:
    """``quantize.calibration_size`` train texts (evenly spread, so every class is seen; QA:
    train questions with their contexts), encoded as at inference (``seq_len``, truncation):
    what static int8 calibrates on. Never test texts."""
    items = split_inputs(split, "train")
    pick = evenly_spaced(len(items), variant.quantize.calibration_size)
    prepare, _ = preparer(variant, ckpt, names)
    return [prepare(items[i]) for i in pick]


def model_paths(rec: dict[str, Any]) -> list[Path]:
    """The model file(s) a result record was timed on (``onnx_path``: one file, or the
    directory of early-exit segments)."""
    p = Path(rec["onnx_path"])
    return sorted(p.glob("segment_*.onnx")) if p.is_dir() else [p]


def cached_artifacts(rec: dict[str, Any], cache_dir: Path) -> tuple[list[Path], Path]:
    """(the model file(s), the fine-tuned checkpoint directory) a result record was measured
    from, in ``cache_dir``; FileNotFoundError (one line) naming the first the cache lost."""
    paths = model_paths(rec)
    ckpt = Path(cache_dir).expanduser() / "checkpoints" / rec["train_key"]
    missing = [p for p in [*paths, ckpt] if not p.exists()]
    if missing:
        raise FileNotFoundError(f"{rec['variant_id']}: cached artifact {missing[0]} is gone; re-run the sweep (it "
                                "rebuilds only what is missing) or pass the --cache-dir it used")
    return paths, ckpt


def model_mb(paths: Sequence[Path]) -> float:
    """Megabytes on disk of the model file(s) (external data included)."""
    return sum(model_bytes(p) for p in paths) / 1e6


def preparer(variant: Variant, ckpt: Path, names: list[str]) -> tuple[Callable[[str], Feed], Callable[[Feed], int]]:
    """(text -> batch-1 feed, feed -> its length in tokens) for the variant's model."""
    if variant.model.arch == "tfidf":

        def prep_text(text: str) -> Feed:
            s = prepare_text(text, max_chars=variant.seq_len, truncation=variant.truncation)
            return {names[0]: np.array([[s]], dtype=object)}

        return prep_text, lambda feed: len(feed[names[0]][0, 0])

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(ckpt)

    def prep_tokens(text: str | Pair) -> Feed:
        if isinstance(text, tuple):  # a QA reader at batch 1: question + the context's first window
            enc = tok(*text, truncation="only_second", max_length=variant.seq_len, return_tensors="np")
            return {n: enc[n].astype(np.int64) if n in enc else np.zeros_like(enc["input_ids"], dtype=np.int64)
                    for n in names}
        return encode_text(tok, text, max_length=variant.seq_len, names=names, truncation=variant.truncation)

    return prep_tokens, lambda feed: feed["input_ids"].shape[1]


@dataclass
class OpenModel:
    """An opened model ready to time: ``run(feed)`` -> (logits, 1-based exit layer or None)."""

    run: Callable[[Feed], tuple[np.ndarray, int | None]]
    input_names: list[str]
    create_ms: float
    executed: dict[str, Any]


def open_model(variant: Variant, paths: list[Path], threads: int | None) -> OpenModel:
    """A fresh session of the variant's runtime on its model (the early-exit segments when
    ``exit.threshold`` is set) with ``threads`` intra-op threads (None: all cores)."""
    runtime = get_runtime(variant.runtime_name)
    precision = variant.resolved_precision
    if variant.exit.threshold is None:
        sess, ms = runtime.open(paths[0], threads=threads, precision=precision)
        return OpenModel(lambda feed: (sess.run(feed), None), sess.input_names, ms, sess.executed)
    t0 = time.perf_counter()
    runner = EarlyExitRunner(paths, threshold=variant.exit.threshold, threads=threads, runtime=runtime,
                             precision=precision)
    return OpenModel(runner, runner.input_names, (time.perf_counter() - t0) * 1000.0, runner.executed)


def exit_fields(layers: Sequence[int | None]) -> dict[str, Any]:
    """The mean 1-based layer the inputs exited at and how many exited at each (none: {})."""
    if not layers:
        return {}
    return {"exit_layer_mean": float(np.mean(layers)),
            "exit_layer_counts": {str(k): int(v) for k, v in zip(*np.unique(layers, return_counts=True), strict=True)}}


def evaluate_qa(variant: Variant, split: QASplit, paths: list[Path], ckpt: Path, progress: bool) -> dict[str, Any]:
    """Exact match and F1 (fractions, bootstrap 95% intervals over questions) of a QA reader
    on every test question, each read as a deployed reader at batch 1 reads it: the question
    and the first ``seq_len``-token window of its context (an answer past it is a miss;
    ``answer_in_window`` says how many lie inside). ``accuracy`` is the exact-match rate."""
    from transformers import AutoTokenizer

    from paretobert.qa import prepare_features, score
    from paretobert.qa_model import answer, session_logits

    tok = AutoTokenizer.from_pretrained(ckpt)
    items = split.test
    # one tokenisation: the windows read, and where each answer lies in them
    feats = prepare_features(tok, items, max_length=variant.seq_len, windows="first", labels=True)
    layers: list[int | None] = []
    opened: Any
    if variant.exit.threshold is None:
        opened, _ = get_runtime(variant.runtime_name).open(paths[0], precision=variant.resolved_precision)  # untimed
        run = session_logits(opened)
    else:  # batch 1 (the config insists): each question exits on its own
        opened = open_model(variant, paths, None)

        def run(feed: Feed) -> tuple[np.ndarray, np.ndarray]:
            logits, layer = opened.run({k: v for k, v in feed.items() if k in opened.input_names})
            layers.append(layer)
            return logits[:, 0], logits[:, 1]

    preds = answer(run, tok, items, seq_len=variant.seq_len, windows="first",
                   batch_size=variant.eval.batch_size, max_answer_length=variant.dataset.max_answer_length,
                   features=feats, progress=progress)
    opened = run = None  # the sessions go before scoring
    s = score(preds, items, language=split.language)
    out: dict[str, Any] = {"task": "qa", "n_test": len(items), **exit_fields(layers)}
    for name in ("exact_match", "f1"):
        out[name], out[f"{name}_ci_lo"], out[f"{name}_ci_hi"] = (float(s[k]) / 100 for k in (
            name, f"{name}_ci_lo", f"{name}_ci_hi"))
    out.update(accuracy=out["exact_match"], accuracy_ci_lo=out["exact_match_ci_lo"],
               accuracy_ci_hi=out["exact_match_ci_hi"])
    inside = [i for i, s0 in enumerate(feats.start_positions) if s0 > 0]
    out["answer_in_window"] = len(inside) / len(items)
    out["mean_tokens"] = float(feats.attention_mask.sum(axis=1).mean())
    out["predictions"] = [preds.get(i.id, "") for i in items]
    return out


def evaluate(variant: Variant, split: Split | QASplit, paths: list[Path], ckpt: Path,
             progress: bool) -> dict[str, Any]:
    """Accuracy on the whole test split, with the predictions (they do not depend on threads);
    a QA reader: :func:`evaluate_qa`."""
    if isinstance(split, QASplit):
        return evaluate_qa(variant, split, paths, ckpt, progress)
    out: dict[str, Any] = {}
    if variant.exit.threshold is None:
        sess, _ = get_runtime(variant.runtime_name).open(paths[0], precision=variant.resolved_precision)  # untimed
        prepare, length = preparer(variant, ckpt, sess.input_names)
        feeds = [prepare(t) for t in split.test_texts]
        preds = predict(sess, feeds, batch_size=variant.eval.batch_size, progress=progress)
        del sess
    else:  # batch 1: where each input exits is the point
        model = open_model(variant, paths, None)
        prepare, length = preparer(variant, ckpt, model.input_names)
        feeds = [prepare(t) for t in split.test_texts]
        outs = [model.run(f) for f in tqdm(feeds, desc="evaluate", unit="text", disable=not progress, leave=False)]
        preds = np.array([int(np.argmax(lg)) for lg, _ in outs])
        out.update(exit_fields([layer for _, layer in outs]))
        del model
    out.update(classification_metrics(split.test_labels, preds.tolist()))
    out["n_test"] = len(feeds)
    out["mean_tokens"] = float(np.mean([length(f) for f in feeds]))
    out["predictions"] = [int(p) for p in preds]
    return out


def time_round(model: OpenModel, feeds: list[Feed], b: BenchConfig, *, desc: str, progress: bool) -> dict[str, Any]:
    """One timing round of a freshly opened model: its cold first call, then the timing loop."""
    t0 = time.perf_counter()
    model.run(feeds[0])
    first_ms = (time.perf_counter() - t0) * 1000.0
    lat = summarize(time_loop(lambda i: model.run(feeds[i]), n_inputs=len(feeds), warmup=b.warmup,
                              min_iters=b.min_iters, min_seconds=b.min_seconds, max_seconds=b.max_seconds,
                              desc=desc, progress=progress))
    return {"stats": lat, "session_create_ms": model.create_ms, "first_inference_ms": first_ms}


def bench_variant(variant: Variant, paths: list[Path], ckpt: Path, texts: list[str],
                  progress: bool = False) -> dict[str, Any]:
    """Time one variant on ``texts`` (batch 1, ``bench.repeats`` rounds, each in a fresh
    session), its tokenization, its peak memory and (``bench.batch_sizes``) its throughput.
    A plain function of picklable arguments, so ``bench.isolate`` can run it in a spawned process."""
    b = variant.bench
    before = rss_mb()
    peak_resets = reset_peak_rss()
    rounds: list[dict[str, Any]] = []
    prepare: Callable[[str], Feed] | None = None
    length: Callable[[Feed], int] = len
    feeds: list[Feed] = []
    for r in range(b.repeats):  # a fresh session per round: creation and cold start included
        model = open_model(variant, paths, variant.runtime.threads)
        if prepare is None:
            prepare, length = preparer(variant, ckpt, model.input_names)
            feeds = [prepare(t) for t in texts]
        rounds.append(time_round(model, feeds, b, desc=f"time {r + 1}/{b.repeats}", progress=progress))
        if r < b.repeats - 1:
            del model  # before the next round's session: never two in memory
    out: dict[str, Any] = {"rounds": rounds, "executed": model.executed}
    if b.batch_sizes:  # in the last round's session
        out["throughput"] = throughput(variant, model, feeds, progress)
    del model
    peak = peak_rss_mb()
    out["peak_rss_mb"] = peak
    out["peak_rss_scope"] = "timing" if peak_resets else "process"
    if before is not None and peak_resets:
        out["rss_growth_mb"] = max(0.0, peak - before)
    assert prepare is not None
    prep = prepare
    tok = summarize(time_loop(lambda i: prep(texts[i]), n_inputs=len(texts), warmup=min(5, b.warmup),
                              min_iters=len(texts), min_seconds=0.0, max_seconds=b.max_seconds))
    out["tokenize_p50_ms"], out["tokenize_mean_ms"] = tok.p50, tok.mean
    out["bench_tokens_mean"] = float(np.mean([length(f) for f in feeds]))
    return out


def throughput(variant: Variant, model: OpenModel, feeds: list[Feed], progress: bool) -> dict[str, float | None]:
    """Texts per second at each of ``bench.batch_sizes`` (zero-padded batches of the bench
    texts, in order). Early exit decides per input, so it is measured at batch 1 only."""
    b = variant.bench
    out: dict[str, float | None] = {}
    for size in b.batch_sizes:
        if size > 1 and variant.exit.threshold is not None:
            out[str(size)] = None
            continue
        batches = [batch_feeds([feeds[(k * size + j) % len(feeds)] for j in range(size)])
                   for k in range(max(1, len(feeds) // size))]
        ms = summarize(time_loop(lambda i, batches=batches: model.run(batches[i]), n_inputs=len(batches),
                                 warmup=min(3, b.warmup), min_iters=max(3, b.min_iters // size),
                                 min_seconds=b.min_seconds, max_seconds=b.max_seconds,
                                 desc=f"throughput b{size}", progress=progress))
        out[str(size)] = size * 1000.0 / ms.p50
    return out


def isolated(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a freshly spawned Python process (nothing inherited but the arguments)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def latency_fields(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Latency of one or more timing rounds: percentiles of the single round, or the median of
    the round medians; a bootstrap 95% interval of p50 (over the raw timings of a single round,
    over the round medians otherwise)."""
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


def accuracy_interval(accuracy: float, n: int) -> dict[str, float]:
    """Wilson 95% interval of an accuracy measured on ``n`` test items."""
    lo, hi = wilson_interval(int(round(accuracy * n)), n)
    return {"accuracy_ci_lo": lo, "accuracy_ci_hi": hi}


def hardware_fields(variant: Variant, ckpt: Path, out: dict[str, Any], cache_dir: Path) -> dict[str, Any]:
    """FLOPs at the timed texts' mean token count, the GFLOP/s the p50 achieves, and this
    machine's GEMM peak for the precision (how far the point is from the hardware). ``out``
    holds the measured fields (``latency_p50_ms``, ``bench_tokens_mean``, ``exit_layer_mean``);
    empty for models without an encoder (TF-IDF). With early exit the FLOPs are at the mean exit
    layer, so they are divided by the mean latency (the median text exits earlier than the mean)."""
    cfg = read_json(ckpt / "config.json")
    if variant.model.arch == "tfidf" or not isinstance(cfg, dict) or "hidden_size" not in cfg or \
            not out.get("bench_tokens_mean"):
        return {}
    layers = out.get("exit_layer_mean") or cfg["num_hidden_layers"]
    gflop = encoder_flops(layers=layers, hidden=cfg["hidden_size"], intermediate=cfg["intermediate_size"],
                          tokens=out["bench_tokens_mean"], labels=len(cfg.get("id2label") or {0: 0, 1: 1})) / 1e9
    ms = out.get("latency_mean_ms") if out.get("exit_layer_mean") else None
    achieved = gflop / ((ms or out["latency_p50_ms"]) / 1000.0)
    peaks = gemm_peak(threads=variant.runtime.threads, cache_dir=cache_dir)
    peak = peaks.get(precision_class(variant.resolved_precision))
    return {"gflop": gflop, "achieved_gflops_per_s": achieved, "peak_gflops_per_s": peak,
            "peak_fraction": None if not peak else achieved / peak, "peak_by_runtime": peaks.get("by_runtime")}
