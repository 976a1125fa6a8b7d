"""paretobert's frontier points beside every engine a user would pick instead, side by side.

One fine-tuned checkpoint (default: the main job's), the same real test texts, batch 1, the
same thread count, every engine's documented default path, timed in interleaved rounds in
one process (the order rotates each round, so drift hits all alike):

- torch eager fp32; torch dynamic int8 (``torch.ao.quantization.quantize_dynamic`` on Linear);
- optimum ``ORTModelForSequenceClassification.from_pretrained(ckpt, export=True)`` fp32;
  ``ORTOptimizer`` with ``AutoOptimizationConfig.O2()``; ``ORTQuantizer`` dynamic int8 with
  ``AutoQuantizationConfig.avx2`` and ``.avx512_vnni`` (both presets, on whatever CPU this is);
- OpenVINO's default: ``openvino.convert_model(torch model)`` + ``Core().compile_model(model, "CPU")``
  (only the thread count set, so it picks its own inference precision: bf16 on AMX);
- paretobert: every ok variant of ``--sweep`` at this seq_len and thread count that was built
  from the same checkpoint (its own artifacts, opened through its runtimes).

Reported: p50 per engine (median of the rounds), the ratio of each to the fastest peer,
argmax agreement with torch fp32 and accuracy on the whole test split.

    python benchmarks/peers.py [--sweep multirun/runtimes] [--seq-len 128] [--threads 1] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from paretobert import measure
from paretobert.bench import summarize, time_loop
from paretobert.config import Config, TrainConfig, load_model_preset
from paretobert.encoding import encode_text
from paretobert.env import cpu_features, environment, resolve_variant
from paretobert.frontier import pareto_mask
from paretobert.pipeline import run_variant
from paretobert.store import load_results
from paretobert.variant import Variant

Feed = dict[str, np.ndarray]


def _torch_engines(ckpt: Path, threads: int) -> dict[str, Callable[[Feed], np.ndarray]]:
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.set_num_threads(threads)
    model = AutoModelForSequenceClassification.from_pretrained(ckpt).eval()
    q = torch.ao.quantization.quantize_dynamic(
        AutoModelForSequenceClassification.from_pretrained(ckpt).eval(), {torch.nn.Linear}, dtype=torch.qint8)

    def runner(m: Any) -> Callable[[Feed], np.ndarray]:
        def run(feed: Feed) -> np.ndarray:
            with torch.inference_mode():
                return m(**{k: torch.from_numpy(v) for k, v in feed.items()}).logits.numpy()
        return run

    return {"torch eager fp32": runner(model), "torch dynamic int8": runner(q)}


def _optimum_engines(ckpt: Path, threads: int, work: Path) -> dict[str, Callable[[Feed], np.ndarray]]:
    import onnxruntime as ort
    from optimum.onnxruntime import ORTModelForSequenceClassification, ORTOptimizer, ORTQuantizer
    from optimum.onnxruntime.configuration import AutoOptimizationConfig, AutoQuantizationConfig

    def so() -> Any:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        return opts

    out: dict[str, Callable[[Feed], np.ndarray]] = {}
    base = ORTModelForSequenceClassification.from_pretrained(ckpt, export=True, session_options=so())
    base.save_pretrained(work / "fp32")
    out["optimum ORT fp32 (export=True)"] = _ort_runner(base)
    opt = ORTOptimizer.from_pretrained(base)
    opt.optimize(save_dir=work / "o2", optimization_config=AutoOptimizationConfig.O2())
    out["optimum ORTOptimizer O2"] = _ort_runner(
        ORTModelForSequenceClassification.from_pretrained(work / "o2", session_options=so()))
    for name, qc in (("avx2", AutoQuantizationConfig.avx2(is_static=False, per_channel=False)),
                     ("avx512_vnni", AutoQuantizationConfig.avx512_vnni(is_static=False, per_channel=False))):
        qz = ORTQuantizer.from_pretrained(work / "fp32")
        qz.quantize(save_dir=work / name, quantization_config=qc)
        model = ORTModelForSequenceClassification.from_pretrained(work / name, file_name="model_quantized.onnx",
                                                                  session_options=so())
        out[f"optimum dynamic int8 ({name})"] = _ort_runner(model)
    return out


def _ort_runner(model: Any) -> Callable[[Feed], np.ndarray]:
    sess = model.model  # the InferenceSession optimum built
    names = [i.name for i in sess.get_inputs()]

    def run(feed: Feed) -> np.ndarray:
        return sess.run(None, {n: feed[n] for n in names})[0]
    return run


def _openvino_engine(ckpt: Path, threads: int, feed: Feed) -> tuple[dict[str, Callable[[Feed], np.ndarray]], dict]:
    import openvino as ov
    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(ckpt).eval()
    order = ["input_ids", "attention_mask", "token_type_ids"]  # the model's positional arguments
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ovm = ov.convert_model(model, example_input=tuple(torch.from_numpy(feed[k]) for k in order))
    compiled = ov.Core().compile_model(ovm, "CPU", {"INFERENCE_NUM_THREADS": threads})
    req = compiled.create_infer_request()
    hint = compiled.get_property("INFERENCE_PRECISION_HINT")
    info = {"inference_precision": getattr(hint, "get_type_name", lambda: str(hint))(),
            "performance_hint": str(compiled.get_property("PERFORMANCE_HINT"))}

    def run(f: Feed) -> np.ndarray:
        return req.infer([f[k] for k in order])[0]
    return {f"OpenVINO default ({info['inference_precision']})": run}, info


def _paretobert_engines(sweep: Path | None, train_key: str, seq_len: int, threads: int, *, frontier_only: bool = False
                        ) -> tuple[dict[str, Callable[[Feed], np.ndarray]], dict[str, Any]]:
    out: dict[str, Callable[[Feed], np.ndarray]] = {}
    recs: dict[str, Any] = {}
    mine = []
    for rec in load_results(sweep) if sweep else []:
        v = rec.get("variant")
        if rec.get("status") != "ok" or rec.get("train_key") != train_key or not v:
            continue
        variant = Variant.from_dict(v)
        if variant.seq_len == seq_len and variant.runtime.threads == threads:
            mine.append((rec, variant))
    if frontier_only and mine:  # the sweep's (accuracy, p50) frontier at these settings, the plain int8 / fp32
        # of ONNX Runtime, and the fastest point of every runtime
        pts = pd.DataFrame([{"accuracy": r["accuracy"], "latency_p50_ms": r["latency_p50_ms"]} for r, _ in mine])
        keep = [int(i) for i in np.flatnonzero(pareto_mask(pts).to_numpy())]
        keep += [i for i, (_, v) in enumerate(mine) if v.exit.threshold is None and v.runtime.name == "onnxruntime"
                 and v.quantize.per_channel and v.resolved_precision in ("fp32", "int8-dynamic")]
        for name in {v.runtime.name for _, v in mine}:
            keep.append(min((i for i, (_, v) in enumerate(mine) if v.runtime.name == name), key=lambda i: pts.at[i, "latency_p50_ms"]))
        mine = [mine[i] for i in sorted(set(keep))]
    for rec, variant in mine:
        model = measure.open_model(variant, measure.model_paths(rec), threads)
        name = f"paretobert {variant.label(rec.get('weights_source'))}"
        if name in out:  # settings the label leaves out: keep both, told apart by their hash
            name += f" ({rec['variant_id'][-6:]})"
        out[name] = lambda f, m=model: m.run(f)[0]
        recs[name] = {"variant_id": rec["variant_id"], "accuracy": rec["accuracy"], "sweep_p50_ms": rec["latency_p50_ms"]}
    return out, recs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweep", type=Path, default=Path("multirun/runtimes"),
                    help="a sweep whose variants of the same checkpoint are timed beside the peers")
    ap.add_argument("--model", default="minilm-l6", help="the main job's model preset (fine-tuned on BBC)")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=2.0, help="minimum timed seconds per engine per round")
    ap.add_argument("--texts", type=int, default=200, help="timed texts (the sweep's bench texts)")
    ap.add_argument("--frontier-only", action="store_true",
                    help="of the sweep, only its accuracy-latency frontier at these settings, ONNX Runtime's "
                         "plain fp32 / int8 and each runtime's fastest point")
    ap.add_argument("--fixed-budget", action="store_true",
                    help="the main job as trained before the validation / early-stopping policy (2 epochs, no "
                         "validation split): the checkpoint experiments/runtimes was built on")
    ap.add_argument("--cache-dir", default=os.environ.get("PARETOBERT_CACHE", "~/.cache/paretobert"))
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    cache = Path(args.cache_dir).expanduser()

    # the main job's checkpoint (fine-tuned once and cached; this reuses it)
    train = TrainConfig(epochs=2, validation_size=0.0) if args.fixed_budget else TrainConfig()
    main_job = resolve_variant(Variant.from_config(Config(model=load_model_preset(args.model), seq_len=args.seq_len,
                                                          train=train, allow_network=False)))
    rec = run_variant(main_job, out_dir=Path(tempfile.mkdtemp(prefix="pb-peers-")), cache_dir=cache,
                      allow_network=False, progress=False)
    if rec["status"] != "ok":
        print(f"error: the main job failed: {rec.get('error')}", file=sys.stderr)
        return 2
    ckpt = cache / "checkpoints" / rec["train_key"]
    split = measure.split_of(main_job, cache, False)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(ckpt)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    timed = measure.bench_texts(main_job, split)[: args.texts]
    feeds = [encode_text(tok, t, max_length=args.seq_len, names=names) for t in timed]
    test_feeds = [encode_text(tok, t, max_length=args.seq_len, names=names) for t in split.test_texts]

    engines: dict[str, Callable[[Feed], np.ndarray]] = {}
    engines.update(_torch_engines(ckpt, args.threads))
    work = Path(tempfile.mkdtemp(prefix="pb-peers-optimum-"))
    here = Path.cwd()
    os.chdir(work)  # the exporters drop scratch files (external-data blobs) into the working directory
    try:
        engines.update(_optimum_engines(ckpt, args.threads, work))
    finally:
        os.chdir(here)
    ov_engine, ov_info = _openvino_engine(ckpt, args.threads, feeds[0])
    engines.update(ov_engine)
    peers = list(engines)
    ours, ours_info = _paretobert_engines(args.sweep, rec["train_key"], args.seq_len, args.threads,
                                           frontier_only=args.frontier_only)
    engines.update(ours)

    print(f"{len(engines)} engines; accuracy on {len(test_feeds)} test texts ...", file=sys.stderr)
    preds = {n: np.array([int(np.argmax(run(f))) for f in test_feeds]) for n, run in engines.items()}
    gold = np.array(split.test_labels)
    ref = preds["torch eager fp32"]

    p50s: dict[str, list[float]] = {n: [] for n in engines}
    order = list(engines)
    for r in range(args.rounds):
        for name in order[r % len(order):] + order[: r % len(order)]:
            run = engines[name]
            times = time_loop(lambda i, run=run: run(feeds[i]), n_inputs=len(feeds), warmup=10,
                              min_iters=len(feeds) // 2, min_seconds=args.seconds, max_seconds=60)
            p50s[name].append(summarize(times).p50)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)

    med = {n: statistics.median(v) for n, v in p50s.items()}
    fastest_peer = min(peers, key=lambda n: med[n])
    rows = [{"engine": n, "kind": "peer" if n in peers else "paretobert", "p50_ms_median": med[n],
             "p50_ms_rounds": p50s[n], "ratio_to_fastest_peer": med[n] / med[fastest_peer],
             "speedup_vs_fastest_peer": med[fastest_peer] / med[n],
             "agreement_with_torch_fp32": float(np.mean(preds[n] == ref)), "accuracy": float(np.mean(preds[n] == gold)),
             **({"sweep": ours_info[n]} if n in ours_info else {})} for n in engines]
    rows.sort(key=lambda r: r["p50_ms_median"])
    print(f"\ncheckpoint {rec['train_key']} (main job), seq_len={args.seq_len}, threads={args.threads}, "
          f"rounds={args.rounds}, {len(feeds)} timed texts, {len(test_feeds)} scored; CPU features {cpu_features()}")
    print(f"fastest peer: {fastest_peer} ({med[fastest_peer]:.2f} ms)\n")
    print("| engine | p50 ms | vs fastest peer | agreement with torch fp32 | accuracy |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['engine']} | {r['p50_ms_median']:.2f} | {r['speedup_vs_fastest_peer']:.2f}x | "
              f"{r['agreement_with_torch_fp32']:.4f} | {r['accuracy']:.4f} |")
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"peers-s{args.seq_len}-t{args.threads}.json"
    out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "train_key": rec["train_key"],
                               "fastest_peer": fastest_peer, "openvino_default": ov_info, "rows": rows,
                               "environment": environment(threads=args.threads)}, indent=2) + "\n")
    print(f"\nwritten: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
