"""A self-contained bundle of one measured variant, and the predictor that runs it.

``paretobert export SWEEP_DIR VARIANT_ID OUT_DIR`` (or ``--pick`` with budget flags) copies
exactly what was measured into ``OUT_DIR``::

    bundle.json      what to run and how: runtime, precision, seq_len, truncation, threads,
                     early-exit threshold, label names, the tokenizer's special ids, the
                     measured figures, and the SHA-256 of every file below
    model/           the model file(s) as timed (ONNX + external data, an OpenVINO IR, or
                     the early-exit segments)
    tokenizer.json   the fine-tune's own tokenizer (the ``tokenizers`` library's format)
    result.json      the variant's full result record (accuracy with interval, latency, machine)
    README.md        how to use it

``paretobert predict OUT_DIR "text" ... | --file texts.txt`` and ``load_bundle(OUT_DIR).predict(texts)``
run it with numpy, the ``tokenizers`` library and the runtime only (no torch, no Hydra, no
transformers, no onnx): sessions are opened by :mod:`paretobert.runtimes` exactly as the sweep
timed them (those modules defer their heavy imports), and the export's own imports happen
inside :func:`export_bundle`. Every file is checked against its digest when a bundle is
loaded: a corrupted or edited bundle is an error, never a wrong answer.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from paretobert.encoding import encode_batch, truncate_ids
from paretobert.runtimes.segmented import exit_entropy
from paretobert.store import (
    add_cache_dir_argument,
    as_if_created,
    file_sha256,
    load_results,
    read_json,
)

__all__ = ["BUNDLE_FILE", "Bundle", "BundleError", "Prediction", "export_bundle", "export_main", "load_bundle", "predict_main"]

BUNDLE_FILE = "bundle.json"
FORMAT = 1
RUNTIMES = ("onnxruntime", "openvino")


class BundleError(ValueError):
    """A bundle that cannot be made or used, with the reason in one line."""


def _companions(path: Path) -> list[Path]:
    """A model file and the files it loads: ONNX external data, an OpenVINO IR's ``.bin``."""
    out = [path, *sorted(path.parent.glob(f"{path.name}.data*"))]
    if path.suffix == ".xml" and path.with_suffix(".bin").exists():
        out.append(path.with_suffix(".bin"))
    return out


# ---------------------------------------------------------------------------- export


def _record(sweep_dir: Path, variant_id: str) -> dict[str, Any]:
    every = load_results(sweep_dir)
    recs = [r for r in every if r.get("variant_id") == variant_id]
    if not recs:
        known = sorted(str(r.get("variant_id")) for r in every)
        hint = f"; known: {', '.join(known[:6])}{' ...' if len(known) > 6 else ''}" if known else "; it has no results"
        raise BundleError(f"no variant {variant_id!r} in {sweep_dir}{hint}")
    rec = recs[0]
    if rec.get("status") != "ok":
        raise BundleError(f"{variant_id} {rec.get('status', 'did not finish')}: {rec.get('error') or 'no result'}; "
                          "nothing measured to export")
    return rec


def _special_ids(tok: Any) -> tuple[list[int], list[int]]:
    """The ids a ``tokenizers.Tokenizer`` puts before and after a single text ([CLS] / [SEP],
    <s> / </s>): the text's ids with and without special tokens, compared."""
    probe = "paretobert probe 123"
    body = tok.encode(probe, add_special_tokens=False).ids
    full = tok.encode(probe).ids
    for i in range(len(full) - len(body) + 1):
        if full[i:i + len(body)] == body:
            return full[:i], full[i + len(body):]
    raise BundleError("the tokenizer's special tokens wrap a text in a way a bundle cannot reproduce")


def _tokenizer(ckpt: Path) -> Any:
    """The fine-tune's tokenizer as a ``tokenizers.Tokenizer`` (its ``tokenizer.json``, or the
    fast conversion of a slow one), with truncation and padding off (the bundle truncates)."""
    from tokenizers import Tokenizer

    if (ckpt / "tokenizer.json").exists():
        tok = Tokenizer.from_file(str(ckpt / "tokenizer.json"))
    else:
        from transformers import AutoTokenizer

        fast = AutoTokenizer.from_pretrained(ckpt, use_fast=True)
        if not getattr(fast, "is_fast", False):
            raise BundleError(f"{ckpt}: the tokenizer has no fast (tokenizers) form to bundle")
        tok = fast.backend_tokenizer
    tok.no_truncation()
    tok.no_padding()
    return tok


