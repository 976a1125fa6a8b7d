"""Artifact builders: fine-tune (transformer, TF-IDF), export (+ fusion), early-exit segments,
evaluation. Each returns a :class:`~paretobert.store.Built` (key, dir, meta, reused); every
key comes from the :class:`~paretobert.variant.Variant`. Building an artifact that exists is
never repeated (content-addressed cache, see :mod:`paretobert.store`). Precision artifacts
(int8) belong to the runtime that runs them (:mod:`paretobert.runtimes`).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from paretobert import classic, measure, qa_model
from paretobert import export as onnx_export
from paretobert import train as training
from paretobert.config import DistillConfig, DropConfig, TrainConfig, load_model_preset
from paretobert.data import QASplit, Split
from paretobert.data.split import split_indices
from paretobert.encoding import windowed
from paretobert.models import build_model, load_tokenizer, resolve_source
from paretobert.models.drop import drop_layers, encoder_layers, kept_layers, layer_similarity
from paretobert.models.early_exit import (
    export_segments,
    layer_logits,
    train_ramps,
    train_span_ramps,
)
from paretobert.models.select import (
    select_weights,
    student_config,
    uniform_indices,
    uniform_layer_map,
)
from paretobert.models.zoo import AUTO_RECIPE, Source, match_inputs, new_vocab_mlm, transplant_body
from paretobert.quantize import quantize_onnx
from paretobert.runtimes.segmented import EarlyExitRunner
from paretobert.store import Built, ensure_free_space, stage
from paretobert.variant import Variant, content_hash, library_versions

__all__ = ["early_exit", "evaluation", "export", "export_tfidf", "fine_tune", "fine_tune_tfidf", "ladder_teacher",
           "rediagnosed", "teacher_variant", "unfused", "validation_seed"]

log = logging.getLogger(__name__)


def teacher_variant(variant: Variant, name: str | None = None) -> Variant:
    """The distillation teacher: the preset ``name`` (default ``distill.teacher``) fine-tuned
    like the variant, on the train texts as they are (``train.windows`` is the student's: the
    teacher labels the student's windows, and one teacher serves students with and without)."""
    teacher = load_model_preset(name or variant.distill.teacher or "")
    return dataclasses.replace(variant, model=teacher, weights="auto", weights_from=None, drop=DropConfig(),
                               distill=DistillConfig(), quant=False,
                               train=dataclasses.replace(variant.train, windows=1))


# the seed the size ladder's teacher is fine-tuned with, whatever the student's seed
LADDER_SEED = 0


def validation_seed(variant: Variant, source: Source) -> int:
    """The seed the validation split is carved with: the variant's, but the ladder teacher's
    (:data:`LADDER_SEED`) for a student of the size ladder's fine-tuned teacher (selected-kd,
    selected-ft, distilled), whatever its own seed: the teacher trained on every train text
    outside its own validation split, so a student validated on another carve would be scored
    on texts its teacher (its soft labels, or its selected weights) had learnt; its early
    stopping and the weights it keeps would read optimistic figures."""
    return LADDER_SEED if source.needs_finetuned_teacher else variant.seed


def ladder_teacher(variant: Variant, source: Source, split: Split, cache_dir: Path, *, progress: bool,
                   allow_network: bool = True) -> Built:
    """The fine-tuned teacher of a model built from ``source.teacher`` (selected-kd, selected-ft,
    distilled):
    fine-tuned like the variant at seed 0 with the default lr, budget and patience for its own size
    (``train.lr`` / ``train.epochs`` / ``train.patience`` set for the student are the student's), so
    every student, student seed and student budget shares it."""
    assert source.teacher is not None and source.via is not None
    tv = teacher_variant(variant, source.teacher)
    own = dataclasses.replace(tv.train, lr=None, epochs=None, patience=TrainConfig().patience)
    tv = dataclasses.replace(tv, seed=LADDER_SEED, train=own)
    log.info("[%s] teacher %s (%s) ...", variant.variant_id, tv.model.name, source.via.label)
    return fine_tune(tv, split, source.via, cache_dir, progress=progress, allow_network=allow_network)


def _selected_student(variant: Variant, source: Source, label_names: list[str], tok: Any,
                      cache_dir: Path, finetuned: Path | None = None) -> tuple[Any, dict]:
    """The variant's shape in its teacher's family, weights selected from the pretrained
    teacher (:mod:`paretobert.models.select`), a new seeded head (a QA reader's for task=qa);
    with ``finetuned`` (selected-ft: the teacher's fine-tuned checkpoint) body and head are
    selected from that checkpoint instead."""
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoModelForSequenceClassification

    assert source.teacher is not None and source.via is not None
    if finetuned is not None:
        big = AutoModelForSequenceClassification.from_pretrained(finetuned, attn_implementation="eager")
        if config_labels(big.config) != list(label_names):
            raise ValueError(f"the fine-tuned teacher at {finetuned} has labels {config_labels(big.config)}, "
                             f"the data {label_names}")
    else:
        big = build_model(source.via, load_model_preset(source.teacher), num_labels=max(2, len(label_names)),
                          tokenizer=tok, cache_dir=cache_dir, label_names=label_names or None, seed=variant.seed,
                          task=variant.task)
    m = variant.model
    cfg = student_config(big.config, layers=m.layers, hidden=m.hidden, heads=m.heads, intermediate=m.intermediate)
    cfg._attn_implementation = "eager"
    torch.manual_seed(variant.seed)
    auto = AutoModelForQuestionAnswering if variant.task == "qa" else AutoModelForSequenceClassification
    student = auto.from_config(cfg, attn_implementation="eager")
    stats = select_weights(big, student, head=finetuned is not None)
    del big
    return student, {"teacher": source.teacher, "arch": cfg.model_type,
                     "from": "fine-tuned" if finetuned is not None else "pretrained", **stats}


def config_labels(config: Any) -> list[str]:
    """A saved classifier's label names in class order (its config's ``id2label`` by class id,
    whatever order its JSON lists them in: a config written by another tool may put "10"
    before "2")."""
    return [config.id2label[i] for i in sorted(config.id2label, key=int)]


def unfused(variant: Variant) -> Variant:
    """The variant whose export is the plain (unfused) ONNX graph: what OpenVINO converts and
    ONNX Runtime's static quantizer calibrates (neither takes ORT's fused contrib operators)."""
    return dataclasses.replace(variant, export=dataclasses.replace(variant.export, optimize=False))


def carve_validation(variant: Variant, split: Split, *, seed: int | None = None,
                     ) -> tuple[list[str], list[int], training.Validation | None]:
    """(train texts, train labels, validation) under the variant's training policy: with
    ``train.validation_size`` > 0 that fraction of the train split (at most
    ``train.validation_max`` texts), stratified with ``seed`` (default: the
    variant's; :func:`validation_seed`), texts that occur more than once kept in train (never from test)."""
    t = variant.train
    seed = variant.seed if seed is None else seed
    if not t.validation_size:
        return list(split.train_texts), list(split.train_labels), None
    n = len(split.train_texts)
    n_val = min(math.ceil(t.validation_size * n), t.validation_max)
    size = (n_val - 0.5) / n if n else t.validation_size  # split_indices draws ceil(size * n) = n_val
    keep, held = split_indices(split.train_texts, split.train_labels, test_size=size, seed=seed)
    if not held or not keep:
        raise ValueError(f"train.validation_size={t.validation_size} leaves {len(held)} validation and {len(keep)} "
                         f"train texts of {len(split.train_texts)}: raise it, or set train.validation_size=0")
    per_epoch = -(-len(keep) // t.batch_size)
    every = t.eval_every or min(per_epoch, 1000)
    val = training.Validation(texts=[split.train_texts[i] for i in held], labels=[split.train_labels[i] for i in held],
                              every=every, patience=patience(t, per_epoch, every))
    return [split.train_texts[i] for i in keep], [split.train_labels[i] for i in keep], val


def patience(t: Any, per_epoch: int, every: int) -> int:
    """Early stopping's patience in evaluations: ``train.patience``, or an epoch's worth of
    evaluations when an epoch holds more (policy 3: SST-2, evaluated every 1,000 of an epoch's
    3,676 steps, stopped at 1.47 epochs on a validation wobble, 0.8842 on dev, where the whole
    budget's best on validation scored 0.9002)."""
    return max(t.patience, -(-per_epoch // every))


def _pretrained_body(variant: Variant, source: Source) -> bool:
    """Whether the lr and budget are a pretrained body's (:func:`~paretobert.train.default_lr`,
    :func:`~paretobert.train.max_epochs`): its own or a stand-in's weights, or a student cut
    (``distill.layers``) or selected (selected-ft) from its fine-tuned teacher. A selected body is far from converged for its new shape: it
    gets random init's budget and an lr of that kind (BBC, tiny: 0.9604 at 1e-3 for up to 10 epochs, 0.9424 at
    1e-4, 0.57 at 1e-4 for 3; README, the size ladder); its new head still gets
    ``train.head_lr_scale``, but at most 5x the body's lr past SELECTED_DEPTH layers under the
    default lr (:func:`paretobert.train.head_scale`, policy 6)."""
    if source.selects_finetuned:
        return True
    if source.selects:
        return False
    return source.pretrained or variant.distill.layers is not None


def built_as(variant: Variant, source: Source) -> Variant:
    """The variant as ``weights=auto`` builds it: a selected-kd student (a preset of
    :data:`~paretobert.models.zoo.AUTO_KD` from its teacher) gets :data:`~paretobert.models.zoo.AUTO_RECIPE`
    (hidden-state transfer, train-text windows) where the variant leaves those settings at their
    defaults; the checkpoint is then the one ``weights=selected-kd`` with them names (one key)."""
    if variant.weights != "auto" or source.kind != "selected-kd":
        return variant
    d, t = variant.distill, variant.train
    if not d.hidden_mse:
        d = dataclasses.replace(d, hidden_mse=float(AUTO_RECIPE["distill.hidden_mse"]))
    if t.windows == 1:
        t = dataclasses.replace(t, windows=int(AUTO_RECIPE["train.windows"]))
    built = dataclasses.replace(variant, distill=d, train=t)
    if built != variant:  # its fine-tune logs under the built variant's id: say which that is
        log.info("[%s] weights=auto builds it as %s (distill.hidden_mse=%g train.windows=%d)",
                 variant.variant_id, built.variant_id, d.hidden_mse, t.windows)
    return built


def fine_tune(variant: Variant, split: Split, source: Source, cache_dir: Path, *, progress: bool,
              allow_network: bool = True) -> Built:
    """The fine-tuned checkpoint (after layer dropping, distillation from a cached teacher, or a
    new vocabulary's masked-LM warm-up, as the variant says). ``train.lr=auto``: every lr of
    :func:`~paretobert.train.lr_grid` is fine-tuned (each its own cached checkpoint, as if
    asked for by hand) and the best on the validation split is returned, the search in its
    ``meta["train"]["lr_search"]``. ``weights=auto`` builds as :func:`built_as` says."""
    variant = built_as(variant, source)
    if variant.train.lr == "auto":
        grid = training.lr_grid(pretrained=_pretrained_body(variant, source), hidden=variant.model.hidden,
                                selected=source.selects, layers=variant.model.layers)
        tried = []
        for i, lr in enumerate(grid):
            log.info("[%s] train.lr=auto: candidate %d/%d, lr=%g ...", variant.variant_id, i + 1, len(grid), lr)
            one = dataclasses.replace(variant, train=dataclasses.replace(variant.train, lr=lr))
            tried.append(fine_tune(one, split, source, cache_dir, progress=progress, allow_network=allow_network))
        metric = _metric(tried[0])
        best = max(tried, key=lambda b: training.validation_rank(b.meta["train"], metric))
        search = [{k: b.meta["train"].get(k) for k in ("lr", metric, "val_loss", "epochs", "seconds")}
                  for b in tried]
        log.info("[%s] train.lr=auto chose lr=%g (validation %s %.4f)", variant.variant_id,
                 best.meta["train"]["lr"], metric.removeprefix("val_"), best.meta["train"][metric])
        train = {**best.meta["train"], "lr_search": search, "winner_seconds": best.meta["train"]["seconds"],
                 "seconds": sum(s["seconds"] for s in search)}
        return best._replace(meta={**best.meta, "train": train}, reused=all(b.reused for b in tried))
    if source.kind == "stand-in":
        # a stand-in is its teacher's pretrained body and tokenizer trained as the variant says: the
        # fine-tune of the teacher preset itself, so one checkpoint (at the defaults the size ladder's
        # teacher for selected-kd / selected-ft / distilled students of that preset)
        assert source.teacher is not None and source.via is not None
        as_teacher = dataclasses.replace(variant, model=load_model_preset(source.teacher), weights="auto",
                                         weights_from=None)
        return fine_tune(as_teacher, split, source.via, cache_dir, progress=progress, allow_network=allow_network)
    if variant.task == "qa":
        return _fine_tune_qa(variant, split, source, cache_dir, progress=progress, allow_network=allow_network)
    retok = variant.model.retokenize and source.pretrained
    vseed = validation_seed(variant, source)
    train_texts, train_labels, validation = carve_validation(variant, split, seed=vseed)
    texts_only = train_texts  # what a scratch tokenizer, a masked-LM warm-up and layer dropping read
    windows = None
    if variant.train.windows > 1:
        train_texts, train_labels, windows = _windowed(variant, source, retok, train_texts, train_labels, cache_dir)
    teacher = _teacher(variant, source, split, cache_dir, progress=progress, allow_network=allow_network)
    teacher_key, teacher_ckpt = (teacher.key, teacher.dir) if teacher is not None else (None, None)

    def build(tmp: Path) -> dict[str, Any]:
        # retokenize: the tokenizer is trained on the train split as for scratch weights
        tok = load_tokenizer(Source("scratch") if retok else source, variant.model,
                             train_texts=texts_only, cache_dir=cache_dir)
        selected = None
        if source.selects:
            model, selected = _selected_student(variant, source, split.label_names, tok, cache_dir,
                                                finetuned=teacher_ckpt if source.selects_finetuned else None)
        elif variant.distill.layers is not None:
            model = None  # cut from the teacher below
        else:  # its own pretrained body (a stand-in came here as its teacher preset); distilled: random init
            model = build_model(Source("scratch") if source.kind == "distilled" else source, variant.model,
                                num_labels=len(split.label_names), tokenizer=tok, cache_dir=cache_dir,
                                label_names=split.label_names, seed=variant.seed)
        distill, kd_stats = None, None
        if teacher is not None and not source.selects_finetuned:
            model, tok, distill, kd_stats = _distill_setup(variant, train_texts, train_labels, teacher, model, tok,
                                                           cache_dir=cache_dir, progress=progress)
        tok = match_inputs(tok, model)  # the inputs the model takes (no token types for DistilBERT)
        warm = None
        if retok:
            mlm = new_vocab_mlm(source, tok, cache_dir=cache_dir, seed=variant.seed)
            warm = training.mlm_warmup(mlm, tok, texts=texts_only, max_length=variant.train_length,
                                       epochs=variant.model.mlm_epochs, batch_size=variant.train.batch_size,
                                       seed=variant.seed, truncation=variant.truncation,
                                       device=variant.train.device, progress=progress)
            transplant_body(mlm, model)
            del mlm
        dropped = None
        if variant.drop.strategy != "none":
            dropped = _drop(variant, model, tok, texts_only)
        n_params = int(sum(p.numel() for p in model.parameters()))
        ensure_free_space(tmp, 4 * n_params * 1.2 + 50e6, "the fine-tuned checkpoint")
        stats = training.fine_tune(model, tok, texts=train_texts, labels=train_labels,
                                   cfg=trained.train, seed=variant.seed, lr=lr, max_length=variant.train_length,
                                   truncation=variant.truncation, distill=distill, validation=validation,
                                   epochs=epochs, head_lr_scale=head_scale, progress=progress,
                                   snapshot=_snapshot(cache_dir, key))
        _teacher_targets(cache_dir, key).unlink(missing_ok=True)  # left by an older version's interrupted run
        if warm is not None:
            stats = {**stats, "mlm_warmup": warm, "seconds": stats["seconds"] + warm["seconds"]}
        if dropped is not None:
            stats = {**stats, "drop": dropped}
        if kd_stats is not None:
            stats = {**stats, "distill": kd_stats}
        if selected is not None:
            stats = {**stats, "selected": selected}
        if windows is not None:
            stats = {**stats, "windows": windows}
        if validation is not None and vseed != variant.seed:
            stats = {**stats, "validation_seed": vseed}
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        return {"train": stats, "source": source.label, "model": variant.model.name,
                "n_params": int(sum(p.numel() for p in model.parameters())),
                "label_names": split.label_names, "data": split.fingerprint()}

    pretrained = _pretrained_body(variant, source)
    # the budget as resolved (train.epochs: null depends on the data), like the lr (which depends on it)
    epochs = training.max_epochs(variant.train, n_train=len(texts_only), n_classes=len(split.label_names),
                                 pretrained=pretrained)
    if windows is not None and variant.train.epochs is None:
        # the default budget counts passes over the texts: windows stand in for repeats of a text and
        # add no optimizer steps (the same schedule, evaluations and patience as without them)
        windows = {**windows, "text_epochs": epochs}
        steps = training.n_steps(len(texts_only), variant.train.batch_size, epochs)
        epochs = steps / math.ceil(len(train_texts) / variant.train.batch_size)
    steps = training.n_steps(len(train_texts), variant.train.batch_size, epochs)
    lr = training.default_lr(variant.train, pretrained=pretrained, hidden=variant.model.hidden,
                             selected=source.selects, layers=variant.model.layers, steps=steps)
    # a new head on a pretrained body learns faster; a student cut or selected from its fine-tuned
    # teacher keeps the teacher's head
    new_head = source.pretrained and variant.distill.layers is None and not source.selects_finetuned
    head_scale = (training.head_scale(variant.train, selected=source.selects, layers=variant.model.layers)
                  if new_head else 1.0)
    # train.rdrop / train.ema as resolved (policy 7: on for a long budget where null, 0 is off): the
    # key below and build() above (it reads `trained` when called) see the resolved settings, the
    # same checkpoint as the recipe set by hand. It was measured on a pretrained body's own
    # fine-tune: a selected body (a new head on pretrained-derived weights too, with random init's
    # budget) is left alone.
    trained = dataclasses.replace(variant, train=training.regularisation(
        variant.train, new_head=new_head and pretrained, steps=steps))
    chosen = ([f"R-Drop (train.rdrop={trained.train.rdrop:g}, about twice a step's compute)"]
              if trained.train.rdrop and variant.train.rdrop is None else [])
    chosen += ([f"the bias-corrected {trained.train.ema:g} average of the weights (train.ema)"]
               if trained.train.ema and variant.train.ema is None else [])
    if chosen:
        log.info("[%s] a long budget (%d optimizer steps > %d): %s (policy 7; off: train.rdrop=0 train.ema=0)",
                 variant.variant_id, steps, training.LARGE_BUDGET_STEPS, " and ".join(chosen))
    key = trained.train_key(data_fingerprint=split.fingerprint(), source=source.label, lr=lr,
                            teacher_key=teacher_key, epochs=None if variant.train.epochs is not None else epochs,
                            distils=source.distils, head_scale=head_scale if new_head else None,
                            patience=validation.patience if validation is not None else None,
                            validation_seed=vseed if validation is not None else None)
    built = rediagnosed(stage(cache_dir, "checkpoints", key, build))
    return _retry_unconverged(variant, built, lr, split, source, cache_dir, progress=progress,
                              allow_network=allow_network)


def _windowed(variant: Variant, source: Source, retok: bool, texts: list[str], labels: list[int],
              cache_dir: Path) -> tuple[list[str], list[int], dict[str, Any]]:
    """``train.windows`` > 1: every train text and up to ``windows - 1`` following windows of
    its tokens (the tokenizer the model is fine-tuned with), each labelled as its text; what was
    made (texts, examples, texts that gave more than one)."""
    tok = load_tokenizer(Source("scratch") if retok else source, variant.model, train_texts=texts,
                         cache_dir=cache_dir)
    out_t, out_l, origin = windowed(tok, texts, labels, max_length=variant.train_length, n=variant.train.windows)
    longer = sum(1 for c in Counter(origin).values() if c > 1)
    stats = {"n": variant.train.windows, "texts": len(texts), "examples": len(out_t), "texts_windowed": longer}
    log.info("[%s] train.windows=%d: %d train texts -> %d examples (%d texts longer than one window of %d tokens)",
             variant.variant_id, variant.train.windows, len(texts), len(out_t), longer, variant.train_length)
    return out_t, out_l, stats


def _snapshot(cache_dir: Path, key: str) -> Path:
    """Where the fine-tune of checkpoint ``key`` keeps its resumable state while it runs
    (:func:`paretobert.train.train_loop`): beside the checkpoint, never published with it."""
    return Path(cache_dir) / "checkpoints" / f".{key}.resume.pt"


def _teacher_targets(cache_dir: Path, key: str) -> Path:
    """Where a distilled fine-tune of checkpoint ``key`` kept its teacher's logits while it ran,
    before they were a stage of their own (:func:`teacher_soft_labels`,
    :func:`reader_soft_labels`): an older version's interrupted run may have left one there."""
    return Path(cache_dir) / "checkpoints" / f".{key}.teacher.pt"


def _teacher(variant: Variant, source: Source, split: Split | QASplit, cache_dir: Path, *, progress: bool,
             allow_network: bool) -> Built | None:
    """The fine-tuned teacher a variant distils from or is selected from: the size ladder's
    (selected-kd, selected-ft, distilled: :func:`ladder_teacher`), ``distill.teacher`` fine-tuned
    like the variant, or None."""
    if source.needs_finetuned_teacher:
        return ladder_teacher(variant, source, split, cache_dir, progress=progress, allow_network=allow_network)
    if not variant.distill.teacher:
        return None
    tv = teacher_variant(variant)
    tsource = resolve_source(tv.model, weights="auto", cache_dir=cache_dir, allow_network=allow_network)
    log.info("[%s] teacher %s (%s) ...", variant.variant_id, tv.model.name, tsource.label)
    return fine_tune(tv, split, tsource, cache_dir, progress=progress, allow_network=allow_network)


def _retry_unconverged(variant: Variant, built: Built, lr: float, split: Split, source: Source, cache_dir: Path, *,
                       progress: bool, allow_network: bool) -> Built:
    """The default policy's one second chance (``train.lr: null`` only): a fine-tune that early
    stopping ended ``not converged`` is trained again at half the lr (its own cached checkpoint,
    the one ``train.lr=<lr/2>`` asks for by hand) and the better of the two on validation is
    kept, both in ``meta["train"]["retry"]``. Halving is what fixed the seeds that stalled
    (README: the size ladder): mini's seed 2 at 1e-3 -> 5e-4, medium's seed 1 at 2.5e-4."""
    warning = built.meta["train"].get("warning") or ""
    if variant.train.lr is not None or not warning.startswith("not converged"):
        return built
    log.warning("[%s] fine-tune did not converge at lr=%g: training once more at lr=%g", variant.variant_id, lr,
                lr / 2)
    half = dataclasses.replace(variant, train=dataclasses.replace(variant.train, lr=lr / 2))
    second = fine_tune(half, split, source, cache_dir, progress=progress, allow_network=allow_network)
    tried = (built, second)
    metric = _metric(built)
    best = max(tried, key=lambda b: training.validation_rank(b.meta["train"], metric))
    retry = [{k: b.meta["train"].get(k) for k in ("lr", metric, "val_loss", "epochs", "stopped", "warning",
                                                   "seconds")} for b in tried]
    log.info("[%s] kept lr=%g (validation %s %.4f)", variant.variant_id, best.meta["train"]["lr"],
             metric.removeprefix("val_"), best.meta["train"][metric])
    train = {**best.meta["train"], "retry": retry, "seconds": sum(r["seconds"] for r in retry)}
    return best._replace(meta={**best.meta, "train": train}, reused=all(b.reused for b in tried))


def _fine_tune_qa(variant: Variant, split: QASplit, source: Source, cache_dir: Path, *, progress: bool,
                  allow_network: bool = True) -> Built:
    """The fine-tuned extractive reader: the pretrained body (a stand-in's as its teacher preset's,
    :func:`fine_tune`) with a new start/end
    head, a body selected from a larger pretrained one, random init, or the fine-tuned teacher
    cut to ``distill.layers``; trained on doc-stride windows of ``train_length`` tokens, with a
    teacher (``distill.teacher``, or the size ladder's for selected-kd / distilled) on its soft
    start/end distributions too (:class:`~paretobert.qa_model.SpanDistillation`); validated by F1
    on whole held-out train articles (``train.validation_size`` of them), early stopping and the
    weights ``train.restore`` keeps (:func:`paretobert.qa_model.fine_tune_qa`); lr and budget by
    :func:`~paretobert.qa_model.qa_lr` / :func:`~paretobert.qa_model.qa_epochs`."""
    t = variant.train
    vseed = validation_seed(variant, source)
    train, val = qa_model.carve_articles(split.train, t.validation_size, seed=vseed)
    pretrained = _pretrained_body(variant, source)
    epochs = qa_model.qa_epochs(t, pretrained=pretrained)
    lr = qa_model.qa_lr(t, pretrained=pretrained, hidden=variant.model.hidden, selected=source.selects,
                        layers=variant.model.layers)
    teacher = _teacher(variant, source, split, cache_dir, progress=progress, allow_network=allow_network)

    def build(tmp: Path) -> dict[str, Any]:
        contexts = sorted({i.context for i in train})
        tok = load_tokenizer(source, variant.model, train_texts=[i.question for i in train] + contexts,
                             cache_dir=cache_dir)
        selected = kd = kd_stats = None
        if source.selects:
            model, selected = _selected_student(variant, source, [], tok, cache_dir)
        elif variant.distill.layers is not None:
            model = None  # cut from the teacher below
        else:
            model = build_model(source if source.pretrained else Source("scratch"), variant.model, num_labels=2,
                                tokenizer=tok, cache_dir=cache_dir, seed=variant.seed, task="qa")
        if teacher is not None:
            model, tok, kd, kd_stats = _span_distill_setup(variant, teacher, model, tok)
            kd.keep = reader_soft_labels(variant, teacher, cache_dir, kd_stats, progress=progress)
        tok = match_inputs(tok, model)
        dropped = _drop(variant, model, tok, contexts) if variant.drop.strategy != "none" else None
        n_params = int(sum(p.numel() for p in model.parameters()))
        ensure_free_space(tmp, 4 * n_params * 1.2 + 50e6, "the fine-tuned reader")
        stats = qa_model.fine_tune_qa(model, tok, train, cfg=t, seed=variant.seed, lr=lr,
                                      max_length=variant.train_length, doc_stride=variant.dataset.doc_stride,
                                      validation=val or None, patience=t.patience, epochs=epochs,
                                      language=split.language, distill=kd, progress=progress,
                                      snapshot=_snapshot(cache_dir, key))
        _teacher_targets(cache_dir, key).unlink(missing_ok=True)  # left by an older version's interrupted run
        stats = {**stats, "n_validation_articles": len({i.article for i in val}),
                 **({"validation_seed": vseed} if val and vseed != variant.seed else {})}
        for name, value in (("drop", dropped), ("selected", selected), ("distill", kd_stats)):
            if value is not None:
                stats[name] = value
        if kd_stats is not None:
            stats["distill"]["teacher_train_f1"] = stats.pop("teacher_train_f1")
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        return {"train": stats, "source": source.label, "model": variant.model.name, "task": "qa",
                "n_params": int(sum(p.numel() for p in model.parameters())), "label_names": [],
                "data": split.fingerprint()}

    key = variant.train_key(data_fingerprint=split.fingerprint(), source=source.label, lr=lr,
                            teacher_key=teacher.key if teacher is not None else None,
                            epochs=None if t.epochs is not None else epochs, distils=source.distils,
                            validation_seed=vseed if val else None)
    return rediagnosed(stage(cache_dir, "checkpoints", key, build))


def _cut_teacher(teacher: Any, layers: list[int]) -> Any:
    """A copy of the fine-tuned ``teacher`` keeping only its ``layers`` (``distill.layers``:
    the student S2's layer reduction starts from)."""
    n_teacher = len(encoder_layers(teacher))
    if max(layers) >= n_teacher:
        raise ValueError(f"distill.layers={layers}: the teacher has {n_teacher} layers")
    student = copy.deepcopy(teacher)
    drop_layers(student, layers)
    return student


def _load_trained(path: Path, *, qa: bool) -> tuple[Any, Any]:
    """A fine-tuned checkpoint's model (a reader's with ``qa``; eager attention, which the ONNX
    export and the off-ramps' hidden states need) and its tokenizer."""
    from transformers import (
        AutoModelForQuestionAnswering,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    auto = AutoModelForQuestionAnswering if qa else AutoModelForSequenceClassification
    return auto.from_pretrained(path, attn_implementation="eager"), AutoTokenizer.from_pretrained(path)


def _span_distill_setup(variant: Variant, teacher: Built, model: Any | None, tok: Any):
    """(student, its tokenizer, SpanDistillation, stats) for a reader: with ``distill.layers``
    (``model`` None) the student is the fine-tuned teacher keeping those layers, else ``model``,
    which must read the teacher's tokens (the soft targets are per token of the same windows)."""
    d = variant.distill
    big, ttok = _load_trained(teacher.dir, qa=True)
    n_teacher = len(encoder_layers(big))
    if model is None:
        model, tok = _cut_teacher(big, d.layers), ttok
    elif tok.get_vocab() != ttok.get_vocab():
        raise ValueError(f"distill.teacher={teacher.meta.get('model')}: a reader distils only into a student with "
                         f"its tokenizer (start/end targets are per token); model={variant.model.name} reads other "
                         "tokens: use weights=distilled or selected-kd, or distill.layers")
    kd = qa_model.SpanDistillation(teacher=big, temperature=d.temperature, alpha=d.alpha, hidden_mse=d.hidden_mse,
                                   layer_map=d.layers)
    stats = {"teacher": teacher.meta.get("model"), "teacher_layers": n_teacher, "student_init": d.layers,
             "teacher_val_f1": (teacher.meta.get("train") or {}).get("val_f1")}
    return model, tok, kd, stats


def _metric(built: Built) -> str:
    """The validation metric a checkpoint was selected by: accuracy, or F1 for a QA reader."""
    return (built.meta.get("train") or {}).get("metric", "val_accuracy")


def rediagnosed(built: Built) -> Built:
    """The checkpoint with its training warning re-derived from its curve by the current
    :func:`~paretobert.train.diagnose` (a cached checkpoint keeps the warning of the rule it
    was trained under otherwise)."""
    train = built.meta.get("train") or {}
    if not train.get("curve"):
        return built
    # the classifier's chance loss (ln K) where its loss was the labels' cross-entropy alone
    metric = train.get("metric", "val_accuracy")
    chance = None if train.get("distill") or metric != "val_accuracy" else \
        training.chance_loss(len(built.meta.get("label_names") or []))
    floor = qa_model.QA_LEARNT_LITTLE_F1 if metric == "val_f1" else None
    kept = next((i for i, p in enumerate(train["curve"]) if p.get("step") == train.get("best_step")), None)
    warning = training.diagnose(train["curve"], train.get("stopped", "budget"), metric=metric, chance_loss=chance,
                                floor=floor, kept=kept)
    if warning == train.get("warning"):
        return built
    return built._replace(meta={**built.meta, "train": {**train, "warning": warning}})


def _logits_stage(variant: Variant, teacher: Built, cache_dir: Path, *, what: str, rows: int, inputs: dict[str, Any],
                  compute: Callable[[], dict[str, Any]]) -> tuple[Built, dict[str, Any]]:
    """The stage ``teacher-logits/KEY/logits.pt`` of the fine-tuned ``teacher``'s ``what`` on
    ``rows`` training examples, keyed on the teacher's checkpoint and ``inputs`` (what says
    which examples, encoded how): ``compute()`` (a dict of tensors of ``rows`` rows each) when no
    build of that key is stored. Returns the stage and its tensors, checked to have ``rows`` rows."""
    import torch

    key = content_hash({"teacher": teacher.key, **inputs, "n": rows, "v": library_versions()})

    def build(tmp: Path) -> dict[str, Any]:
        log.info("[%s] the teacher's %s on %d training examples ...", variant.variant_id, what, rows)
        start = time.perf_counter()
        torch.save(compute(), tmp / "logits.pt")
        return {"teacher": teacher.key, "rows": rows, **inputs, "seconds": time.perf_counter() - start}

    soft = stage(cache_dir, "teacher-logits", key, build)
    got = torch.load(soft.dir / "logits.pt", map_location="cpu", weights_only=True)
    if not isinstance(got, dict) or not got or any(len(v) != rows for v in got.values()):
        raise ValueError(f"the teacher's {what} at {soft.dir} do not have {rows} rows, one per training example: "
                         "delete that directory and run again")
    if soft.reused:
        log.info("[%s] the teacher's %s read from %s", variant.variant_id, what, soft.dir)
    return soft, got


def teacher_soft_labels(variant: Variant, teacher: Built, net: Callable[[], Any], ttok: Any, texts: list[str],
                        cache_dir: Path, *, progress: bool) -> tuple[Built, Any]:
    """The fine-tuned ``teacher``'s logits (``net()``: its model, loaded only when they are
    computed; ``ttok``: its tokenizer) on a student's training ``texts`` (its windows too), in
    order, and their stage
    (:func:`_logits_stage`), keyed on the teacher's checkpoint, the texts and how they are
    encoded. Every student that distils from that teacher on those texts reads it instead of
    running the teacher again: another student seed (the size ladder's students hold out the
    teacher's validation split, so their train texts are the same), another student recipe or
    budget, a re-run after a kill."""

    def compute() -> dict[str, Any]:
        return {"logits": training.teacher_logits(net(), ttok, texts, max_length=variant.train_length,
                                                  truncation=variant.truncation, progress=progress)}

    inputs = {"texts": content_hash({"texts": texts}, length=32), "max_length": variant.train_length,
              "truncation": variant.truncation}
    soft, got = _logits_stage(variant, teacher, cache_dir, what="logits", rows=len(texts), inputs=inputs,
                              compute=compute)
    return soft, got["logits"]


def reader_soft_labels(variant: Variant, teacher: Built, cache_dir: Path, stats: dict[str, Any], *,
                       progress: bool) -> Callable[[Any, Callable[[], dict[str, Any]]], dict[str, Any]]:
    """What a distilled reader's :class:`~paretobert.qa_model.SpanDistillation` keeps its
    teacher's start/end logits with: their stage (:func:`_logits_stage`) keyed on the fine-tuned
    ``teacher``'s checkpoint and the training windows' tokens, as :func:`teacher_soft_labels` is
    for a classifier: another student seed (the ladder's students hold out the teacher's
    validation articles, so their windows are the same), recipe or budget, or a re-run after a
    kill, reads them (21 min for 7,658 windows on 2 cores) instead of running the teacher again.
    Says which stage and whether it was reused in ``stats`` (``logits_key``, ``logits_cached``)."""

    def keep(feats: Any, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        soft, got = _logits_stage(variant, teacher, cache_dir, what="start/end logits", rows=len(feats),
                                  inputs={"windows": feats.fingerprint(), "task": "qa"}, compute=compute)
        stats.update(logits_key=soft.key, logits_cached=soft.reused)
        return got

    return keep


def _distill_setup(variant: Variant, texts: list[str], labels: list[int], teacher: Built, model: Any | None,
                   tok: Any, *, cache_dir: Path, progress: bool):
    """(student, its tokenizer, Distillation, stats): with ``distill.layers`` the student is the
    fine-tuned ``teacher`` keeping those layers (and its tokenizer; ``model`` is None), else the
    variant's own ``model``; the teacher's logits on ``texts`` from :func:`teacher_soft_labels`.
    The teacher's model is loaded once, and only where something reads it: the logits when they
    are not stored yet, a student cut from it, the hidden-state loss (``distill.hidden_mse``); a
    student that distils from stored logits alone does not load it."""
    import functools

    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    d = variant.distill
    net = functools.cache(lambda: AutoModelForSequenceClassification.from_pretrained(
        teacher.dir, attn_implementation="eager"))
    ttok = AutoTokenizer.from_pretrained(teacher.dir)
    soft, logits = teacher_soft_labels(variant, teacher, net, ttok, texts, cache_dir, progress=progress)
    n_teacher = (len(encoder_layers(net())) if d.layers is not None or d.hidden_mse
                 else AutoConfig.from_pretrained(teacher.dir).num_hidden_layers)
    if d.layers is not None:
        model, tok = _cut_teacher(net(), d.layers), ttok
    teacher_acc = float((logits.argmax(-1) == torch.as_tensor(labels)).float().mean())
    layer_map, index = d.layers, None
    if d.hidden_mse and d.layers is None:  # a selected student: its units are the teacher's at these indices
        layer_map = uniform_layer_map(n_teacher, model.config.num_hidden_layers)
        index = uniform_indices(net().config.hidden_size, model.config.hidden_size)
    kd = training.Distillation(soft_targets=logits, temperature=d.temperature, alpha=d.alpha,
                               hidden_mse=d.hidden_mse, teacher=net() if d.hidden_mse else None,
                               layer_map=layer_map, hidden_index=index)
    stats = {"teacher_layers": n_teacher, "student_init": d.layers, "teacher_train_accuracy": teacher_acc,
             "logits_key": soft.key, "logits_cached": soft.reused}
    if d.hidden_mse:
        stats["hidden_layer_map"] = layer_map
    return model, tok, kd, stats


def _drop(variant: Variant, model: Any, tok: Any, texts: list[str]) -> dict[str, Any]:
    """Drop layers before fine-tuning; returns what was kept (and the ranking for contribution)."""
    d = variant.drop
    n = len(encoder_layers(model))
    sim = None
    if d.strategy == "contribution":  # deterministic: eval mode, evenly spaced texts
        pick = measure.evenly_spaced(len(texts), d.sample)
        sim = layer_similarity(model, tok, [texts[i] for i in pick],
                               max_length=variant.train_length)
    kept = kept_layers(d.strategy, n, d.keep or n, similarity=sim)
    drop_layers(model, kept)
    log.info("[%s] kept layers %s of %d (%s)", variant.variant_id, kept, n, d.strategy)
    return {"strategy": d.strategy, "kept": kept, "of": n, "similarity": sim}


def fine_tune_tfidf(variant: Variant, split: Split, cache_dir: Path) -> Built:
    """The fitted TF-IDF + linear SVM pipeline (the classical baseline)."""

    def build(tmp: Path) -> dict[str, Any]:
        t0 = time.perf_counter()
        texts = [classic.prepare_text(t, max_chars=variant.train_length, truncation=variant.truncation)
                 for t in split.train_texts]
        pipe = classic.fit_tfidf(texts, split.train_labels, ngrams=variant.model.ngrams, seed=variant.seed)
        classic.save_tfidf(pipe, tmp / "model.pkl")
        svm = pipe.named_steps["svm"]
        return {"train": {"seconds": time.perf_counter() - t0, "max_length": variant.train_length,
                          "truncation": variant.truncation,
                          "n_features": len(pipe.named_steps["tfidf"].vocabulary_)},
                "source": "tfidf", "model": variant.model.name,
                "n_params": int(svm.coef_.size + svm.intercept_.size),
                "label_names": split.label_names, "data": split.fingerprint()}

    key = variant.train_key(data_fingerprint=split.fingerprint(), source="tfidf", lr=0.0)
    return stage(cache_dir, "checkpoints", key, build)


def export_tfidf(variant: Variant, ckpt: Built, split: Split, cache_dir: Path) -> Built:
    """The TF-IDF pipeline as one ONNX graph, checked against scikit-learn."""

    def build(tmp: Path) -> dict[str, Any]:
        pipe = classic.load_tfidf(ckpt.dir / "model.pkl")
        names = classic.export_tfidf(pipe, tmp / "model.onnx", opset=variant.export.opset)
        sample = [classic.prepare_text(t, max_chars=variant.seq_len, truncation=variant.truncation)
                  for t in split.test_texts[:16]]
        return {"inputs": names, "file": "model.onnx", "fusion": {},
                "max_abs_diff": classic.check_tfidf_onnx(tmp / "model.onnx", pipe, sample)}

    return stage(cache_dir, "onnx", variant.export_key(train_key=ckpt.key), build)


def export(variant: Variant, ckpt: Built, split: Split, cache_dir: Path) -> Built:
    """The checkpoint as ONNX (fused with ``export.optimize``), its logits checked against torch."""

    qa = variant.task == "qa"

    def build(tmp: Path) -> dict[str, Any]:
        model, tok = _load_trained(ckpt.dir, qa=qa)
        ensure_free_space(tmp, 4 * sum(p.numel() for p in model.parameters()) * 2.5 + 50e6, "the ONNX export")
        raw = tmp / "model.onnx"
        outputs = qa_model.QA_OUTPUTS if qa else ("logits",)
        names = onnx_export.export_onnx(model, tok, raw, opset=variant.export.opset, outputs=outputs)
        meta: dict[str, Any] = {"inputs": names, "file": raw.name, "fusion": {}}
        if variant.export.optimize:
            cfg = model.config
            meta["fusion"] = onnx_export.fuse_onnx(raw, tmp / "model.fused.onnx", num_heads=cfg.num_attention_heads,
                                                   hidden_size=cfg.hidden_size)
            raw.unlink()
            meta["file"] = "model.fused.onnx"
        sample = [(i.question, i.context) for i in split.test[:4]] if qa else split.test_texts[:4]
        meta["max_abs_diff"] = onnx_export.check_onnx(tmp / meta["file"], model, tok, sample,
                                                      max_length=min(variant.train_length, 512), outputs=outputs)
        return meta

    return stage(cache_dir, "onnx", variant.export_key(train_key=ckpt.key), build)


def early_exit(variant: Variant, ckpt: Built, split: Split | QASplit, cache_dir: Path, *, progress: bool) -> Built:
    """Off-ramps trained on the frozen checkpoint, one ONNX graph per layer (int8 with quant); a
    reader's off-ramps give start/end logits for every token (span off-ramps)."""
    qa = variant.task == "qa"

    def build(tmp: Path) -> dict[str, Any]:
        import torch

        model, tok = _load_trained(ckpt.dir, qa=qa)
        common = dict(epochs=variant.exit.epochs, lr=variant.exit.lr, batch_size=variant.train.batch_size,
                      seed=variant.seed, progress=progress)
        if qa:
            assert isinstance(split, QASplit)
            ramps, stats = train_span_ramps(model, tok, items=split.train, max_length=variant.train_length,
                                            doc_stride=variant.dataset.doc_stride, **common)
        else:
            ramps, stats = train_ramps(model, tok, texts=split.train_texts, labels=split.train_labels,
                                       max_length=variant.train_length, truncation=variant.truncation,
                                       pooling=variant.exit.pooling, **common)
        files = export_segments(model, ramps, tok, tmp, opset=variant.export.opset)
        runner = EarlyExitRunner([tmp / f for f in files], threshold=0.0)
        diff = 0.0
        prepare, _ = measure.preparer(variant, ckpt.dir, runner.input_names)  # batch-1 feeds, as timed
        for feed in (prepare(x) for x in measure.split_inputs(split, "test")[:4]):
            want = layer_logits(model, ramps, {k: torch.from_numpy(v) for k, v in feed.items()})
            diff = max(diff, *(float(np.abs(g - w.numpy()).max()) for g, w in
                               zip(runner.all_logits(feed), want, strict=True)))
        del runner
        if variant.quant:
            for f in files:
                quantize_onnx(tmp / f, tmp / f.replace(".onnx", ".int8.onnx"), cfg=variant.quantize)
                (tmp / f).unlink()
            files = [f.replace(".onnx", ".int8.onnx") for f in files]
        return {"files": files, "train": stats, "max_abs_diff": diff}

    return stage(cache_dir, "exit", variant.exit_key(train_key=ckpt.key), build)


def evaluation(variant: Variant, split: Split, paths: list[Path], ckpt: Path, model_key: str,
               cache_dir: Path, *, progress: bool) -> Built:
    """The cached evaluation of one model artifact at one seq_len / truncation / exit threshold
    (with the predictions): thread counts and timing settings share it."""
    key = variant.eval_key(model_key=model_key, data_fingerprint=split.fingerprint())
    return stage(cache_dir, "eval", key, lambda tmp: measure.evaluate(variant, split, paths, ckpt, progress))
