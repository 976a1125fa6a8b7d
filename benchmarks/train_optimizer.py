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

import time

from train_precision import _interleaved, _model, _ratio_row, _step_args, _step_record, _write

from paretobert.config import load_model_preset
from paretobert.env import default_train_precision


def main(argv: list[str] | None = None) -> int:
    args = _step_args(__doc__, argv, models=["minilm-l6", "base"], seq_lens=[16, 32, 128], steps=6,
                      out="train_optimizer.json")
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
    record = _step_record("train_optimizer", args, precision, t_start, rows)
    return _write(args.out, record)


if __name__ == "__main__":
    raise SystemExit(main())