def export_bundle(sweep_dir: Path, variant_id: str, out_dir: Path, *, cache_dir: Path,
                  force: bool = False) -> Path:
    """Write the bundle of ``variant_id`` (an ok variant of ``sweep_dir``) to ``out_dir``
    (refused when it exists and is not empty, unless ``force``); returns ``out_dir``. The
    bundle appears whole or not at all (written beside it, then renamed)."""
    from paretobert.measure import cached_artifacts
    from paretobert.retime import variant_from_dict

    rec = _record(Path(sweep_dir), variant_id)
    variant = variant_from_dict(rec["variant"])
    if variant.model.arch == "tfidf":
        raise BundleError(f"{variant_id}: model=tfidf is a scikit-learn pipeline; bundles hold transformer "
                          "models only")
    if rec.get("runtime") not in RUNTIMES:
        raise BundleError(f"{variant_id}: runtime {rec.get('runtime')!r} cannot be bundled ({' | '.join(RUNTIMES)})")
    try:
        paths, ckpt = cached_artifacts(rec, cache_dir)
    except FileNotFoundError as e:
        raise BundleError(str(e)) from None
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise BundleError(f"{out_dir} exists and is not empty: choose another directory or pass --force")

    tok = _tokenizer(ckpt)
    prefix, suffix = _special_ids(tok)
    meta = read_json(ckpt / "meta.json") or {}
    qa = variant.task == "qa"
    labels = [] if qa else meta.get("label_names")
    if not labels and not qa:
        from transformers import AutoConfig

        cfg = AutoConfig.from_pretrained(ckpt)
        labels = [cfg.id2label[i] for i in range(cfg.num_labels)]

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        (tmp / "model").mkdir()
        model_files = []
        for p in paths:
            for f in _companions(p):
                shutil.copy2(f, tmp / "model" / f.name)
            model_files.append(f"model/{p.name}")
        tok.save(str(tmp / "tokenizer.json"))
        shutil.copy2(Path(rec["job_dir"]) / "result.json", tmp / "result.json")
        info = {
            "format": FORMAT, "variant_id": variant_id, "label": variant.label(rec.get("weights_source")),
            "runtime": rec["runtime"], "runtime_version": rec.get("runtime_version"),
            "precision": variant.resolved_precision, "seq_len": variant.seq_len, "truncation": variant.truncation,
            "threads": variant.runtime.threads, "exit_threshold": variant.exit.threshold,
            "model_files": model_files, "tokenizer": "tokenizer.json",
            "special_ids": {"prefix": prefix, "suffix": suffix}, "pad_id": 0, "labels": list(labels),
            "task": variant.task,
            **({"max_answer_length": variant.dataset.max_answer_length} if qa else {}),
            "measured": {k: rec.get(k) for k in (
                "accuracy", "accuracy_ci_lo", "accuracy_ci_hi", "n_test", "macro_f1", "latency_p50_ms",
                "latency_p50_ms_ci_lo", "latency_p50_ms_ci_hi", "latency_p99_ms", "tokenize_p50_ms", "model_mb",
                "dataset", "finished_at",
                *(("exact_match", "exact_match_ci_lo", "exact_match_ci_hi", "f1", "f1_ci_lo", "f1_ci_hi",
                   "answer_in_window") if qa else ()))},
            "machine": {k: (rec.get("environment") or {}).get(k) for k in (
                "cpu_model", "cpu_count", "isa_flags", "vnni", "bf16", "machine_id")},
        }
        (tmp / "README.md").write_text(_readme(info))
        info["files"] = {str(f.relative_to(tmp)): file_sha256(f) for f in sorted(tmp.rglob("*")) if f.is_file()}
        (tmp / BUNDLE_FILE).write_text(json.dumps(info, indent=2, default=str) + "\n")
        as_if_created(tmp)  # mkdtemp's 0700 would keep the bundle from other users
        as_if_created(tmp / "result.json")  # copy2 kept its source's mode
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _f(x: Any, spec: str) -> str:
    return format(x, spec) if isinstance(x, int | float) else "n/a"


