"""A QA reader on SQuAD v1.1 dev split by article, offline: how far a pretrained encoder gets
with only the other articles to train on, and what int8 and a shorter window cost (S1's axes).

    python benchmarks/qa_reader.py --model minilm-l6 --epochs 2           # accuracy (build work)
    python benchmarks/qa_reader.py --model minilm-l6 --epochs 2 --time    # + latency, machine alone

Fine-tunes the preset's pretrained weights as a reader (windows of --train-length tokens,
--doc-stride apart; 3 train articles held out for validation F1 and early stopping; the
checkpoint is kept in --out, reused by the next run), exports it to ONNX (start/end logits), quantizes it (dynamic
int8), and scores the held-out articles per precision x seq_len with one window per question
(what a deployed reader at batch 1 sees: an answer past the window is a miss) and, for
reference, with doc-stride windows over the whole context. With --time, p50 latency of the
batch-1 calls on --n-time test questions, one ORT thread, with the machine lock held
(paretobert.schedule.timing: waits for builds and timings to end). Writes --out/result.json.
This is the evidence for the QA task's defaults; the sweep (dataset=squad, README: extractive QA) does the
same per variant.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from paretobert.config import QuantizeConfig, TrainConfig, load_model_preset
from paretobert.data.squad import load_qa_split
from paretobert.env import environment
from paretobert.export import export_onnx
from paretobert.models.zoo import model_dir, resolve_source
from paretobert.qa import prepare_features, score
from paretobert.qa_model import QA_OUTPUTS, answer, fine_tune_qa, session_logits, torch_logits
from paretobert.quantize import quantize_onnx
from paretobert.runtimes import get_runtime
from paretobert.schedule import building, timing
from paretobert.store import atomic_write_json
from paretobert.train import torch_device

log = logging.getLogger("qa_reader")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/squad/dev-v1.1.json")
    ap.add_argument("--model", default="minilm-l6", help="a pretrained preset (minilm-l6, mpnet-base)")
    ap.add_argument("--cache-dir", default="~/.cache/paretobert")
    ap.add_argument("--out", default=None,
                    help="where the checkpoint and ONNX files go (default: CACHE_DIR/qa-reader/MODEL)")
    ap.add_argument("--json", default=None, help="also write the record here (e.g. results/qa_reader-....json)")
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--train-length", type=int, default=384)
    ap.add_argument("--doc-stride", type=int, default=128)
    ap.add_argument("--max-train-articles", type=int, default=None, help="a learning-curve point")
    ap.add_argument("--seq-lens", default="384,256,128")
    ap.add_argument("--engine", choices=["onnx", "torch"], default="onnx",
                    help="torch: score the fine-tuned torch model itself (fp32, on the training device: "
                         "accuracy only, e.g. on a GPU box), no export or int8")
    ap.add_argument("--time", action="store_true", help="also time batch-1 calls (machine lock held)")
    ap.add_argument("--time-only", action="store_true",
                    help="time again the readers of --out's finished run, keeping its accuracy (e.g. after a "
                         "timing that shared the machine)")
    ap.add_argument("--n-time", type=int, default=200)
    ap.add_argument("--max-test", type=int, default=None, help="score only this many test questions (a smoke run)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    out = _out_dir(args)
    out.mkdir(parents=True, exist_ok=True)
    split = load_qa_split(args.data, test_size=0.25, seed=0, max_train_articles=args.max_train_articles)
    if args.max_test is not None:
        split.test = [split.test[i] for i in np.linspace(0, len(split.test) - 1, args.max_test).astype(int)]
    if args.time_only:
        return _time_again(args, split)
    val_articles = set(split.train_articles[:3])
    train = [i for i in split.train if i.article not in val_articles]
    val = [i for i in split.train if i.article in val_articles]
    log.info("%s: %d train questions (%d articles), %d validation (3 articles), %d test (%d articles)",
             split.source, len(train), len(split.train_articles) - 3, len(val), len(split.test),
             len(split.test_articles))
    with building():  # build work: never beside a paretobert timing on this machine
        cache_dir = Path(args.cache_dir).expanduser()
        src = resolve_source(load_model_preset(args.model), weights="pretrained", cache_dir=cache_dir, allow_network=False)
        ckpt = out / "checkpoint"
        record: dict = {"model": args.model, "weights_source": src.label, "data": split.stats(), "args": vars(args)}
        if (ckpt / "config.json").is_file() and (out / "train.json").is_file():
            log.info("reusing %s", ckpt)
            record["train"] = json.loads((out / "train.json").read_text())
        else:
            d = model_dir(src, cache_dir=cache_dir)
            tok = AutoTokenizer.from_pretrained(d)
            model = AutoModelForQuestionAnswering.from_pretrained(d)
            cfg = TrainConfig(batch_size=args.batch_size, lr=args.lr, epochs=args.epochs)
            stats = fine_tune_qa(model, tok, train, cfg=cfg, seed=args.seed, lr=args.lr, max_length=args.train_length,
                                 doc_stride=args.doc_stride, validation=val, epochs=args.epochs,
                                 every=max(50, -(-len(train) // args.batch_size) // 2))
            model.save_pretrained(ckpt)
            tok.save_pretrained(ckpt)
            atomic_write_json(out / "train.json", stats)
            record["train"] = stats
        tok = AutoTokenizer.from_pretrained(ckpt)
        if args.engine == "torch":
            if args.time:
                ap.error("--time needs --engine onnx (the deployed runtime)")
            device = torch_device("auto")
            model = AutoModelForQuestionAnswering.from_pretrained(ckpt).float().to(device).eval()
            record["accuracy"] = rows = _score_all(torch_logits(model, device), tok, split.test, args, "fp32")
            _write(record, out, args)
            print(json.dumps({"accuracy": rows}, indent=1))
            return 0
        fp32 = out / "reader.onnx"
        if not fp32.is_file():
            model = AutoModelForQuestionAnswering.from_pretrained(ckpt).eval()
            export_onnx(model, tok, fp32, outputs=QA_OUTPUTS)
        int8 = out / "reader.int8.onnx"
        if not int8.is_file():
            quantize_onnx(fp32, int8, cfg=QuantizeConfig())
        runtime = get_runtime("onnxruntime")
        rows = []
        for precision, path in (("fp32", fp32), ("int8", int8)):
            session, _ = runtime.open(path, threads=None)
            rows += _score_all(session_logits(session), tok, split.test, args, precision)
        record["accuracy"] = rows
    if args.time:
        record["timing"] = _time(runtime, {"fp32": fp32, "int8": int8}, tok, split.test,
                                 [int(s) for s in args.seq_lens.split(",")], args.n_time)
    record["environment"] = environment(threads=1)
    _write(record, out, args)
    print(json.dumps({"accuracy": rows, "timing": record.get("timing")}, indent=1))
    return 0


def _out_dir(args) -> Path:
    """Where the checkpoint, the ONNX files and result.json go."""
    return Path(args.out) if args.out else Path(args.cache_dir).expanduser() / "qa-reader" / args.model


def _write(record: dict, out: Path, args) -> None:
    """result.json in the run's directory, and the --json copy."""
    atomic_write_json(out / "result.json", record)
    if args.json:
        atomic_write_json(Path(args.json), record)


