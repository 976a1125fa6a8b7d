"""Fine-tuning step time with paretobert's fast dropout masks vs torch's own, side by side.

Why ``train.dropout=fast`` is the default: on CPU torch draws dropout's mask with one serial
random number per element (``bernoulli_``); a fine-tuning step of a small BERT at 128 tokens
spent 11-25% of its time there (``torch.profiler``; the attention probabilities, batch x heads
x 128 x 128, are the largest tensor dropped). ``paretobert.train.fast_dropout`` draws 16 bits
per element from 64-bit random words. This times optimizer steps of paretobert's own loop
(``paretobert.train.train_loop``: AdamW, clipping, schedule, at ``train.precision=auto``), the
models with eager attention as the product trains them, batch 16 x each ``--seq-lens`` tokens,
alternating the two kernels round by round so machine drift hits both alike. Ratios are the
figures to read; absolute seconds drift between runs on shared machines. Run it alone.

    python benchmarks/train_dropout.py [--models minilm-l6 medium base] [--arch mpnet] [--seq-lens 128]

``--arch``: the presets' shapes in another family (mpnet: how the size ladder builds small,
medium and base offline). Whether the kernel changes accuracy is not measured here (the same
distribution, another random stream: README, training policy).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch
from train_precision import _interleaved, _ratio_row, _write

from paretobert.config import load_model_preset, model_presets
from paretobert.env import default_train_precision, environment
from paretobert.models.zoo import random_init_config

HERE = Path(__file__).resolve().parent


def _model(preset):
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_config(
        random_init_config(preset, vocab_size=30522, num_labels=5), attn_implementation="eager")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", choices=[m for m in model_presets() if m != "tfidf"],
                    default=["tiny", "minilm-l6", "medium", "base"])
    ap.add_argument("--arch", default=None, help="a transformers model_type for every preset (default: its own)")
    ap.add_argument("--seq-lens", nargs="+", type=int, default=[128])
    ap.add_argument("--steps", type=int, default=4, help="optimizer steps per timing")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "train_dropout.json")
    args = ap.parse_args(argv)
    precision = default_train_precision("cpu")
    rows = []
    t_start = time.perf_counter()
    for name in args.models:
        preset = load_model_preset(name)
        if args.arch:
            preset = dataclasses.replace(preset, arch=args.arch)
        model = _model(preset)
        for seq_len in args.seq_lens:
            times = _interleaved(model, precision, seq_len, args.steps, args.rounds,
                                 {"torch": {"dropout": "torch"}, "fast": {"dropout": "fast"}})
            rows.append(_ratio_row(name, preset, seq_len, times, "torch", "fast", arch=preset.arch))
    record = {"benchmark": "train_dropout", "batch_size": 16, "steps": args.steps, "rounds": args.rounds,
              "precision": precision, "threads": torch.get_num_threads(),
              "wall_s": round(time.perf_counter() - t_start, 1), "environment": environment(), "rows": rows}
    return _write(args.out, record)


if __name__ == "__main__":
    raise SystemExit(main())