def _readme(info: dict[str, Any]) -> str:
    if info.get("task") == "qa":
        return _readme_qa(info)
    m, f = info["measured"], _f

    return f"""# {info['variant_id']}

{info['label']}: {info['runtime']} ({info['runtime_version']}), {info['precision']}, seq_len {info['seq_len']}
({info['truncation']} truncation), {info['threads']} intra-op thread(s){
        f", early exit at entropy < {info['exit_threshold']}" if info['exit_threshold'] is not None else ""}.

Measured by paretobert on {info['machine'].get('cpu_model')}: accuracy {f(m['accuracy'], '.4f')}
[{f(m['accuracy_ci_lo'], '.3f')}, {f(m['accuracy_ci_hi'], '.3f')}] (Wilson 95%, {m['n_test']} test texts of {m['dataset']}),
latency p50 {f(m['latency_p50_ms'], '.2f')} ms / p99 {f(m['latency_p99_ms'], '.2f')} ms at batch 1 (model only;
tokenizing adds {f(m['tokenize_p50_ms'], '.2f')} ms), {f(m['model_mb'], '.1f')} MB. `result.json` is the whole record.

Labels: {', '.join(map(str, info['labels']))}.

    paretobert predict . "some text" "another text"
    paretobert predict . --file texts.txt --json

    from paretobert import load_bundle
    pred = load_bundle(".").predict(["some text"])   # pred.labels, pred.probabilities

Needs numpy, tokenizers and {info['runtime']} only (no torch). Every file is checked against
its SHA-256 in `bundle.json` when the bundle is loaded.
"""


def _readme_qa(info: dict[str, Any]) -> str:
    m, f = info["measured"], _f
    return f"""# {info['variant_id']}

{info['label']}: an extractive question-answering reader; {info['runtime']} ({info['runtime_version']}),
{info['precision']}, the question and the first {info['seq_len']} tokens of the context (an answer past them
is not found), answers of at most {info['max_answer_length']} tokens, {info['threads']} intra-op thread(s){
        f", early exit at a mean start/end entropy < {info['exit_threshold']} nats" if info.get('exit_threshold') is not None else ""}.

Measured by paretobert on {info['machine'].get('cpu_model')}: exact match {f(m['exact_match'], '.4f')}
[{f(m['exact_match_ci_lo'], '.3f')}, {f(m['exact_match_ci_hi'], '.3f')}], F1 {f(m['f1'], '.4f')}
[{f(m['f1_ci_lo'], '.3f')}, {f(m['f1_ci_hi'], '.3f')}] (bootstrap 95%, {m['n_test']} test questions of {m['dataset']};
{f(m['answer_in_window'], '.3f')} of their answers lie in the window), latency p50 {f(m['latency_p50_ms'], '.2f')} ms /
p99 {f(m['latency_p99_ms'], '.2f')} ms at batch 1 (model only), {f(m['model_mb'], '.1f')} MB. `result.json` is the whole record.

    paretobert predict . --question "Who wrote it?" --context "It was written by ..."
    paretobert predict . --question "Who wrote it?" --context-file page.txt --json

    from paretobert import load_bundle
    ans = load_bundle(".").answer("Who wrote it?", "It was written by ...")   # text, start, end, score

Needs numpy, tokenizers and {info['runtime']} only (no torch). Every file is checked against
its SHA-256 in `bundle.json` when the bundle is loaded.
"""


# ---------------------------------------------------------------------------- load / predict


