"""Fine-tuning step time in fp32 vs bf16 autocast on this CPU, side by side.

Why ``train.precision=auto`` is bf16 on some CPUs and fp32 on others: this times optimizer
steps of paretobert's own loop (``paretobert.train.train_loop``: AdamW, clipping, schedule) on
each preset's architecture, batch 16 x ``--seq-len`` tokens, alternating the two precisions
round by round so machine drift hits both alike. Ratios are the figures to read; absolute
seconds drift between runs on shared machines. Run it alone.

    python benchmarks/train_precision.py [--models minilm-l6 medium base] [--steps 4] [--rounds 3]

Latency of a step does not depend on the weight values: the models are random init at the
preset's shape and family (``conf/model``: MiniLM-L6 6/384, medium 8/512, base 12/768). Whether bf16 costs accuracy
is not measured here but by the sweep itself (README: training precision).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from paretobert.config import TrainConfig, load_model_preset, model_presets
from paretobert.env import cpu_features, default_train_precision, environment
from paretobert.models.zoo import random_init_config
from paretobert.train import train_loop

HERE = Path(__file__).resolve().parent


def _model(preset, **from_config):
    """The preset's shape at random init (seed 0), 5 labels; ``from_config``: e.g. the attention
    implementation (transformers' default unless given)."""
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_config(
        random_init_config(preset, vocab_size=30522, num_labels=5), **from_config)


def _seconds_per_step(model, precision: str, steps: int, seq_len: int, **train) -> float:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 20000, (16, seq_len), generator=g)
    y = torch.randint(0, 5, (16,), generator=g)

    def batch_loss(idx: np.ndarray) -> torch.Tensor:
        return model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=y).loss

    cfg = TrainConfig(epochs=1.0, batch_size=16, precision=precision, device="cpu", **train)
    t0 = time.perf_counter()
    stats = train_loop(model, n_items=16 * steps, batch_loss=batch_loss, cfg=cfg, seed=0, lr=1e-5, epochs=1.0,
                       progress=False)
    assert stats["precision"] == precision and stats["steps"] == steps
    return (time.perf_counter() - t0) / steps


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", choices=[m for m in model_presets() if m != "tfidf"],
                    default=["minilm-l6", "medium", "base"])
    ap.add_argument("--steps", type=int, default=4, help="optimizer steps per timing")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "train_precision.json")
    args = ap.parse_args(argv)
    feats = cpu_features()
    if not feats["bf16"]:
        print("note: this CPU has no AVX512-BF16 / AMX-BF16: bf16 autocast is emulated here "
              "(train.precision=auto resolves to fp32)", file=sys.stderr)
    rows = []
    for name in args.models:
        preset = load_model_preset(name)
        model = _model(preset)
        _seconds_per_step(model, "fp32", 1, args.seq_len)  # warm-up: allocator, oneDNN kernels
        _seconds_per_step(model, "bf16", 1, args.seq_len)
        times: dict[str, list[float]] = {"fp32": [], "bf16": []}
        for _ in range(args.rounds):
            for precision in ("fp32", "bf16"):
                times[precision].append(_seconds_per_step(model, precision, args.steps, args.seq_len))
        fp32, bf16 = statistics.median(times["fp32"]), statistics.median(times["bf16"])
        row = {"model": name, "shape": (preset.layers, preset.hidden, preset.heads), "fp32_s_per_step": round(fp32, 3),
               "bf16_s_per_step": round(bf16, 3), "fp32_over_bf16": round(fp32 / bf16, 2),
               "rounds": {k: [round(v, 3) for v in vs] for k, vs in times.items()}}
        rows.append(row)
        print(f"{name:10s} fp32 {fp32:6.2f} s/step   bf16 {bf16:6.2f} s/step   fp32/bf16 {fp32 / bf16:4.2f}x",
              flush=True)
    record = {"benchmark": "train_precision", "batch_size": 16, "seq_len": args.seq_len, "steps": args.steps,
              "rounds_per_precision": args.rounds, "threads": torch.get_num_threads(),
              "auto_resolves_to": default_train_precision("cpu"), "environment": environment(), "rows": rows}
    return _write(args.out, record)


def _interleaved(model, precision: str, seq_len: int, steps: int, rounds: int, arms: dict[str, dict]) -> dict:
    """Seconds per step of each arm (``arms``: name -> ``TrainConfig`` settings), one warm-up step
    each (allocator, oneDNN kernels), then ``rounds`` rounds alternating the arms' order so
    machine drift hits them alike."""
    names = list(arms)
    for name in names:
        _seconds_per_step(model, precision, 1, seq_len, **arms[name])
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            times[name].append(_seconds_per_step(model, precision, steps, seq_len, **arms[name]))
    return times


def _ratio_row(name: str, preset, seq_len: int, times: dict, slow: str, fast: str, **extra) -> dict:
    """The row of one shape: each arm's median, the ratio slow / fast, the rounds; said on stdout."""
    a, b = statistics.median(times[slow]), statistics.median(times[fast])
    print(f"{name:10s} seq {seq_len:4d}  {slow} {a * 1e3:7.1f} ms/step   {fast} {b * 1e3:7.1f} ms/step"
          f"   {slow}/{fast} {a / b:4.2f}x", flush=True)
    return {"model": name, **extra, "shape": (preset.layers, preset.hidden, preset.heads), "seq_len": seq_len,
            f"{slow}_s_per_step": round(a, 4), f"{fast}_s_per_step": round(b, 4),
            f"{slow}_over_{fast}": round(a / b, 2),
            "rounds": {k: [round(v, 4) for v in vs] for k, vs in times.items()}}


def _step_args(doc: str, argv: list[str] | None, *, models: list[str], seq_lens: list[int], steps: int,
               out: str, arch: bool = False) -> argparse.Namespace:
    """The step benchmarks' command line: --models, (--arch,) --seq-lens, --steps, --rounds, --out."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--models", nargs="+", choices=[m for m in model_presets() if m != "tfidf"], default=models)
    if arch:
        ap.add_argument("--arch", default=None, help="a transformers model_type for every preset (default: its own)")
    ap.add_argument("--seq-lens", nargs="+", type=int, default=seq_lens)
    ap.add_argument("--steps", type=int, default=steps, help="optimizer steps per timing")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=HERE / "results" / out)
    return ap.parse_args(argv)


def _step_record(benchmark: str, args: argparse.Namespace, precision: str, started: float, rows: list) -> dict:
    """A step benchmark's record: its settings, this machine, the rows."""
    return {"benchmark": benchmark, "batch_size": 16, "steps": args.steps, "rounds": args.rounds,
            "precision": precision, "threads": torch.get_num_threads(),
            "wall_s": round(time.perf_counter() - started, 1), "environment": environment(), "rows": rows}


def _write(out: Path, record: dict) -> int:
    """The benchmark's record as JSON at ``out`` (its folder made), said on stdout."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
