"""Text -> model inputs with a truncation strategy, the same for training, scoring and timing.

``head`` keeps the first ``max_length - 2`` tokens (the usual truncation); ``head+tail``
keeps the first half and the last half of that budget (Sun et al. 2019, "How to fine-tune
BERT for text classification"), which helps documents whose ending is telling, such as news
articles with a closing byline or related-article links. [CLS] and [SEP] are always kept.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["TRUNCATIONS", "encode_batch", "encode_ids", "encode_text", "text_windows", "truncate_chars", "truncate_ids",
           "windowed"]

TRUNCATIONS = ("head", "head+tail")


def truncate_ids(ids: Sequence[int], budget: int, strategy: str) -> list[int]:
    """At most ``budget`` items of ``ids``: the head, or head and tail halves (head gets the odd one)."""
    ids = list(ids)
    if budget <= 0:
        return []
    if len(ids) <= budget:
        return ids
    if strategy == "head":
        return ids[:budget]
    if strategy == "head+tail":
        head = budget - budget // 2
        tail = budget - head
        return ids[:head] + (ids[len(ids) - tail :] if tail else [])
    raise ValueError(f"unknown truncation {strategy!r}; accepted: {' | '.join(TRUNCATIONS)}")


def truncate_chars(text: str, budget: int, strategy: str) -> str:
    """The character-level counterpart of :func:`truncate_ids` (for character models)."""
    return "".join(truncate_ids(list(text), budget, strategy)) if len(text) > budget else text


def encode_ids(tokenizer: Any, text: str, *, max_length: int, truncation: str = "head") -> list[int]:
    """Token ids of ``text`` with [CLS]/[SEP] (or the tokenizer's own), at most ``max_length``."""
    if truncation == "head":
        return list(tokenizer(text, truncation=True, max_length=max_length)["input_ids"])
    n_special = tokenizer.num_special_tokens_to_add(pair=False)
    body = tokenizer(text, add_special_tokens=False)["input_ids"]
    body = truncate_ids(body, max_length - n_special, truncation)
    return list(tokenizer.build_inputs_with_special_tokens(body))


def encode_text(tokenizer: Any, text: str, *, max_length: int, names: Sequence[str],
                truncation: str = "head") -> dict[str, np.ndarray]:
    """A batch-1 feed ``{name: int64 array of shape (1, n)}`` for ONNX Runtime."""
    ids = encode_ids(tokenizer, text, max_length=max_length, truncation=truncation)
    return encode_batch([ids], pad_id=0, names=names)  # one row: nothing is padded


def encode_batch(batch: Sequence[Sequence[int]], *, pad_id: int, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Right-pad pre-encoded id lists into one batch (the attention mask hides the padding)."""
    width = max(len(ids) for ids in batch)
    ids = np.full((len(batch), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(batch), width), dtype=np.int64)
    for i, row in enumerate(batch):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    out = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    return {n: out[n] for n in names}


def text_windows(tokenizer: Any, text: str, *, max_length: int, n: int) -> list[str]:
    """``text`` itself, then the text of each following window of its tokens, at most ``n`` in
    all. ``b = max_length`` less the special tokens; window 0 is what head truncation keeps
    (tokens ``[0, b)``); window 1 starts at the word that head truncation cut or the first after
    it, and every window holds the whole words that fit in ``b`` tokens (a word longer than that
    is cut), so each encodes whole at ``max_length`` and the windows after the first follow each
    other with no token lost. Windows are cut on the tokenizer's character offsets (a fast
    tokenizer) and returned as text, so any tokenizer (a teacher's) can read them. A text that
    fits in one window is returned alone."""
    if n < 1:
        raise ValueError(f"n={n}: at least 1 window (the text itself)")
    if n == 1:
        return [text]
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"{type(tokenizer).__name__} gives no character offsets: train.windows > 1 needs a fast tokenizer")
    budget = max_length - tokenizer.num_special_tokens_to_add(pair=False)
    if budget < 1:
        raise ValueError(f"max_length={max_length} leaves no room for a token")
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets, words = enc["offset_mapping"], enc.word_ids()
    total = len(offsets)
    if total <= budget:
        return [text]
    starts = [i for i in range(total) if i == 0 or words[i] is None or words[i] != words[i - 1]]
    out = [text]

    def last_start(lo: int, hi: int, default: int) -> int:  # the last word start in (lo, hi]
        k = bisect.bisect_right(starts, hi) - 1
        return starts[k] if k >= 0 and starts[k] > lo else default

    begin = last_start(0, budget, budget)  # the word head truncation cut
    while len(out) < n and begin < total:
        end = min(begin + budget, total)
        if end < total:  # end on a word start, unless one word is longer than the window
            end = last_start(begin, end, end)
        piece = text[offsets[begin][0]:offsets[end - 1][1]].strip()
        if piece:
            out.append(piece)
        begin = end
    return out


def windowed(tokenizer: Any, texts: Sequence[str], labels: Sequence[int], *, max_length: int,
             n: int) -> tuple[list[str], list[int], list[int]]:
    """Every text's :func:`text_windows`, each with its text's label: (texts, labels, the index
    of the text each came from). ``n=1`` returns the texts unchanged."""
    out_t: list[str] = []
    out_l: list[int] = []
    origin: list[int] = []
    for i, (text, label) in enumerate(zip(texts, labels, strict=True)):
        pieces = text_windows(tokenizer, text, max_length=max_length, n=n)
        out_t += pieces
        out_l += [label] * len(pieces)
        origin += [i] * len(pieces)
    return out_t, out_l, origin