@dataclass
class Prediction:
    """``labels[i]`` (a label name) and ``probabilities[i]`` (softmax over ``label_names``) of
    text i; ``exit_layers[i]`` is the 1-based layer an early-exit model stopped at (else None)."""

    labels: list[str]
    probabilities: np.ndarray
    label_names: list[str]
    exit_layers: list[int | None]

    def as_dicts(self) -> list[dict[str, Any]]:
        return [{"label": lab, "probability": float(p.max()),
                 "probabilities": dict(zip(self.label_names, map(float, p), strict=True)),
                 **({"exit_layer": e} if e is not None else {})}
                for lab, p, e in zip(self.labels, self.probabilities, self.exit_layers, strict=True)]


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _session(runtime: str, path: Path, threads: int | None, precision: str, spin: bool) -> tuple[Any, list[str]]:
    """(feed -> named outputs, input names) of one model file, opened exactly as the sweep
    opened it for timing (:mod:`paretobert.runtimes`: these import neither torch nor onnx)."""
    from paretobert.runtimes import get_runtime

    sess, _ = get_runtime(runtime).open(path, threads=threads, spin=spin, precision=precision)
    return sess.outputs, sess.input_names


class Bundle:
    """A loaded bundle: ``predict(texts)``; ``info`` is its ``bundle.json``."""

    def __init__(self, directory: Path, info: dict[str, Any], *, threads: int | None = None) -> None:
        from tokenizers import Tokenizer

        self.dir, self.info = Path(directory), info
        self.label_names = [str(x) for x in info["labels"]]
        self.seq_len, self.truncation = int(info["seq_len"]), str(info["truncation"])
        self.prefix = list(info["special_ids"]["prefix"])
        self.suffix = list(info["special_ids"]["suffix"])
        self.tokenizer = Tokenizer.from_file(str(self.dir / info["tokenizer"]))
        self.tokenizer.no_truncation()  # the bundle truncates (head or head+tail), as the sweep did
        self.tokenizer.no_padding()
        self.threshold = info.get("exit_threshold")
        self.task = info.get("task", "classification")
        threads = threads if threads is not None else info.get("threads")
        paths = [self.dir / p for p in info["model_files"]]
        many = len(paths) > 1  # early-exit segments take turns: no spinning pools (as timed)
        if info["runtime"] not in RUNTIMES:
            raise BundleError(f"{directory}: unknown runtime {info['runtime']!r} ({' | '.join(RUNTIMES)})")
        opened = [_session(info["runtime"], p, threads, info["precision"], spin=not many) for p in paths]
        self.segments = [run for run, _ in opened]
        self.input_names = opened[0][1]

    def encode(self, text: str) -> dict[str, np.ndarray]:
        """The batch-1 feed of ``text``, as the sweep encoded it (truncation and special ids)."""
        body = self.tokenizer.encode(text, add_special_tokens=False).ids
        ids = [*self.prefix, *truncate_ids(body, self.seq_len - len(self.prefix) - len(self.suffix),
                                            self.truncation), *self.suffix]
        return encode_batch([ids], pad_id=0, names=self.input_names)  # one row: nothing is padded

    def logits(self, feed: dict[str, np.ndarray]) -> tuple[np.ndarray, int | None]:
        """(logits, 1-based exit layer or None) of one feed."""
        if len(self.segments) == 1:
            return self.segments[0](feed)["logits"], None
        out = self.segments[0](feed)
        for i in range(1, len(self.segments)):
            if exit_entropy(out["logits"]) < self.threshold:  # as runtimes.segmented decides
                return out["logits"], i
            out = self.segments[i]({"hidden_in": out["hidden"], "attention_mask": feed["attention_mask"]})
        return out["logits"], len(self.segments)

    def answer(self, question: str, context: str) -> dict[str, Any]:
        """A QA bundle's answer to ``question`` in ``context``: ``text`` (the best span of the
        context's first window, as measured; "" when none), its character ``start`` / ``end``
        in ``context`` and ``score`` (start + end logit)."""
        from paretobert.qa_spans import best_span

        if self.task != "qa":
            raise BundleError(f"{self.dir}: a {self.task} bundle: use predict(texts)")
        self.tokenizer.enable_truncation(self.seq_len, strategy="only_second")
        try:
            enc = self.tokenizer.encode(str(question), str(context))
        except Exception as e:  # noqa: BLE001 - the tokenizers library raises its own kinds
            raise BundleError(f"cannot read this question at seq_len={self.seq_len}: {e}") from None
        arrays = {"input_ids": enc.ids, "attention_mask": enc.attention_mask, "token_type_ids": enc.type_ids}
        feed = {n: np.asarray([arrays[n]], dtype=np.int64) for n in self.input_names}
        exit_layer = None
        if len(self.segments) == 1:
            out = self.segments[0](feed)
            start, end = out["start_logits"][0], out["end_logits"][0]
        else:  # early-exit segments: logits are (1, 2, sequence), start and end
            lg, exit_layer = self.logits(feed)
            start, end = lg[0, 0], lg[0, 1]
        offsets = [tuple(o) if sid == 1 else None for o, sid in zip(enc.offsets, enc.sequence_ids, strict=True)]
        span = best_span(start, end, offsets, max_answer_length=int(self.info.get("max_answer_length", 30)))
        got: dict[str, Any] = ({"text": "", "start": None, "end": None, "score": None} if span is None else
                               {"text": str(context)[span[1]:span[2]], "start": span[1], "end": span[2],
                                "score": span[0]})
        if exit_layer is not None:
            got["exit_layer"] = exit_layer
        return got

    def predict(self, texts: Sequence[str] | str) -> Prediction:
        """Labels and class probabilities of ``texts`` (one at a time: batch 1, as measured)."""
        if self.task == "qa":
            raise BundleError(f"{self.dir}: a QA reader: ask it with --question Q --context C (Python: answer(question, context))")
        if isinstance(texts, str):
            texts = [texts]
        rows, exits = [], []
        for text in texts:
            lg, layer = self.logits(self.encode(str(text)))
            rows.append(_softmax(np.asarray(lg, dtype=np.float64))[0])
            exits.append(layer)
        probs = np.stack(rows) if rows else np.zeros((0, len(self.label_names)))
        labels = [self.label_names[int(i)] for i in probs.argmax(axis=1)] if rows else []
        return Prediction(labels, probs, self.label_names, exits)


