"""Extractive QA readers: fine-tune on question/context windows (the training loop every task
shares: :func:`paretobert.train.train_loop`, validated by F1 on held-out questions), and
answer through anything that maps a feed to start/end logits (a torch model, or a runtime
session on the exported ONNX: :func:`paretobert.export.export_onnx` with
``outputs=QA_OUTPUTS``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from paretobert.config import TrainConfig
from paretobert.data.squad import QAItem
from paretobert.qa import Features, per_question, postprocess, prepare_features, score
from paretobert.train import hidden_state_mse, seed_everything, torch_device, train_loop

__all__ = ["QA_LEARNT_LITTLE_F1", "QA_OUTPUTS", "SpanDistillation", "answer", "carve_articles", "fine_tune_qa",
           "qa_epochs", "qa_lr", "session_logits", "torch_logits"]

QA_OUTPUTS = ("start_logits", "end_logits")
# a pretrained reader's default lr and epochs (one lr for body and head): all-MiniLM-L6-v2 on
# SQuAD dev's 33 training articles (README, extractive QA): 2e-4 x 3 epochs F1 70.3, 1e-4 x 3
# 69.4, 1e-4 x 4 69.5, 5e-5 x 4 69.0, 1e-4 x 2 67.5
QA_PRETRAINED_LR = 2e-4
QA_PRETRAINED_EPOCHS = 3.0
# a reader whose best validation F1 stays below this learnt too little to be worth timing: the
# sliding-window word-overlap baseline, with no learning at all, scores F1 20.2 on SQuAD v1.1 dev
# (Rajpurkar et al. 2016, Table 2); the tiny reader selected from MiniLM-L6 peaked at 0.079
QA_LEARNT_LITTLE_F1 = 0.20
QA_BUILT_EPOCHS = 10.0  # a selected or random-init body: random init's kind of budget (early stopping ends it)


def qa_lr(cfg: TrainConfig, *, pretrained: bool, hidden: int, selected: bool = False,
          layers: int | None = None) -> float:
    """``train.lr``, else a reader's default: :data:`QA_PRETRAINED_LR` for a pretrained body
    of MiniLM's width, scaled down for wider ones (x 384 / hidden: 1e-4 for a 768-wide body, as
    for classification); random init's rule (:func:`paretobert.train.default_lr`) otherwise."""
    from paretobert.train import default_lr

    if isinstance(cfg.lr, float):
        return cfg.lr
    if pretrained:
        return QA_PRETRAINED_LR * min(1.0, 384 / hidden)
    return default_lr(cfg, pretrained=False, hidden=hidden, selected=selected, layers=layers)


def qa_epochs(cfg: TrainConfig, *, pretrained: bool) -> float:
    """``train.epochs``, else 3 for a pretrained reader and 10 for a built one."""
    if cfg.epochs is not None:
        return float(cfg.epochs)
    return QA_PRETRAINED_EPOCHS if pretrained else QA_BUILT_EPOCHS


def carve_articles(items: Sequence[QAItem], size: float, *, seed: int) -> tuple[list[QAItem], list[QAItem]]:
    """(train, validation) questions: ``size`` of the train articles (at least one, never all)
    held out whole, drawn with ``seed``; ``size`` 0: no validation."""
    import random

    if not size:
        return list(items), []
    articles = sorted({i.article for i in items})
    if len(articles) < 2:
        raise ValueError(f"train.validation_size={size}: the train split has {len(articles)} article(s); a "
                         "validation split takes whole articles (set train.validation_size=0)")
    random.Random(seed).shuffle(articles)
    held = set(articles[:min(len(articles) - 1, max(1, round(size * len(articles))))])
    return [i for i in items if i.article not in held], [i for i in items if i.article in held]
Logits = Callable[[dict[str, np.ndarray]], tuple[np.ndarray, np.ndarray]]


