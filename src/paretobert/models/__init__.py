"""Model zoo (weight sources, tokenizers, architectures)."""

from paretobert.models.zoo import (
    ModelError,
    Source,
    build_model,
    hub_reachable,
    load_tokenizer,
    model_dir,
    resolve_source,
    train_bpe,
    train_wordpiece,
)

__all__ = [
    "ModelError",
    "Source",
    "build_model",
    "hub_reachable",
    "load_tokenizer",
    "model_dir",
    "resolve_source",
    "train_bpe",
    "train_wordpiece",
]
