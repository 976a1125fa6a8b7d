"""Arithmetic of a BERT-style encoder: how many floating-point operations one inference takes.
Pure functions: numbers in, numbers out."""

from __future__ import annotations

__all__ = ["encoder_flops", "precision_class"]


def encoder_flops(*, layers: float, hidden: int, intermediate: int, tokens: float, labels: int = 2) -> float:
    """FLOPs (2 x multiply-adds) of one batch-1 forward pass at ``tokens`` tokens: per layer the
    Q, K, V and output projections (4 h^2 n), the feed-forward (2 h i n) and attention's scores
    and weighted sum (2 n^2 h); then the pooler (h^2) and classifier (h x labels). Embedding
    look-ups, softmax, LayerNorm and GELU are left out (a few percent of the total)."""
    if min(hidden, intermediate) <= 0 or tokens <= 0 or layers < 0:
        raise ValueError(f"need positive sizes (hidden={hidden}, intermediate={intermediate}, tokens={tokens})")
    h, n = float(hidden), float(tokens)
    per_layer = 4 * h * h * n + 2 * h * intermediate * n + 2 * n * n * h
    return 2.0 * (layers * per_layer + h * h + h * labels)


def precision_class(precision: str) -> str:
    """The GEMM a precision runs on: fp32, bf16 or int8 (dynamic and static alike)."""
    return "int8" if precision.startswith("int8") else precision