def load_bundle(directory: str | Path, *, threads: int | None = None, verify: bool = True) -> Bundle:
    """Open a bundle written by ``paretobert export``; ``threads`` overrides the measured
    thread count. Every file is checked against its SHA-256 first (``verify``)."""
    d = Path(directory)
    try:
        info = json.loads((d / BUNDLE_FILE).read_text())
    except FileNotFoundError:
        raise BundleError(f"{d}: not a paretobert bundle (no {BUNDLE_FILE}); make one with paretobert export") from None
    except (OSError, ValueError) as e:
        raise BundleError(f"{d / BUNDLE_FILE}: unreadable ({e}); export the bundle again") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise BundleError(f"{d}: bundle format {info.get('format') if isinstance(info, dict) else None!r}, "
                          f"this paretobert reads format {FORMAT}; export it again")
    need = ("labels", "seq_len", "truncation", "runtime", "precision", "model_files", "tokenizer", "special_ids",
            "files")
    missing = [k for k in need if k not in info]
    if missing:
        raise BundleError(f"{d / BUNDLE_FILE}: missing {', '.join(missing)}; export the bundle again")
    if verify:
        for rel, digest in info["files"].items():
            f = d / rel
            if not f.is_file():
                raise BundleError(f"{d}: {rel} is missing; export the bundle again")
            if file_sha256(f) != digest:
                raise BundleError(f"{d}: {rel} does not match its SHA-256 in {BUNDLE_FILE} (corrupted or edited); "
                                  "export the bundle again")
        listed = {*info["files"], BUNDLE_FILE}
        for rel in [*info["model_files"], info["tokenizer"]]:
            if rel not in listed:
                raise BundleError(f"{d}: {rel} has no digest in {BUNDLE_FILE}; export the bundle again")
    return Bundle(d, info, threads=threads)


# ---------------------------------------------------------------------------- command lines


