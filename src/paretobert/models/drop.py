"""Layer dropping before fine-tuning (Sajjad et al., "Poor Man's BERT", 2020).

:func:`kept_layers` is pure: which encoder layers (0-based, bottom = 0) survive a strategy.
:func:`layer_similarity` measures, on sample texts, how little each layer changes [CLS]
(cosine similarity of its input and output), which the ``contribution`` strategy uses;
:func:`drop_layers` removes the others from a BERT-family model in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["DROP_STRATEGIES", "drop_layers", "encoder_layers", "kept_layers", "layer_similarity"]

DROP_STRATEGIES = ("none", "top", "bottom", "even", "odd", "symmetric", "contribution")


def kept_layers(strategy: str, n_layers: int, keep: int, *,
                similarity: Sequence[float] | None = None) -> list[int]:
    """The 0-based indices of the ``keep`` layers that remain, in order.

    top: drop the last layers; bottom: drop the first; even / odd: drop the layers with an
    even / odd 1-based number, from the top down (12 layers, keep 8, even drops 12, 10, 8, 6);
    symmetric: drop the middle, keeping the bottom and top halves; contribution: drop the
    layers whose [CLS] output is most similar to their input (``similarity`` per layer).
    """
    if strategy not in DROP_STRATEGIES:
        raise ValueError(f"unknown drop strategy {strategy!r}; accepted: {' | '.join(DROP_STRATEGIES)}")
    if not 1 <= keep <= n_layers:
        raise ValueError(f"drop.keep={keep}: need 1..{n_layers} (the model's layers)")
    layers = list(range(n_layers))
    n_drop = n_layers - keep
    if strategy == "none" or n_drop == 0:
        if strategy == "none" and keep != n_layers:
            raise ValueError(f"drop.strategy=none keeps all {n_layers} layers, not drop.keep={keep}")
        return layers
    if strategy == "top":
        return layers[:keep]
    if strategy == "bottom":
        return layers[n_drop:]
    if strategy in ("even", "odd"):
        parity = 0 if strategy == "even" else 1
        candidates = [i for i in reversed(layers) if (i + 1) % 2 == parity]
        if n_drop > len(candidates):
            raise ValueError(f"drop.strategy={strategy} can drop at most {len(candidates)} of {n_layers} "
                             f"layers (drop.keep >= {n_layers - len(candidates)})")
        dropped = set(candidates[:n_drop])
        return [i for i in layers if i not in dropped]
    if strategy == "symmetric":
        lo = (n_layers - n_drop) // 2 + (n_layers - n_drop) % 2  # the bottom keeps the odd one
        return layers[:lo] + layers[lo + n_drop:]
    # contribution
    if similarity is None or len(similarity) != n_layers:
        raise ValueError(f"drop.strategy=contribution needs one similarity per layer ({n_layers})")
    order = sorted(layers, key=lambda i: (-similarity[i], -i))  # most redundant first; ties: higher layer
    dropped = set(order[:n_drop])
    return [i for i in layers if i not in dropped]


def _stack(model: Any) -> Any:
    """The module holding the transformer layers as ``.layer``: the encoder (BERT, MPNet,
    RoBERTa, ELECTRA), DistilBERT's transformer."""
    base = getattr(model, model.base_model_prefix, model)
    for name in ("encoder", "transformer"):
        holder = getattr(base, name, None)
        if holder is not None and hasattr(holder, "layer"):
            return holder
    raise ValueError(f"no stack of transformer layers found in a {model.config.model_type} model")


def encoder_layers(model: Any) -> Any:
    """The ``nn.ModuleList`` of transformer layers of an encoder model (any head)."""
    return _stack(model).layer


def layer_similarity(model: Any, tokenizer: Any, texts: Sequence[str], *, max_length: int = 128) -> list[float]:
    """Per layer, the mean cosine similarity of [CLS] at its input and its output on ``texts``."""
    import torch

    base = getattr(model, model.base_model_prefix, model)
    n = len(encoder_layers(model))
    sums = torch.zeros(n)
    base.eval()
    with torch.no_grad():
        for text in texts:
            enc = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")
            hs = base(**enc, output_hidden_states=True).hidden_states  # n + 1 tensors
            for i in range(n):
                sums[i] += torch.nn.functional.cosine_similarity(hs[i][0, 0], hs[i + 1][0, 0], dim=0)
    return (sums / max(1, len(texts))).tolist()


def drop_layers(model: Any, kept: Sequence[int]) -> None:
    """Keep only the layers ``kept`` (in that order) and update the config to match."""
    import torch

    stack = _stack(model)
    stack.layer = torch.nn.ModuleList([stack.layer[i] for i in kept])
    base = getattr(model, model.base_model_prefix, model)
    model.config.num_hidden_layers = len(kept)
    if hasattr(base, "config") and base.config is not model.config:
        base.config.num_hidden_layers = len(kept)