def _score_all(run, tok, items, args, precision: str) -> list[dict]:
    """EM / F1 rows of one reader: one window per question at each of --seq-lens, and
    doc-stride windows over the whole context at --train-length."""
    rows = []
    for seq_len in [int(s) for s in args.seq_lens.split(",")]:
        t0 = time.perf_counter()
        preds = answer(run, tok, items, seq_len=seq_len, windows="first", batch_size=32)
        rows.append({"precision": precision, "seq_len": seq_len, "windows": "first", **score(preds, items),
                     "eval_s": round(time.perf_counter() - t0, 1)})
        log.info("%s", rows[-1])
    preds = answer(run, tok, items, seq_len=args.train_length, windows="all", doc_stride=args.doc_stride, batch_size=32)
    rows.append({"precision": precision, "seq_len": args.train_length, "windows": "all", **score(preds, items)})
    log.info("%s", rows[-1])
    return rows


def _time_again(args, split) -> int:
    from transformers import AutoTokenizer

    out = _out_dir(args)
    record = json.loads((out / "result.json").read_text())  # a finished run's record
    tok = AutoTokenizer.from_pretrained(out / "checkpoint")
    record["timing"] = _time(get_runtime("onnxruntime"), {"fp32": out / "reader.onnx", "int8": out / "reader.int8.onnx"},
                             tok, split.test, [int(s) for s in args.seq_lens.split(",")], args.n_time)
    record["environment"] = environment(threads=1)
    _write(record, out, args)
    print(json.dumps({"timing": record["timing"]}, indent=1))
    return 0


def _time(runtime, paths, tok, items, seq_lens, n):
    """p50 / p90 ms of batch-1 calls on ``n`` evenly spaced test questions (one ORT thread,
    inputs padded to seq_len), one pass per cell after 10 warm-up calls, with the machine lock
    held (waits for builds and timings to end)."""
    pick = [items[i] for i in np.linspace(0, len(items) - 1, min(n, len(items))).astype(int)]
    out = []
    with timing():
        for precision, path in paths.items():
            session, _ = runtime.open(path, threads=1)
            run = session_logits(session)
            for seq_len in seq_lens:
                feats = prepare_features(tok, pick, max_length=seq_len, windows="first")
                for r in range(min(10, len(feats))):  # warm-up
                    run(feats.inputs(slice(r, r + 1)))
                ms = []
                for r in range(len(feats)):
                    t0 = time.perf_counter()
                    run(feats.inputs(slice(r, r + 1)))
                    ms.append(1000 * (time.perf_counter() - t0))
                out.append({"precision": precision, "seq_len": seq_len, "n": len(ms),
                            "p50_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90))})
                log.info("%s", out[-1])
    return out


if __name__ == "__main__":
    raise SystemExit(main())
