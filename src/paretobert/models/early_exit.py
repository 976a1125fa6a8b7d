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
from paretobert.runtimes.segmented import EarlyExitRunner, entropy
from paretobert.train import n_steps, shuffled_batches

__all__ = [
    "EarlyExitRunner",
    "OffRamps",
    "entropy",
    "export_segments",
    "layer_logits",
    "train_ramps",
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


def layer_logits(model: Any, ramps: OffRamps, enc: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """The logits after every layer: off-ramps, then the model's own classifier (torch)."""
    base = _check_bert(model)
    with torch.no_grad():
        hs = base(**enc, output_hidden_states=True).hidden_states
        out = [ramps(i, hs[i + 1], enc["attention_mask"]) for i in range(len(ramps.ramps))]
        out.append(model.classifier(base.pooler(hs[-1])))
    return out


def train_ramps(model: Any, tokenizer: Any, *, texts: Sequence[str], labels: Sequence[int], max_length: int,
                truncation: str = "head", epochs: float = 1.0, lr: float = 1e-3, batch_size: int = 16,
                pooling: str = "mean", seed: int = 0, progress: bool = True) -> tuple[OffRamps, dict[str, Any]]:
    """Off-ramps trained on the frozen fine-tuned ``model`` (cross-entropy summed over layers)."""
    base = _check_bert(model)
    model.eval()
    torch.manual_seed(seed)
    n = model.config.num_hidden_layers
    if n < 2:
        raise ValueError(f"early exit needs a model with at least 2 layers (this one has {n})")
    ramps = OffRamps(n, model.config.hidden_size, model.config.num_labels, pooling)
    opt = torch.optim.AdamW(ramps.parameters(), lr=lr)
    names = input_names(tokenizer)
    encoded = [encode_ids(tokenizer, t, max_length=max_length, truncation=truncation) for t in texts]
    total = n_steps(len(texts), batch_size, epochs)
    losses: list[float] = []
    t0 = time.perf_counter()
    bar = tqdm(total=total, desc="off-ramps", unit="step", disable=not progress)
    for idx in shuffled_batches(len(encoded), batch_size, total, seed):
        enc = encode_batch([encoded[i] for i in idx], pad_id=tokenizer.pad_token_id, names=names)
        feed = {k: torch.from_numpy(v) for k, v in enc.items()}
        with torch.no_grad():
            hs = base(**feed, output_hidden_states=True).hidden_states
        y = torch.as_tensor([labels[i] for i in idx])
        mask = feed["attention_mask"]
        loss = sum(nn.functional.cross_entropy(ramps(i, hs[i + 1], mask), y) for i in range(n - 1))
        assert isinstance(loss, torch.Tensor)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item() / max(1, n - 1))
        bar.update(1)
    bar.close()
    ramps.eval()
    k = max(1, min(20, len(losses) // 3))
    return ramps, {"steps": total, "seconds": time.perf_counter() - t0, "lr": lr, "pooling": pooling,
                   "loss_first": float(np.mean(losses[:k])), "loss_last": float(np.mean(losses[-k:]))}


class _First(nn.Module):
    def __init__(self, model: Any, ramps: OffRamps, names: list[str]) -> None:
        super().__init__()
        self.base, self.ramps, self.names = _check_bert(model), ramps, names

    def forward(self, *inputs: torch.Tensor):
        feed = dict(zip(self.names, inputs, strict=True))
        h = self.base.embeddings(input_ids=feed["input_ids"], token_type_ids=feed.get("token_type_ids"))
        h = _layer(self.base.encoder.layer[0], h, _ext_mask(feed["attention_mask"], h.dtype))
        return h, self.ramps(0, h, feed["attention_mask"])


class _Middle(nn.Module):
    def __init__(self, model: Any, ramps: OffRamps | None, i: int) -> None:
        super().__init__()
        self.model, self.base, self.ramps, self.i = model, _check_bert(model), ramps, i

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor):
        h = _layer(self.base.encoder.layer[self.i], hidden, _ext_mask(attention_mask, hidden.dtype))
        if self.ramps is None:  # the last segment: the model's own head
            return h, self.model.classifier(self.base.pooler(h))
        return h, self.ramps(self.i, h, attention_mask)


def export_segments(model: Any, ramps: OffRamps, tokenizer: Any, out_dir: Path, *, opset: int = 17) -> list[str]:
    """One ONNX file per layer (``segment_00.onnx`` ...); returns their file names."""
    names = input_names(tokenizer)
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
            axes.update(hidden={0: "batch", 1: "sequence"}, logits={0: "batch"})
            torch.onnx.export(first, args, str(f), input_names=names, output_names=["hidden", "logits"],
                              dynamic_axes=axes, opset_version=opset, do_constant_folding=True, dynamo=False)
            files.append(f.name)
        else:
            raise ValueError("early exit needs a model with at least 2 layers")
        for i in range(1, n):
            seg = _Middle(model, ramps if i < n - 1 else None, i).eval()
            f = out_dir / f"segment_{i:02d}.onnx"
            axes = {"hidden_in": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
                    "hidden": {0: "batch", 1: "sequence"}, "logits": {0: "batch"}}
            torch.onnx.export(seg, (hidden, enc["attention_mask"]), str(f), input_names=["hidden_in", "attention_mask"],
                              output_names=["hidden", "logits"], dynamic_axes=axes, opset_version=opset,
                              do_constant_folding=True, dynamo=False)
            hidden, _ = seg(hidden, enc["attention_mask"])
            files.append(f.name)
    return files
