"""Fine-tuning step time with torch's fused AdamW vs its default (foreach), side by side.

Why ``train.fused`` is on by default: this times optimizer steps of paretobert's own loop
(``paretobert.train.train_loop``: AdamW, clipping, schedule, at ``train.precision=auto``) on
each preset's architecture, batch 16 x each ``--seq-lens`` tokens (16-32: SST-2's phrases and
other short texts; 128: BBC's truncated articles), alternating the two implementations round
by round so machine drift hits both alike. Ratios are the figures to read; absolute seconds
drift between runs on shared machines. Run it alone.

    python benchmarks/train_optimizer.py [--models minilm-l6 base] [--seq-lens 16 32 128] [--rounds 3]

Whether the fused kernel changes accuracy is not measured here (the same algorithm; the last
bits of the weights differ: ``tests/test_train.py`` bounds the difference after a few steps).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from train_precision import _interleaved, _model, _ratio_row, _write

from paretobert.config import load_model_preset, model_presets
from paretobert.env import default_train_precision, environment

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", choices=[m for m in model_presets() if m != "tfidf"],
                    default=["minilm-l6", "base"])
    ap.add_argument("--seq-lens", nargs="+", type=int, default=[16, 32, 128])
    ap.add_argument("--steps", type=int, default=6, help="optimizer steps per timing")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "train_optimizer.json")
    args = ap.parse_args(argv)
    precision = default_train_precision("cpu")
    rows = []
    t_start = time.perf_counter()
    for name in args.models:
        preset = load_model_preset(name)
        model = _model(preset)
        for seq_len in args.seq_lens:
            times = _interleaved(model, precision, seq_len, args.steps, args.rounds,
                                 {"foreach": {"fused": False}, "fused": {"fused": True}})
            rows.append(_ratio_row(name, preset, seq_len, times, "foreach", "fused"))
    record = {"benchmark": "train_optimizer", "batch_size": 16, "steps": args.steps, "rounds": args.rounds,
              "precision": precision, "threads": torch.get_num_threads(),
              "wall_s": round(time.perf_counter() - t_start, 1), "environment": environment(), "rows": rows}
    return _write(args.out, record)


if __name__ == "__main__":
    raise SystemExit(main())
