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

import dataclasses
import time

from train_precision import _interleaved, _model, _ratio_row, _step_args, _step_record, _write

from paretobert.config import load_model_preset
from paretobert.env import default_train_precision


def main(argv: list[str] | None = None) -> int:
    args = _step_args(__doc__, argv, models=["tiny", "minilm-l6", "medium", "base"], seq_lens=[128], steps=4,
                      out="train_dropout.json", arch=True)
    precision = default_train_precision("cpu")
    rows = []
    t_start = time.perf_counter()
    for name in args.models:
        preset = load_model_preset(name)
        if args.arch:
            preset = dataclasses.replace(preset, arch=args.arch)
        model = _model(preset, attn_implementation="eager")  # as the product trains
        for seq_len in args.seq_lens:
            times = _interleaved(model, precision, seq_len, args.steps, args.rounds,
                                 {"torch": {"dropout": "torch"}, "fast": {"dropout": "fast"}})
            rows.append(_ratio_row(name, preset, seq_len, times, "torch", "fast", arch=preset.arch))
    record = _step_record("train_dropout", args, precision, t_start, rows)
    return _write(args.out, record)


if __name__ == "__main__":
    raise SystemExit(main())
