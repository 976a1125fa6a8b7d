"""Dynamic early exit (Xin et al., "DeeBERT", 2020) that really stops early in ONNX Runtime.

Training as in the paper: the model is fine-tuned with its last classifier (the pipeline's
ordinary checkpoint), then frozen, and an off-ramp (pooler-style dense + tanh, then a linear
classifier) is trained after every layer but the last, whose classifier is the model's own.
The off-ramp reads the layer's [CLS] vector (``pooling="cls"``, the paper's) or the mean of
its token vectors under the attention mask (``pooling="mean"``): the [CLS] vector of the
first layers carries little (all-MiniLM-L6-v2 on BBC News: chance accuracy after layers 1-3),
the token mean is nearly a bag of words (94% after layer 1), so mean-pooled ramps exit early.

Inference: the model is exported as one ONNX graph per layer segment: segment 0 is the
embeddings + layer 0 + off-ramp 0, segment i is layer i + off-ramp i, the last segment is
the last layer + pooler + classifier. :class:`~paretobert.runtimes.segmented.EarlyExitRunner` runs them in sequence and
returns as soon as an off-ramp's prediction entropy is below the threshold S, so an input
that exits at layer k never runs layers k+1.. . BERT-architecture models only (MPNet's
relative position bias is computed once for the whole encoder).

Extractive QA readers exit the same way: a span off-ramp (dense + tanh, then start/end logits
for every token, the shape of the reader's own ``qa_outputs``) after every layer but the last,
trained on the frozen reader's doc-stride training windows (:func:`train_span_ramps`). Every
segment's ``logits`` output is then ``(batch, 2, sequence)`` (start, end), and the exit rule
reads the mean of the start and end distributions' entropies over the window's tokens
(:func:`~paretobert.runtimes.segmented.exit_entropy`).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from paretobert.encoding import encode_batch, encode_ids
from paretobert.export import input_names
from paretobert.runtimes.segmented import EarlyExitRunner, entropy, exit_entropy
from paretobert.train import n_steps, shuffled_batches

__all__ = [
    "EarlyExitRunner",
    "OffRamps",
    "SpanRamps",
    "entropy",
    "exit_entropy",
    "export_segments",
    "layer_logits",
    "span_loss",
    "train_ramps",
    "train_span_ramps",
]


POOLINGS = ("cls", "mean")


class OffRamps(nn.Module):
    """One classifier per layer but the last: dense + tanh on the pooled layer output
    ([CLS] or the masked token mean), then linear."""

    def __init__(self, n_layers: int, hidden: int, num_labels: int, pooling: str = "mean") -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"off-ramp pooling {pooling!r}; accepted: {' | '.join(POOLINGS)}")
        self.pooling = pooling
        self.ramps = nn.ModuleList(
            nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, num_labels))
            for _ in range(n_layers - 1)
        )

    def pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.pooling == "cls":
            return hidden[:, 0]
        m = mask.to(hidden.dtype)[:, :, None]
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)

    def forward(self, i: int, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.ramps[i](self.pool(hidden, mask))


class SpanRamps(nn.Module):
    """A QA reader's off-ramps: one per layer but the last, dense + tanh on every token's
    vector, then its start and end logits; returned as ``(batch, 2, sequence)``."""

    pooling = "token"

    def __init__(self, n_layers: int, hidden: int) -> None:
        super().__init__()
        self.ramps = nn.ModuleList(
            nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 2)) for _ in range(n_layers - 1)
        )

    def forward(self, i: int, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        del mask  # every token is a candidate; padding is masked by the loss (batch 1 at inference has none)
        return self.ramps[i](hidden).transpose(1, 2)


Ramps = OffRamps | SpanRamps


def _check_bert(model: Any) -> Any:
    base = getattr(model, model.base_model_prefix, None)
    if model.config.model_type != "bert" or base is None or not hasattr(base, "embeddings"):
        raise ValueError(f"early exit supports BERT-architecture models, not {model.config.model_type!r}")
    return base


def _ext_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def _layer(layer: Any, hidden: torch.Tensor, ext: torch.Tensor) -> torch.Tensor:
    out = layer(hidden, attention_mask=ext)
    return out[0] if isinstance(out, tuple) else out


def _head(model: Any, base: Any, hidden: torch.Tensor) -> torch.Tensor:
    """The model's own output on its last layer: a reader's start/end logits as ``(batch, 2,
    sequence)``, a classifier's logits."""
    if hasattr(model, "qa_outputs"):
        return model.qa_outputs(hidden).transpose(1, 2)
    return model.classifier(base.pooler(hidden))


