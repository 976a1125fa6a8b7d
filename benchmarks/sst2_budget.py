"""SST-2: how far the default training policy is from the best budget found by hand, and
whether a validation split carved from GLUE's phrase-level train file predicts dev (issue 14).

    python benchmarks/sst2_budget.py --list                     # the jobs
    python benchmarks/sst2_budget.py --jobs all --parallel 10 --out DIR   # on a GPU box
    python benchmarks/sst2_budget.py --jobs default --out DIR   # one job (80+ min on 2 CPU cores)

Every job fine-tunes pretrained MiniLM-L6 (the offline preset) as a 2-class classifier with
``paretobert.train.train_loop`` (the pipeline's loop, AdamW, warm-up + linear decay, batch 16
(``--batch-size``), 128 tokens) and scores dev (872 whole sentences) at every evaluation, beside the validation
split that early stopping reads, so the two curves can be compared:

- ``before``: the fixed budget before the policy (2 epochs, lr 5e-5 for body and head, no
  validation; dev scored every 1,000 steps for the curve only).
- ``default``: training policy 2's default (10% of train, at most 2,000 texts, held out by
  ``split_indices`` as ``stages.carve_validation`` does; 3-epoch budget; evaluation every
  1,000 steps; patience 2 evaluations; body 1e-4, head 20x; the best weights restored): dev of
  the restored model.
- ``default-5e-05``: the same at body lr 5e-5 (head 20x). Policy 3's default is this lr with
  patience an epoch of evaluations (4): ``grid-5e-05-h20``'s weights at its best validation
  evaluation (``dev_at_val_best``) when that run's curve never waits 4 evaluations.
- ``sentences``: as default, but validation drawn from whole texts only (texts no other train
  text contains), their sub-phrases left in train.
- ``sentences-clean``: as ``sentences`` with 1,000 validation texts and every train text
  contained in one of them dropped from train (no sub-phrase of a validation text is learnt).
- ``policy-sS``: policy 3's default (body 5e-5, head 20x, patience an epoch of evaluations, the
  best weights restored) with seed S (validation split, head init, batch order): the run-to-run
  spread of the default.
- ``meanpool-sS``: the same with the classifier reading the mean of the last layer's token
  vectors under the attention mask instead of the pooler's [CLS] (all-MiniLM-L6-v2 was trained
  as a sentence encoder through mean pooling; its pooler was not trained).
- ``pooler-sS``: the same with the pooler re-initialised and learnt at the head's lr.
- ``ema-sS``: policy 3's default with ``train.ema`` (``--ema``, 0.999): an exponential moving
  average of the weights is what validation scores and what is kept; every evaluation also
  scores the raw weights on validation and dev (``raw_*`` in the curve), so the average and the
  weights it averages are compared on one training run, sentence by sentence. ``--extra-ema``
  decays are averaged beside it on the same run (updated after each optimizer step, scored on
  validation and dev with the raw weights: ``raw_ema_SPEC_*`` in the curve).
- ``avg-sS``: policy 3's default, unchanged (the raw weights are what validation ranks and what
  is kept), with the ``--extra-ema`` averages of its weights scored on validation and dev at
  every evaluation (``ema_SPEC_*`` in the curve): longer horizons than ``train.ema``'s capped
  decay can reach. A SPEC is ``DECAY`` (``train.ema``'s capped average), ``DECAYb`` (bias-corrected,
  uncapped: ``0.9998b`` averages about the last 5,000 steps), ``1b`` (the uniform average, SWA's),
  and any of them ``@START``: averaging begins after that fraction of the budget's steps
  (``1b@0.67``: the uniform average of the last third).
- ``llrd-sS``: policy 3's default with ``train.layer_decay`` (``--layer-decay``, 0.8): the top
  layer and the pooler at the body's lr, each layer below at 0.8 x the one above, the
  embeddings at 0.8^6 = 0.26 x (layer-wise lr decay, ELECTRA's fine-tuning recipe).
- ``rdrop-sS``: policy 3's default with R-Drop (Liang et al., 2021): each batch goes through the
  model twice in one forward (the texts stacked twice, so dropout draws other masks for the two
  copies), and the loss is the two copies' mean cross-entropy plus ``--rdrop`` (1.0) times
  the symmetric KL divergence between their predicted distributions: about twice a step's
  compute. ``--extra-ema`` averages are kept and scored on its run as on ``avg-sS``'s. With
  ``--extra-ema 0.9998b`` that average is what policy 7 (the pipeline's default since
  2026-12-07 for budgets over 5,000 steps) validates and ships; the ``policy-sS`` jobs stay
  policy 3's (no R-Drop, the raw weights).
- ``grid-LR-hHEAD``: the hand search: body lr x head scale, the whole 3-epoch budget (no
  early stopping; the last weights are what it ships), dev at every evaluation; the best dev point over the grid is an oracle (it
  peeks at dev): the ceiling the default is compared against.

Accuracy only (build work: runs anywhere, CUDA when present); each job writes
``OUT/JOB.json`` after every evaluation (an interrupted job keeps its curve so far), and
``--summary`` tabulates a finished ``OUT``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

GRID = [(2e-5, 20.0), (5e-5, 20.0), (1e-4, 20.0), (2e-4, 20.0), (5e-5, 1.0), (1e-4, 1.0)]
JOBS = (["before", "default", "default-5e-05", "sentences", "sentences-clean"]
        + [f"grid-{lr:g}-h{h:g}" for lr, h in GRID])
SEEDED = ("policy", "meanpool", "pooler", "ema", "llrd", "avg", "rdrop")  # + "-s<seed>": any seed


def seeded(job: str) -> tuple[str, int] | None:
    """(kind, seed) of a ``KIND-sSEED`` job of :data:`SEEDED`, else None."""
    kind, _, seed = job.rpartition("-s")
    return (kind, int(seed)) if kind in SEEDED and seed.isdigit() else None


def known(job: str) -> bool:
    return job in JOBS or seeded(job) is not None


def average_spec(spec: str) -> tuple[float, str, float]:
    """(decay, correction, start as a fraction of the budget) of an ``--extra-ema`` SPEC:
    ``DECAY[b][@START]`` (``b``: bias-corrected and uncapped, else train.ema's cap)."""
    from paretobert.train import WeightAverage

    body, _, start = spec.partition("@")
    correction = "bias" if body.endswith("b") else "cap"
    try:
        decay, frac = float(body.rstrip("b")), float(start or 0.0)
        WeightAverage.check(decay, correction)  # the decays the average itself takes
        if not 0.0 <= frac < 1.0:
            raise ValueError(f"start {frac} outside [0, 1)")
    except ValueError as e:
        raise ValueError(f"--extra-ema {spec!r}: want DECAY[b][@START], DECAY in (0, 1) (1 with b), "
                         f"START in [0, 1) ({e})") from None
    return decay, correction, frac


def extra_ema_specs(value: str) -> list[str]:
    """``--extra-ema``'s comma-separated SPECs, each checked by :func:`average_spec` (a bad one
    is argparse's one-line usage error, with what a SPEC wants)."""
    specs = [x for x in value.split(",") if x]
    for spec in specs:
        try:
            average_spec(spec)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return specs


def pooler_at_head_lr(training, model) -> None:
    """Move the pooler's parameters into the head's AdamW groups (``training.param_groups`` is
    wrapped for this process: the pipeline's loop builds its optimizer through it)."""
    pooler = {id(p) for p in model.base_model.pooler.parameters()}
    plain = training.param_groups

    def groups(m, *, lr, weight_decay, head_lr_scale=1.0):
        out = []
        for g in plain(m, lr=lr, weight_decay=weight_decay, head_lr_scale=head_lr_scale):
            moved = [p for p in g["params"] if id(p) in pooler]
            rest = [p for p in g["params"] if id(p) not in pooler]
            if rest:
                out.append({**g, "params": rest})
            if moved:
                out.append({**g, "params": moved, "lr": lr * head_lr_scale})
        return out

    training.param_groups = groups


def mean_pooled(model):
    """Make a ``*ForSequenceClassification`` BERT classify the masked mean of its last layer's
    token vectors (dropout, then its own classifier) instead of the pooler's [CLS] vector."""
    import torch
    from transformers.modeling_outputs import SequenceClassifierOutput

    body = getattr(model, model.base_model_prefix)

    def forward(input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **_):
        h = body(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        logits = model.classifier(model.dropout((h * m).sum(1) / m.sum(1).clamp(min=1)))
        loss = None if labels is None else torch.nn.functional.cross_entropy(logits.float(), labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)

    model.forward = forward
    return model


def contained_phrases(texts: list[str]) -> tuple[list[bool], list[set[int]]]:
    """(is contained, contains): for each text whether another text of the list is a longer
    word sequence holding it, and which texts each one holds (indices; whitespace-normalised,
    lower-cased, word-boundary matches)."""
    norm = [" ".join(t.lower().split()) for t in texts]
    where: dict[str, list[int]] = {}
    for i, t in enumerate(norm):
        where.setdefault(t, []).append(i)
    contained = [False] * len(texts)
    holds: list[set[int]] = [set() for _ in texts]
    for i, t in enumerate(norm):
        words = t.split()
        n = len(words)
        for a in range(n):
            for b in range(a + 1, n + 1):
                if b - a == n:
                    continue
                for j in where.get(" ".join(words[a:b]), ()):
                    contained[j] = True
                    holds[i].add(j)
    return contained, holds


def carve(kind: str, texts: list[str], labels: list[int], *, n_val: int, seed: int):
    """(train indices, validation indices, dropped count) for the validation kinds."""
    from paretobert.data.split import split_indices

    if kind == "phrases":  # the pipeline's carve_validation
        size = (n_val - 0.5) / len(texts)
        keep, held = split_indices(texts, labels, test_size=size, seed=seed)
        return keep, held, 0
    contained, holds = contained_phrases(texts)
    cand = [i for i, c in enumerate(contained) if not c]
    n_val = min(n_val, len(cand) // 4)  # a smoke run's subsample has few whole texts
    size = (n_val - 0.5) / len(cand)
    _, held_c = split_indices([texts[i] for i in cand], [labels[i] for i in cand], test_size=size, seed=seed)
    held = sorted(cand[i] for i in held_c)
    drop = set(held)
    if kind == "sentences-clean":
        for i in held:
            drop |= holds[i]
    keep = [i for i in range(len(texts)) if i not in drop]
    return keep, held, len(drop) - len(held)


def run_job(job: str, args) -> dict:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from paretobert import train as training
    from paretobert.config import DatasetConfig, TrainConfig, load_model_preset
    from paretobert.data import load_split
    from paretobert.encoding import encode_batch, encode_ids
    from paretobert.export import input_names
    from paretobert.models.zoo import model_dir, new_head_expected, resolve_source

    torch.set_num_threads(args.threads)
    cache_dir = Path(args.cache_dir).expanduser()
    split = load_split(DatasetConfig(name="sst2", path=args.data, max_train=args.max_train), cache_dir=cache_dir,
                       allow_network=False)
    if args.model_dir:
        d = Path(args.model_dir)
    else:
        src = resolve_source(load_model_preset("minilm-l6"), weights="pretrained", cache_dir=cache_dir,
                             allow_network=False)
        d = model_dir(src, cache_dir=cache_dir)
    kind_s, seed = seeded(job) or (job, 0)
    torch.manual_seed(seed)  # the new head's init
    tok = AutoTokenizer.from_pretrained(d)
    with new_head_expected():  # the classifier is new: transformers' warning says what is expected
        model = AutoModelForSequenceClassification.from_pretrained(d, num_labels=len(split.label_names)).float()
    texts, labels = list(split.train_texts), list(split.train_labels)
    n_val = min(math.ceil(0.1 * len(texts)), 2000)
    patience = 2
    if kind_s in SEEDED:
        lr, head, validate, kind = 5e-5, 20.0, True, "phrases"
        patience = max(2, math.ceil(math.ceil((len(texts) - n_val) / args.batch_size) / args.every))  # an epoch of evaluations
        if kind_s == "meanpool":
            mean_pooled(model)
        elif kind_s == "pooler":
            model.base_model.pooler.dense.reset_parameters()
            model.base_model.pooler.dense.bias.data.zero_()
            pooler_at_head_lr(training, model)
    elif job == "before":
        lr, head, validate, kind = 5e-5, 1.0, False, "phrases"
    elif job.startswith("grid-"):
        lr_s, h_s = job[len("grid-"):].rsplit("-h", 1)
        lr, head, validate, kind = float(lr_s), float(h_s), False, "phrases"
    elif job.startswith("default-"):
        lr, head, validate, kind = float(job[len("default-"):]), 20.0, True, "phrases"
    else:
        lr, head, validate = 1e-4, 20.0, True
        kind = {"default": "phrases", "sentences": "sentences", "sentences-clean": "sentences-clean"}[job]
        if kind == "sentences-clean":
            n_val = 1000
    keep, held, dropped = carve(kind, texts, labels, n_val=n_val, seed=seed)
    if job == "before":
        keep, held = list(range(len(texts))), held  # trained on everything; validation scored, not used
    epochs = 2.0 if job == "before" else args.epochs
    # restore=best: what its recorded jobs ran with (the best evaluation's weights restored)
    cfg = TrainConfig(batch_size=args.batch_size, lr=lr, epochs=epochs, head_lr_scale=head, max_length=128, restore="best",
                      ema=args.ema if kind_s == "ema" else None,
                      layer_decay=args.layer_decay if kind_s == "llrd" else None)
    names = input_names(tok)
    enc_train = [encode_ids(tok, texts[i], max_length=128) for i in keep]
    y_train = [labels[i] for i in keep]
    enc_val = [encode_ids(tok, texts[i], max_length=128) for i in held]
    y_val = [labels[i] for i in held]
    enc_dev = [encode_ids(tok, t, max_length=128) for t in split.test_texts]
    device = training.torch_device(cfg.device)
    averaged = kind_s in ("ema", "avg", "rdrop")  # the jobs that keep the --extra-ema averages
    record = {"job": job, "seed": seed, "batch_size": cfg.batch_size, "ema": cfg.ema,
              **({"rdrop": args.rdrop} if kind_s == "rdrop" else {}),
              **({"extra_ema": list(args.extra_ema)} if averaged else {}), "layer_decay": cfg.layer_decay, "patience": patience if validate else None, "lr": lr, "head_lr_scale": head,
              "epochs": epochs, "validation": kind, "early_stopping": validate, "n_train": len(keep), "n_validation": len(held), "dropped": dropped,
              "n_dev": len(enc_dev), "device": str(device), "curve": []}
    out = Path(args.out) / f"{job}.json"

    total = training.n_steps(len(keep), cfg.batch_size, epochs)
    extras = {}
    if averaged:
        for spec in args.extra_ema:
            decay, correction, frac = average_spec(spec)
            extras[spec] = training.WeightAverage(model, decay, correction=correction, start=round(frac * total))
    folded = {"steps": 0, "calls": 0}  # optimizer steps seen by batch_loss / folded into the extras

    def fold(steps: int) -> None:
        """Fold the weights of the optimizer steps done since the last fold into the extra averages."""
        if folded["steps"] < steps:
            for e in extras.values():
                e.update()
            folded["steps"] = steps

    def batch_loss(idx: np.ndarray) -> torch.Tensor:
        fold(folded["calls"])  # the step before this batch is done: its weights are the model's
        folded["calls"] += 1
        enc = encode_batch([enc_train[i] for i in idx], pad_id=tok.pad_token_id, names=names)
        enc = {k: torch.from_numpy(v).to(device) for k, v in enc.items()}
        y = torch.tensor([y_train[i] for i in idx], device=device)
        if kind_s == "rdrop":
            return training.rdrop_loss(model, enc, y, alpha=args.rdrop)
        return model(**enc, labels=y).loss

    def dev_score() -> float:
        return training._score(model, enc_dev, split.test_labels, pad_id=tok.pad_token_id, names=names,
                               device=device, batch_size=64)[0]

    def scores() -> tuple[float, float, float, float]:
        val_acc, val_loss, _, _ = training._score(model, enc_val, y_val, pad_id=tok.pad_token_id, names=names,
                                                  device=device, batch_size=64)
        dev_acc, dev_loss, _, _ = training._score(model, enc_dev, split.test_labels, pad_id=tok.pad_token_id,
                                                  names=names, device=device, batch_size=64)
        return val_acc, val_loss, dev_acc, dev_loss

    evals = {"n": 0}

    def evaluate() -> dict[str, float]:
        evals["n"] += 1
        extra = {}
        # under train.ema train_loop scores the raw weights first, then its average: the extras once
        if extras and (cfg.ema is None or evals["n"] % 2 == 1):
            fold(folded["calls"])
            for d, e in extras.items():
                with e.swapped_in():
                    v, _, a, _ = scores()
                extra.update({f"ema_{d}_val_accuracy": v, f"ema_{d}_dev_accuracy": a})
        val_acc, val_loss, dev_acc, dev_loss = scores()
        if args.fp32_dev:  # the same weights' dev outside train_loop's autocast (the final score's precision)
            with torch.autocast(device.type, enabled=False):
                extra["dev_accuracy_fp32"] = dev_score()
        record["curve"].append({"val_accuracy": val_acc, "dev_accuracy": dev_acc, "dev_loss": dev_loss,
                                "t": round(time.perf_counter() - t0, 1)})
        out.write_text(json.dumps(record, indent=1))
        return {"val_accuracy": val_acc, "val_loss": val_loss, "dev_accuracy": dev_acc, **extra}

    t0 = time.perf_counter()
    stats = training.train_loop(model, n_items=len(keep), batch_loss=batch_loss, cfg=cfg, seed=seed, lr=lr,
                                epochs=epochs, head_lr_scale=head, device=device, evaluate=evaluate,
                                every=args.every, patience=patience if validate else 10**6, progress=args.progress)
    model.to(device)
    acc = dev_score()
    if args.fp32_dev:  # the kept weights' dev under the curve's autocast too
        with training._autocast(device, training.train_precision(cfg)):
            record["dev_at_val_best_autocast"] = dev_score()
    # early stopping's jobs ship the restored best; the fixed budgets ship the last weights
    final = acc if validate else stats["curve"][-1]["dev_accuracy"]
    record.update({k: v for k, v in stats.items() if k != "curve"}, curve=stats["curve"], dev_accuracy=final,
                  dev_at_val_best=acc, dev_correct=round(final * len(enc_dev)), wall_s=round(time.perf_counter() - t0, 1))
    out.write_text(json.dumps(record, indent=1))
    return record


def summary(out: Path) -> str:
    """A finished ``OUT`` as a markdown table, one row per job: dev of the weights the benchmark
    kept (``restore=best``) and of the last evaluation's weights (what ``train.restore=significant``
    keeps unless an earlier evaluation beat the last on validation by the sign test: the
    validation gap is given in texts), then the EMA jobs' curves."""
    from paretobert.stats import wilson_interval

    rows = ["| job | validation (n, dropped) | body lr / head (batch) | epochs run (best) | stopped | val acc (best) | "
            "dev acc [95% CI] | last evaluation: dev (val texts below the best) | best dev on the curve (epoch) | warning |",
            "|" + "---|" * 10]
    done = sorted(f.stem for f in out.glob("*.json"))
    records = {job: json.loads((out / f"{job}.json").read_text()) for job in done}
    for job in [j for j in JOBS if j in done] + [j for j in done if j not in JOBS]:
        r = records[job]
        curve = r.get("curve", [])
        if "dev_accuracy" not in r:
            rows.append(f"| {job} | interrupted after {len(curve)} evaluations |" + " |" * 8)
            continue
        lo, hi = wilson_interval(r["dev_correct"], r["n_dev"])
        top = max(curve, key=lambda p: p["dev_accuracy"]) if curve else {}
        last = ""
        if curve:
            below = round((max(p["val_accuracy"] for p in curve) - curve[-1]["val_accuracy"]) * r["n_validation"])
            last = f"{curve[-1]['dev_accuracy']:.4f} ({below})"
        rows.append(
            f"| {job} | {r['validation']} ({r['n_validation']}, {r['dropped']}) | {r['lr']:g} / {r['head_lr_scale']:g}x ({r.get('batch_size', 16)}) | "
            f"{r['epochs']:g} ({r.get('best_epoch', '-')}) | {r['stopped']} | {r.get('val_accuracy') or 0:.4f} | "
            f"{r['dev_accuracy']:.4f} [{lo:.3f}, {hi:.3f}] | {last} | {top.get('dev_accuracy', 0):.4f} ({top.get('epoch', '-')}) | "
            f"{r.get('warning') or ''} |")
    for job in done:  # the averaged weights against the raw ones they average, point by point
        r = records[job]
        pts = [p for p in r.get("curve", []) if "raw_dev_accuracy" in p]
        if pts:
            rows.append(f"\n{job} (train.ema={r.get('ema')}), dev accuracy per evaluation, average / raw weights: "
                        + ", ".join(f"{p['dev_accuracy']:.4f} / {p['raw_dev_accuracy']:.4f}" for p in pts))
            # scored beside the raw weights, so train_loop prefixed them raw_
            for k in sorted({k for p in pts for k in p if k.startswith("raw_ema_") and k.endswith("_dev_accuracy")}):
                rows.append(f"{job}, {k[8:-len('_dev_accuracy')]}'s average (--extra-ema), dev / validation: "
                            + ", ".join(f"{p[k]:.4f} / {p[k.replace('_dev_', '_val_')]:.4f}" for p in pts if k in p))
        pts = [p for p in r.get("curve", []) if "raw_dev_accuracy" not in p]
        for k in sorted({k for p in pts for k in p if k.startswith("ema_") and k.endswith("_dev_accuracy")}):
            rows.append(f"\n{job}, {k[4:-len('_dev_accuracy')]}'s average (--extra-ema), dev / validation per "
                        "evaluation (raw weights' dev): " + ", ".join(
                            f"{p[k]:.4f} / {p[k.replace('_dev_', '_val_')]:.4f} ({p['dev_accuracy']:.4f})"
                            for p in pts if k in p))
    return "\n".join(rows)


#: options of the parent only: a job's subprocess gets every other option the parent was given
PARENT_ONLY = {"help", "jobs", "parallel", "list", "summary"}


def child_command(ap: argparse.ArgumentParser, args: argparse.Namespace, job: str) -> list[str]:
    """The command line of one job's subprocess under ``--parallel``: this script with ``--jobs
    JOB`` and every option the parser knows (but :data:`PARENT_ONLY`) at its parsed value, so
    an option added to the parser reaches the jobs without being listed here."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--jobs", job]
    for action in ap._actions:
        if action.dest in PARENT_ONLY or not action.option_strings:
            continue
        value, flag = getattr(args, action.dest), action.option_strings[-1]
        if isinstance(action, argparse._StoreTrueAction):
            cmd += [flag] if value else []
        elif isinstance(value, list):
            cmd += [flag, ",".join(map(str, value))]
        elif value is not None:
            cmd += [flag, str(value)]
    return cmd


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/sst2")
    ap.add_argument("--model-dir", default=None, help="MiniLM-L6's folder (default: the offline preset's)")
    ap.add_argument("--cache-dir", default="~/.cache/paretobert")
    ap.add_argument("--out", default="sst2-budget")
    ap.add_argument("--jobs", default="default", help="comma-separated, or all")
    ap.add_argument("--parallel", type=int, default=1, help="jobs at once (subprocesses), e.g. on a GPU box")
    ap.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 1) // 2))
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--max-train", type=int, default=None, help="a stratified subsample (a smoke run)")
    ap.add_argument("--every", type=int, default=1000, help="optimizer steps between evaluations")
    ap.add_argument("--epochs", type=float, default=3.0,
                    help="the budget of every job but before (2): 3, the default policy's for SST-2")
    ap.add_argument("--batch-size", type=int, default=16,
                    help="texts per optimizer step of every job: 16, the pipeline's default")
    ap.add_argument("--ema", type=float, default=0.999, help="train.ema of the ema-sS jobs")
    ap.add_argument("--layer-decay", type=float, default=0.8, help="train.layer_decay of the llrd-sS jobs")
    ap.add_argument("--rdrop", type=float, default=1.0, help="the KL term's weight of the rdrop-sS jobs")
    ap.add_argument("--extra-ema", type=extra_ema_specs, default=[],
                    help="comma-separated averages DECAY[b][@START] also kept (and scored) on the ema-sS, "
                         "avg-sS and rdrop-sS jobs' runs (see avg-sS)")
    ap.add_argument("--fp32-dev", action="store_true",
                    help="also score dev outside the training precision's autocast at every evaluation "
                         "(dev_accuracy_fp32), and the kept weights under it (dev_at_val_best_autocast)")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--summary", action="store_true")
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    if args.list:
        print("\n".join(JOBS))
        return 0
    out = Path(args.out)
    if args.summary:
        print(summary(out))
        return 0
    jobs = JOBS if args.jobs == "all" else args.jobs.split(",")
    unknown = [j for j in jobs if not known(j)]
    if unknown:
        ap.error(f"unknown job(s) {unknown}; known: {', '.join(JOBS)}, {'|'.join(SEEDED)}-s<seed>")
    out.mkdir(parents=True, exist_ok=True)
    if len(jobs) == 1:
        r = run_job(jobs[0], args)
        print(json.dumps({k: v for k, v in r.items() if k != "curve"}))
        return 0
    pending, running, failed = list(jobs), {}, []
    while pending or running:
        while pending and len(running) < args.parallel:
            j = pending.pop(0)
            running[j] = subprocess.Popen(child_command(ap, args, j), stdout=open(out / f"{j}.log", "w"),
                                          stderr=subprocess.STDOUT)
        time.sleep(5)
        for j, p in list(running.items()):
            if p.poll() is not None:
                del running[j]
                print(f"{j}: exit {p.returncode}", flush=True)
                if p.returncode:
                    failed.append(j)
    print(summary(out))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
