"""Extractive QA readers: fine-tune on question/context windows (the training loop every task
shares: :func:`paretobert.train.train_loop`, validated by F1 on held-out questions), and
answer through anything that maps a feed to start/end logits (a torch model, or a runtime
session on the exported ONNX: :func:`paretobert.export.export_onnx` with
``outputs=QA_OUTPUTS``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from paretobert.config import TrainConfig
from paretobert.data.squad import QAItem
from paretobert.qa import Features, postprocess, prepare_features, score
from paretobert.train import seed_everything, torch_device, train_loop

__all__ = ["QA_OUTPUTS", "answer", "fine_tune_qa", "session_logits", "torch_logits"]

QA_OUTPUTS = ("start_logits", "end_logits")
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


def _logits(run: Logits, feats: Features, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    starts, ends = [], []
    for lo in range(0, len(feats), batch_size):
        s, e = run(feats.inputs(slice(lo, lo + batch_size)))
        starts.append(s)
        ends.append(e)
    return np.concatenate(starts), np.concatenate(ends)


def answer(run: Logits, tokenizer: Any, items: Sequence[QAItem], *, seq_len: int, windows: str = "first",
           doc_stride: int = 128, batch_size: int = 1, max_answer_length: int = 30) -> dict[str, str]:
    """Each question's answer text (question id -> text) from ``run`` on windows of
    ``seq_len`` tokens: ``windows="first"`` is what a deployed reader sees at batch 1 (an
    answer past the window is a miss), ``"all"`` the doc-stride reading."""
    feats = prepare_features(tokenizer, items, max_length=seq_len, doc_stride=doc_stride, windows=windows)
    start, end = _logits(run, feats, batch_size)
    return postprocess(items, feats, start, end, max_answer_length=max_answer_length)


def fine_tune_qa(model: Any, tokenizer: Any, items: Sequence[QAItem], *, cfg: TrainConfig, seed: int, lr: float,
                 max_length: int, doc_stride: int = 128, validation: Sequence[QAItem] | None = None,
                 every: int | None = None, patience: int = 2, epochs: float | None = None,
                 head_lr_scale: float = 1.0, language: str = "en", progress: bool = True) -> dict[str, Any]:
    """Fine-tune a QA ``model`` in place on the windows of ``items`` (``max_length`` tokens,
    ``doc_stride`` apart; a window without the answer points at [CLS]). With ``validation``
    (held-out questions, whole articles) the F1 over all their windows is the metric
    (``val_f1``, a fraction) every ``every`` steps (default: once per epoch), with early
    stopping after ``patience`` evaluations without a better one and the best weights kept."""
    seed_everything(seed)
    feats = prepare_features(tokenizer, items, max_length=max_length, doc_stride=doc_stride, windows="all",
                             labels=True)
    device = torch_device(cfg.device)

    def tensors(f: Features, rows: Any) -> dict[str, torch.Tensor]:
        out = {k: torch.from_numpy(v).to(device) for k, v in f.inputs(rows).items()}
        out["start_positions"] = torch.from_numpy(f.start_positions[rows]).to(device)
        out["end_positions"] = torch.from_numpy(f.end_positions[rows]).to(device)
        return out

    def batch_loss(idx: np.ndarray) -> torch.Tensor:
        return model(**tensors(feats, idx)).loss

    val_feats = None if validation is None else prepare_features(
        tokenizer, validation, max_length=max_length, doc_stride=doc_stride, windows="all", labels=True)

    def evaluate() -> dict[str, float]:
        starts, ends, loss_sum = [], [], 0.0
        for lo in range(0, len(val_feats), 64):
            rows = slice(lo, lo + 64)
            out = model(**tensors(val_feats, rows))
            loss_sum += float(out.loss) * len(val_feats.item[rows])
            starts.append(out.start_logits.float().cpu().numpy())
            ends.append(out.end_logits.float().cpu().numpy())
        preds = postprocess(validation, val_feats, np.concatenate(starts), np.concatenate(ends))
        scores = score(preds, validation, language=language)
        return {"val_f1": scores["f1"] / 100, "val_exact_match": scores["exact_match"] / 100,
                "val_loss": loss_sum / len(val_feats)}

    per_epoch = -(-len(feats) // cfg.batch_size)
    stats = train_loop(model, n_items=len(feats), batch_loss=batch_loss, cfg=cfg, seed=seed, lr=lr, epochs=epochs,
                       head_lr_scale=head_lr_scale, device=device, progress=progress,
                       evaluate=None if validation is None else evaluate, every=every or per_epoch,
                       patience=patience, metric="val_f1")
    stats.update(max_length=max_length, doc_stride=doc_stride, n_windows=len(feats), n_questions=len(items))
    if validation is not None:
        stats["n_validation"] = len(validation)
    return stats