def torch_logits(model: Any, device: Any = "cpu") -> Logits:
    """A feed -> (start, end) logits function of a torch QA model (no grad)."""

    def run(feed: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            out = model(**{k: torch.from_numpy(v).to(device) for k, v in feed.items()})
        return out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy()

    return run


def session_logits(session: Any) -> Logits:
    """A feed -> (start, end) logits function of a runtime session (``Session.outputs``) on
    an exported QA model; the feed is cut to the inputs the session takes."""

    def run(feed: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        out = session.outputs({k: v for k, v in feed.items() if k in session.input_names})
        return out["start_logits"], out["end_logits"]

    return run


def _logits(run: Logits, feats: Features, batch_size: int, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Start/end logits of every window, ``batch_size`` windows a call, each batch cut to its
    longest real row: at batch 1 a window runs unpadded, as a deployed reader runs it (dynamic
    int8 scales its activations over the whole input, padding included). Cut-off positions get
    -inf (never an answer)."""
    width = feats.input_ids.shape[1]
    starts, ends = [], []
    for lo in tqdm(range(0, len(feats), batch_size), desc="read", unit="batch", disable=not progress, leave=False):
        feed = feats.inputs(slice(lo, lo + batch_size))
        mask = feed["attention_mask"]
        n = int(mask.sum(axis=1).max())
        if not mask[:, n:].any():  # right padding only (never cut a real token)
            feed = {k: v[:, :n] for k, v in feed.items()}
        s, e = run(feed)
        pad = ((0, 0), (0, width - s.shape[1]))
        starts.append(np.pad(s, pad, constant_values=-np.inf))
        ends.append(np.pad(e, pad, constant_values=-np.inf))
    return np.concatenate(starts), np.concatenate(ends)


def answer(run: Logits, tokenizer: Any, items: Sequence[QAItem], *, seq_len: int, windows: str = "first",
           doc_stride: int = 128, batch_size: int = 1, max_answer_length: int = 30, features: Features | None = None,
           progress: bool = False) -> dict[str, str]:
    """Each question's answer text (question id -> text) from ``run`` on windows of
    ``seq_len`` tokens: ``windows="first"`` is what a deployed reader sees at batch 1 (an
    answer past the window is a miss), ``"all"`` the doc-stride reading; ``features``: those
    windows already built (:func:`~paretobert.qa.prepare_features` of ``items``)."""
    feats = features if features is not None else prepare_features(tokenizer, items, max_length=seq_len,
                                                                    doc_stride=doc_stride, windows=windows)
    start, end = _logits(run, feats, batch_size, progress)
    return postprocess(items, feats, start, end, max_answer_length=max_answer_length)


@dataclass
class SpanDistillation:
    """Distil a fine-tuned reader (``teacher``, the student's tokenizer) into the student:
    ``alpha`` x the KL divergence between the teacher's and the student's start and end
    distributions over each window's real tokens at ``temperature`` (x T^2), plus
    ``1 - alpha`` x the hard start/end loss; with ``hidden_mse`` > 0 also student layer i's
    output against teacher layer ``layer_map[i]``'s (:func:`paretobert.train.hidden_state_mse`).
    The teacher's logits over every training window are computed once (:meth:`targets`); with
    ``keep`` that function has them (given the windows and their computation: the caller's
    cache, :func:`paretobert.stages.reader_soft_labels`, so that another student on the same
    windows, or a re-run after a kill, reads them instead of running the teacher again)."""

    teacher: Any
    temperature: float = 2.0
    alpha: float = 0.5
    hidden_mse: float = 0.0
    layer_map: list[int] | None = None
    keep: Callable[[Features, Callable[[], dict[str, torch.Tensor]]], dict[str, torch.Tensor]] | None = None
    start: torch.Tensor | None = None
    end: torch.Tensor | None = None

    def targets(self, feats: Features, device: Any, *, batch_size: int = 32, progress: bool = True) -> None:
        """The teacher's start/end logits on every window of ``feats`` (eval mode, no grad; read
        as every reader is read, :func:`_logits`: positions past a batch's longest window are
        -inf, padding the loss masks out anyway)."""
        self.teacher.to(device).eval()

        def compute() -> dict[str, torch.Tensor]:
            start, end = _logits(torch_logits(self.teacher, device), feats, batch_size, progress)
            return {"start": torch.from_numpy(start), "end": torch.from_numpy(end)}

        got = compute() if self.keep is None else self.keep(feats, compute)
        self.start, self.end = got["start"], got["end"]

    def loss(self, model: Any, enc: dict[str, torch.Tensor], idx: np.ndarray) -> torch.Tensor:
        assert self.start is not None and self.end is not None, "targets() first"
        want_hidden = self.hidden_mse > 0
        out = model(**enc, output_hidden_states=want_hidden)
        real = enc["attention_mask"].bool()
        t = self.temperature
        rows = torch.as_tensor(idx)

        def kl(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
            s = student.masked_fill(~real, -1e4) / t
            p = torch.softmax(teacher.to(student.device).masked_fill(~real, -1e4) / t, -1)
            return torch.nn.functional.kl_div(torch.log_softmax(s, -1), p, reduction="batchmean") * t * t

        soft = (kl(out.start_logits, self.start[rows]) + kl(out.end_logits, self.end[rows])) / 2
        loss = self.alpha * soft + (1 - self.alpha) * out.loss
        if want_hidden:
            assert self.layer_map is not None
            loss = loss + self.hidden_mse * hidden_state_mse(out.hidden_states, self.teacher, enc, self.layer_map)
        return loss


def fine_tune_qa(model: Any, tokenizer: Any, items: Sequence[QAItem], *, cfg: TrainConfig, seed: int, lr: float,
                 max_length: int, doc_stride: int = 128, validation: Sequence[QAItem] | None = None,
                 every: int | None = None, patience: int = 2, epochs: float | None = None,
                 head_lr_scale: float = 1.0, language: str = "en", distill: SpanDistillation | None = None,
                 progress: bool = True, snapshot: Any = None) -> dict[str, Any]:
    """Fine-tune a QA ``model`` in place on the windows of ``items`` (``max_length`` tokens,
    ``doc_stride`` apart; a window without the answer points at [CLS]). With ``validation``
    (held-out questions, whole articles) the F1 over all their windows is the metric
    (``val_f1``, a fraction) every ``every`` steps (default: once per epoch), with early
    stopping after ``patience`` evaluations without a better one and the weights ``cfg.restore``
    keeps (per-question F1 in its sign test).
    With ``distill`` the loss is its soft + hard one (the teacher's logits on every window first)."""
    seed_everything(seed)
    feats = prepare_features(tokenizer, items, max_length=max_length, doc_stride=doc_stride, windows="all",
                             labels=True)
    device = torch_device(cfg.device)

    def tensors(f: Features, rows: Any) -> dict[str, torch.Tensor]:
        out = {k: torch.from_numpy(v).to(device) for k, v in f.inputs(rows).items()}
        out["start_positions"] = torch.from_numpy(f.start_positions[rows]).to(device)
        out["end_positions"] = torch.from_numpy(f.end_positions[rows]).to(device)
        return out

    if distill is not None:
        distill.targets(feats, device, progress=progress)

    def batch_loss(idx: np.ndarray) -> torch.Tensor:
        if distill is not None:
            return distill.loss(model, tensors(feats, idx), idx)
        return model(**tensors(feats, idx)).loss

    val_feats = None if validation is None else prepare_features(
        tokenizer, validation, max_length=max_length, doc_stride=doc_stride, windows="all", labels=True)

    def evaluate() -> dict[str, float]:
        starts, ends, window_losses = [], [], []
        ce = torch.nn.functional.cross_entropy
        for lo in range(0, len(val_feats), 64):
            rows = slice(lo, lo + 64)
            batch = tensors(val_feats, rows)
            out = model(**batch)
            # each window's loss as the model's own (its mean over a batch): start and end cross-entropies halved
            window_losses.append(((ce(out.start_logits.float(), batch["start_positions"], reduction="none")
                                   + ce(out.end_logits.float(), batch["end_positions"], reduction="none"))
                                  / 2).cpu().numpy())
            starts.append(out.start_logits.float().cpu().numpy())
            ends.append(out.end_logits.float().cpu().numpy())
        preds = postprocess(validation, val_feats, np.concatenate(starts), np.concatenate(ends))
        em, f = per_question(preds, validation, language=language)
        window_loss = np.concatenate(window_losses)
        return {"val_f1": float(f.mean()), "val_exact_match": float(em.mean()), "val_loss": float(window_loss.mean()),
                "items": f, "loss_items": window_loss}

    per_epoch = -(-len(feats) // cfg.batch_size)
    stats = train_loop(model, n_items=len(feats), batch_loss=batch_loss, cfg=cfg, seed=seed, lr=lr, epochs=epochs,
                       head_lr_scale=head_lr_scale, device=device, progress=progress,
                       evaluate=None if validation is None else evaluate, every=every or per_epoch,
                       patience=patience, metric="val_f1", snapshot=snapshot)
    stats.update(max_length=max_length, doc_stride=doc_stride, n_windows=len(feats), n_questions=len(items),
                 metric="val_f1")
    if distill is not None:  # how well the soft targets read the training questions themselves
        taught = postprocess(items, feats, distill.start.numpy(), distill.end.numpy())
        stats["teacher_train_f1"] = score(taught, items, language=language)["f1"] / 100
    if validation is not None:
        stats["n_validation"] = len(validation)
    return stats