def layer_logits(model: Any, ramps: Ramps, enc: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """The logits after every layer: off-ramps, then the model's own head (torch)."""
    base = _check_bert(model)
    with torch.no_grad():
        hs = base(**enc, output_hidden_states=True).hidden_states
        out = [ramps(i, hs[i + 1], enc["attention_mask"]) for i in range(len(ramps.ramps))]
        out.append(_head(model, base, hs[-1]))
    return out


def _n_layers(model: Any) -> int:
    n = model.config.num_hidden_layers
    if n < 2:
        raise ValueError(f"early exit needs a model with at least 2 layers (this one has {n})")
    return n


def _fit(ramps: nn.Module, n_items: int, batch_loss: Any, *, n_ramps: int, epochs: float, lr: float,
         batch_size: int, seed: int, progress: bool) -> dict[str, Any]:
    """Adam on the off-ramps alone over ``n_items`` shuffled items; ``batch_loss(idx)`` sums the
    ramps' losses. Returns the steps, seconds and the mean per-ramp loss at the start and the end."""
    opt = torch.optim.AdamW(ramps.parameters(), lr=lr)
    total = n_steps(n_items, batch_size, epochs)
    losses: list[float] = []
    t0 = time.perf_counter()
    bar = tqdm(total=total, desc="off-ramps", unit="step", disable=not progress)
    for idx in shuffled_batches(n_items, batch_size, total, seed):
        loss = batch_loss(idx)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item() / max(1, n_ramps))
        bar.update(1)
    bar.close()
    ramps.eval()
    k = max(1, min(20, len(losses) // 3))
    return {"steps": total, "seconds": time.perf_counter() - t0, "lr": lr,
            "loss_first": float(np.mean(losses[:k])), "loss_last": float(np.mean(losses[-k:]))}


def train_ramps(model: Any, tokenizer: Any, *, texts: Sequence[str], labels: Sequence[int], max_length: int,
                truncation: str = "head", epochs: float = 1.0, lr: float = 1e-3, batch_size: int = 16,
                pooling: str = "mean", seed: int = 0, progress: bool = True) -> tuple[OffRamps, dict[str, Any]]:
    """Off-ramps trained on the frozen fine-tuned ``model`` (cross-entropy summed over layers)."""
    base = _check_bert(model)
    model.eval()
    torch.manual_seed(seed)
    n = _n_layers(model)
    ramps = OffRamps(n, model.config.hidden_size, model.config.num_labels, pooling)
    names = input_names(tokenizer)
    encoded = [encode_ids(tokenizer, t, max_length=max_length, truncation=truncation) for t in texts]

    def batch_loss(idx: np.ndarray) -> torch.Tensor:
        enc = encode_batch([encoded[i] for i in idx], pad_id=tokenizer.pad_token_id, names=names)
        feed = {k: torch.from_numpy(v) for k, v in enc.items()}
        with torch.no_grad():
            hs = base(**feed, output_hidden_states=True).hidden_states
        y = torch.as_tensor([labels[i] for i in idx])
        mask = feed["attention_mask"]
        return sum((nn.functional.cross_entropy(ramps(i, hs[i + 1], mask), y) for i in range(n - 1)),
                   torch.zeros(()))

    stats = _fit(ramps, len(encoded), batch_loss, n_ramps=n - 1, epochs=epochs, lr=lr, batch_size=batch_size,
                 seed=seed, progress=progress)
    return ramps, {**stats, "pooling": pooling}


def span_loss(logits: torch.Tensor, start: torch.Tensor, end: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of the start and end cross-entropies of ``(batch, 2, sequence)`` logits over
    each window's real tokens (padding is never a candidate)."""
    logits = logits.masked_fill(~mask.bool()[:, None, :], torch.finfo(logits.dtype).min)
    return (nn.functional.cross_entropy(logits[:, 0], start) + nn.functional.cross_entropy(logits[:, 1], end)) / 2


def train_span_ramps(model: Any, tokenizer: Any, *, items: Sequence[Any], max_length: int, doc_stride: int = 128,
                     epochs: float = 1.0, lr: float = 1e-3, batch_size: int = 16, seed: int = 0,
                     progress: bool = True) -> tuple[SpanRamps, dict[str, Any]]:
    """Span off-ramps trained on the frozen fine-tuned reader ``model`` over the doc-stride
    windows of the training questions ``items`` (as the reader was trained: a window without
    the answer points at [CLS]); the per-layer start/end cross-entropies are summed."""
    from paretobert.qa import prepare_features

    base = _check_bert(model)
    model.eval()
    torch.manual_seed(seed)
    n = _n_layers(model)
    ramps = SpanRamps(n, model.config.hidden_size)
    feats = prepare_features(tokenizer, items, max_length=max_length, doc_stride=doc_stride, windows="all",
                             labels=True)
    assert feats.start_positions is not None and feats.end_positions is not None

    def batch_loss(idx: np.ndarray) -> torch.Tensor:
        rows = np.sort(idx)
        feed = {k: torch.from_numpy(v) for k, v in feats.inputs(rows).items()}
        width = int(feed["attention_mask"].sum(1).max())  # windows are padded to max_length: cut to the longest
        feed = {k: v[:, :width] for k, v in feed.items()}
        with torch.no_grad():
            hs = base(**feed, output_hidden_states=True).hidden_states
        start = torch.from_numpy(feats.start_positions[rows])
        end = torch.from_numpy(feats.end_positions[rows])
        mask = feed["attention_mask"]
        return sum((span_loss(ramps(i, hs[i + 1], mask), start, end, mask) for i in range(n - 1)), torch.zeros(()))

    stats = _fit(ramps, len(feats), batch_loss, n_ramps=n - 1, epochs=epochs, lr=lr, batch_size=batch_size,
                 seed=seed, progress=progress)
    return ramps, {**stats, "pooling": ramps.pooling, "n_windows": len(feats), "max_length": max_length,
                   "doc_stride": doc_stride}


class _First(nn.Module):
    def __init__(self, model: Any, ramps: Ramps, names: list[str]) -> None:
        super().__init__()
        self.base, self.ramps, self.names = _check_bert(model), ramps, names

    def forward(self, *inputs: torch.Tensor):
        feed = dict(zip(self.names, inputs, strict=True))
        h = self.base.embeddings(input_ids=feed["input_ids"], token_type_ids=feed.get("token_type_ids"))
        h = _layer(self.base.encoder.layer[0], h, _ext_mask(feed["attention_mask"], h.dtype))
        return h, self.ramps(0, h, feed["attention_mask"])


class _Middle(nn.Module):
    def __init__(self, model: Any, ramps: Ramps | None, i: int) -> None:
        super().__init__()
        self.model, self.base, self.ramps, self.i = model, _check_bert(model), ramps, i

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor):
        h = _layer(self.base.encoder.layer[self.i], hidden, _ext_mask(attention_mask, hidden.dtype))
        if self.ramps is None:  # the last segment: the model's own head
            return h, _head(self.model, self.base, h)
        return h, self.ramps(self.i, h, attention_mask)


def export_segments(model: Any, ramps: Ramps, tokenizer: Any, out_dir: Path, *, opset: int = 17) -> list[str]:
    """One ONNX file per layer (``segment_00.onnx`` ...); returns their file names. A reader's
    segments output ``logits`` of ``(batch, 2, sequence)``: start and end."""
    names = input_names(tokenizer)
    logit_axes = {0: "batch", 2: "sequence"} if isinstance(ramps, SpanRamps) else {0: "batch"}
    n = model.config.num_hidden_layers
    enc = tokenizer(["paretobert export sample", "a second, somewhat longer sample text"], padding=True,
                    return_tensors="pt")
    args = tuple(enc[k] for k in names)
    model.eval()
    files = []
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # wrappers in eval mode: the exporter restores the wrapper's mode, which would switch the
        # model to training (dropout on) afterwards
        first = _First(model, ramps, names).eval() if n > 1 else None
        if first is not None:
            hidden, _ = first(*args)
            f = out_dir / "segment_00.onnx"
            axes = {k: {0: "batch", 1: "sequence"} for k in names}
            axes.update(hidden={0: "batch", 1: "sequence"}, logits=logit_axes)
            torch.onnx.export(first, args, str(f), input_names=names, output_names=["hidden", "logits"],
                              dynamic_axes=axes, opset_version=opset, do_constant_folding=True, dynamo=False)
            files.append(f.name)
        else:
            raise ValueError("early exit needs a model with at least 2 layers")
        for i in range(1, n):
            seg = _Middle(model, ramps if i < n - 1 else None, i).eval()
            f = out_dir / f"segment_{i:02d}.onnx"
            axes = {"hidden_in": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
                    "hidden": {0: "batch", 1: "sequence"}, "logits": logit_axes}
            torch.onnx.export(seg, (hidden, enc["attention_mask"]), str(f), input_names=["hidden_in", "attention_mask"],
                              output_names=["hidden", "logits"], dynamic_axes=axes, opset_version=opset,
                              do_constant_folding=True, dynamo=False)
            hidden, _ = seg(hidden, enc["attention_mask"])
            files.append(f.name)
    return files
