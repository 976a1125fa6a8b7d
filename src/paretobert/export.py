"""torch -> ONNX (legacy TorchScript exporter, opset 17) and ONNX Runtime fusion.

The legacy exporter with eager attention produces the graph shape that
``onnxruntime.transformers`` recognises (Attention, SkipLayerNormalization, BiasGelu), which
is both the fastest fp32 graph and the one that quantizes best; the dynamo exporter fuses less.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["check_onnx", "export_onnx", "fuse_onnx", "input_names"]

log = logging.getLogger(__name__)


class _Outputs(torch.nn.Module):
    """Positional inputs -> the named outputs, so the exporter sees a plain function of named
    tensors (``logits`` for a classifier; ``start_logits, end_logits`` for a QA reader)."""

    def __init__(self, model: Any, names: list[str], outputs: tuple[str, ...]) -> None:
        super().__init__()
        self.model, self.names, self.outputs = model, names, outputs

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        out = self.model(**dict(zip(self.names, inputs, strict=True)))
        got = tuple(getattr(out, o) for o in self.outputs)
        return got[0] if len(got) == 1 else got


def input_names(tokenizer: Any) -> list[str]:
    """The tensors the model takes, in a fixed order."""
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer.model_input_names]
    return names


def export_onnx(model: Any, tokenizer: Any, path: Path, *, opset: int = 17,
                outputs: tuple[str, ...] = ("logits",)) -> list[str]:
    """Export ``model`` to ``path`` with dynamic batch and sequence axes and the named
    ``outputs`` (a classifier's ``logits``; a QA reader's ``start_logits, end_logits``, whose
    sequence axis is dynamic too); returns input names."""
    names = input_names(tokenizer)
    enc = tokenizer(["paretobert export sample", "a second, somewhat longer sample text"],
                    padding=True, return_tensors="pt")
    args = tuple(enc[n] for n in names)
    model.eval()
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    for o in outputs:
        axes[o] = {0: "batch"} if o == "logits" else {0: "batch", 1: "sequence"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Outputs(model, names, tuple(outputs)).eval(), args, str(path), input_names=names,
            output_names=list(outputs),
            dynamic_axes=axes, opset_version=opset, do_constant_folding=True, dynamo=False,
        )
    return names


def fuse_onnx(src: Path, dst: Path, *, num_heads: int, hidden_size: int) -> dict[str, int]:
    """Fuse transformer subgraphs with ``onnxruntime.transformers``; returns fused-op counts."""
    from onnxruntime.transformers.optimizer import optimize_model

    opt = optimize_model(str(src), model_type="bert", num_heads=num_heads, hidden_size=hidden_size,
                         opt_level=0, use_gpu=False)
    opt.save_model_to_file(str(dst))
    stats = opt.get_fused_operator_statistics()
    return {k: int(v) for k, v in stats.items() if v}


def check_onnx(onnx_path: Path, model: Any, tokenizer: Any, texts: list[str] | list[tuple[str, str]], *,
               max_length: int, outputs: tuple[str, ...] = ("logits",)) -> float:
    """Max abs difference of the named ``outputs`` between ONNX Runtime and torch on
    ``texts`` (batch 1; a (question, context) pair is encoded as a QA reader reads it)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    worst = 0.0
    model.eval()
    for text in texts:
        if isinstance(text, tuple):
            enc = tokenizer(*text, truncation="only_second", max_length=max_length, return_tensors="np")
        else:
            enc = tokenizer(text, truncation=True, max_length=max_length, return_tensors="np")
        feed = {n: enc[n].astype(np.int64) for n in names}
        got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feed), strict=True))
        with torch.no_grad():
            out = model(**{n: torch.from_numpy(v) for n, v in feed.items()})
        for o in outputs:
            worst = max(worst, float(np.abs(got[o] - getattr(out, o).numpy()).max()))
    return worst