def export_main(argv: Sequence[str] | None = None) -> int:
    from paretobert import pick

    ap = argparse.ArgumentParser(prog="paretobert export",
                                 description="Write a self-contained bundle of one measured variant.")
    ap.add_argument("sweep", type=Path, help="a finished sweep directory")
    ap.add_argument("target", nargs="+", metavar="VARIANT_ID OUT_DIR",
                    help="the variant id and the bundle directory (with --pick: the bundle directory only)")
    ap.add_argument("--pick", action="store_true", help="export the variant `paretobert pick` chooses under the budget")
    pick.add_budget_args(ap)
    add_cache_dir_argument(ap)
    ap.add_argument("--force", action="store_true", help="replace OUT_DIR when it exists")
    args = ap.parse_args(argv)
    if len(args.target) != (1 if args.pick else 2):
        ap.error("give VARIANT_ID OUT_DIR, or --pick and OUT_DIR")
    try:
        if args.pick:
            vid, out = pick.choose(args.sweep, args).best["variant_id"], Path(args.target[0])
        else:
            vid, out = args.target[0], Path(args.target[1])
        export_bundle(args.sweep, vid, out, cache_dir=Path(args.cache_dir), force=args.force)
    except (BundleError, pick.NothingFits, FileNotFoundError, KeyError, ValueError) as e:
        print(f"error: {str(e).strip(chr(34))}", file=sys.stderr)
        return 2
    info = json.loads((out / BUNDLE_FILE).read_text())
    m = info["measured"]
    print(f"exported {vid} to {out}: {info['runtime']} {info['precision']}, seq_len {info['seq_len']}, "
          f"accuracy {m['accuracy']:.4f}, p50 {m['latency_p50_ms']:.2f} ms")
    print(f"predict: paretobert predict {out} \"some text\"")
    return 0


def predict_main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="paretobert predict", description="Labels of texts with an exported bundle.")
    ap.add_argument("bundle", type=Path, help="a directory written by paretobert export")
    ap.add_argument("texts", nargs="*", help="texts to classify")
    ap.add_argument("--file", type=Path, help="a UTF-8 file with one text per line")
    ap.add_argument("--threads", type=int, help="intra-op threads (default: the measured count)")
    ap.add_argument("--json", action="store_true", help="one JSON object per text")
    ap.add_argument("--question", action="append", default=[], help="a QA reader: the question (repeatable)")
    ap.add_argument("--context", help="a QA reader: the text to find the answer in")
    ap.add_argument("--context-file", type=Path, help="a QA reader: a UTF-8 file holding the context")
    args = ap.parse_args(argv)
    if args.question or args.context is not None or args.context_file is not None:
        return _answer_main(args)
    texts = list(args.texts)
    try:
        if args.file is not None:
            texts += [line for line in args.file.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not texts:
            raise BundleError("no texts: give them as arguments or with --file")
        pred = load_bundle(args.bundle, threads=args.threads).predict(texts)
    except (BundleError, OSError, UnicodeDecodeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        for text, d in zip(texts, pred.as_dicts(), strict=True):
            if args.json:
                print(json.dumps({"text": text, **d}, ensure_ascii=False))
            else:
                print(f"{d['label']}\t{d['probability']:.3f}\t{text[:80]}")
        sys.stdout.flush()
    except BrokenPipeError:  # `paretobert predict ... | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _answer_main(args: argparse.Namespace) -> int:
    """``paretobert predict BUNDLE --question Q --context C``: a QA reader's answers."""
    try:
        if not args.question:
            raise BundleError("a QA reader needs --question")
        if (args.context is None) == (args.context_file is None):
            raise BundleError("give the context with --context TEXT or --context-file FILE (one of them)")
        context = args.context if args.context is not None else args.context_file.read_text(encoding="utf-8")
        bundle = load_bundle(args.bundle, threads=args.threads)
        answers = [bundle.answer(q, context) for q in args.question]
    except (BundleError, OSError, UnicodeDecodeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for q, a in zip(args.question, answers, strict=True):
        if args.json:
            print(json.dumps({"question": q, **a}, ensure_ascii=False))
        else:
            score = "n/a" if a["score"] is None else f"{a['score']:.2f}"
            print(f"{a['text'] or '(no answer in the window)'}\t{score}\t{q[:80]}")
    return 0
