"""Extractive QA, the task's pure parts: scoring (exact match and F1 with SQuAD's answer
normalisation, max over the reference answers, bootstrap intervals over questions), turning
questions into model inputs (question + context windows with offsets), and turning start/end
logits back into answer text. No torch, no runtime: the stages call these.

Two ways to read a context longer than ``max_length`` tokens:

- ``windows="all"``: overlapping windows ``doc_stride`` tokens apart, the best span over all
  of them (training; the usual SQuAD evaluation);
- ``windows="first"``: the first window only, as a deployed reader at batch 1 and ``seq_len``
  tokens sees it (S1's length axis): a question whose answer lies past the window is a miss.
"""

from __future__ import annotations

import hashlib
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from paretobert.data.squad import QAItem
from paretobert.qa_spans import best_span
from paretobert.stats import bootstrap_interval

__all__ = ["Features", "best_span", "exact_match", "f1", "normalize_answer", "per_question", "postprocess", "prepare_features", "score"]

_PUNCT = set(string.punctuation)


def normalize_answer(text: str, *, language: str = "en") -> str:
    """SQuAD v1.1's normalisation (lower case, no punctuation, no articles a/an/the, single
    spaces); ``language="ja"``: NFKC, lower case, no punctuation or whitespace (Japanese is
    scored per character)."""
    if language == "ja":
        text = unicodedata.normalize("NFKC", text).lower()
        return "".join(c for c in text if not c.isspace() and not unicodedata.category(c).startswith("P")
                       and c not in _PUNCT)
    text = "".join(c for c in text.lower() if c not in _PUNCT)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _tokens(text: str, language: str) -> list[str]:
    norm = normalize_answer(text, language=language)
    return list(norm) if language == "ja" else norm.split()


def exact_match(prediction: str, references: Sequence[str], *, language: str = "en") -> float:
    """1.0 when the normalised prediction equals a normalised reference, else 0.0."""
    pred = normalize_answer(prediction, language=language)
    return float(any(pred == normalize_answer(r, language=language) for r in references))


def _f1_one(prediction: str, reference: str, language: str) -> float:
    p, r = _tokens(prediction, language), _tokens(reference, language)
    if not p or not r:
        return float(p == r)
    common = sum((Counter(p) & Counter(r)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


def f1(prediction: str, references: Sequence[str], *, language: str = "en") -> float:
    """Token-overlap F1 (characters for ``ja``), the max over the references."""
    return max((_f1_one(prediction, r, language) for r in references), default=0.0)


def per_question(predictions: Mapping[str, str], items: Sequence[QAItem], *,
                 language: str = "en") -> tuple[np.ndarray, np.ndarray]:
    """Each question's exact match and F1 (0-1, in ``items``' order; no prediction scores 0)."""
    em = np.array([exact_match(predictions.get(i.id, ""), i.answers, language=language) for i in items])
    f = np.array([f1(predictions.get(i.id, ""), i.answers, language=language) for i in items])
    return em, f


def score(predictions: Mapping[str, str], items: Sequence[QAItem], *, language: str = "en") -> dict[str, Any]:
    """Exact match and F1 in percent over ``items`` (a question without a prediction scores 0),
    with 95% percentile-bootstrap intervals over the questions."""
    if not items:
        raise ValueError("no questions to score")
    em, f = per_question(predictions, items, language=language)
    out: dict[str, Any] = {"n_questions": len(items)}
    for name, v in (("exact_match", em), ("f1", f)):
        lo, hi = bootstrap_interval(v, stat=np.mean)
        out[name], out[f"{name}_ci_lo"], out[f"{name}_ci_hi"] = 100 * v.mean(), 100 * lo, 100 * hi
    out["missing"] = sum(1 for i in items if i.id not in predictions)
    return out


@dataclass
class Features:
    """Model inputs of a list of questions: one row per window. ``item`` is each row's question
    index, ``offsets`` each token's character span in the context (None outside it);
    ``start_positions`` / ``end_positions`` the answer's token span (0, 0 when the window
    does not hold the answer: the [CLS] token), with ``labels=True``."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray | None
    item: list[int]
    offsets: list[list[tuple[int, int] | None]]
    start_positions: np.ndarray | None = None
    end_positions: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.item)

    def inputs(self, rows: slice | Sequence[int] | None = None) -> dict[str, np.ndarray]:
        """The arrays a model takes (int64), for ``rows`` (all by default)."""
        sel = slice(None) if rows is None else rows
        out = {"input_ids": self.input_ids[sel], "attention_mask": self.attention_mask[sel]}
        if self.token_type_ids is not None:
            out["token_type_ids"] = self.token_type_ids[sel]
        return out

    def fingerprint(self) -> str:
        """Content hash of the windows' model inputs (token ids, masks, token types, in
        :meth:`inputs`' order): their shapes and tokens carry the max length and the stride."""
        h = hashlib.sha256()
        for a in self.inputs().values():
            h.update(str(a.shape).encode())
            h.update(a.astype("int64").tobytes())
        return h.hexdigest()[:32]


def prepare_features(tokenizer: Any, items: Sequence[QAItem], *, max_length: int, doc_stride: int = 128,
                     windows: str = "all", labels: bool = False) -> Features:
    """Tokenise ``question [SEP] context`` pairs into windows of ``max_length`` tokens, each
    padded to ``max_length`` (a fast Hugging Face tokenizer: offsets are needed)."""
    if windows not in ("all", "first"):
        raise ValueError(f"windows={windows!r}: use 'all' or 'first'")
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("extractive QA needs a fast tokenizer (character offsets)")
    stride = min(doc_stride, max_length // 2)
    enc = tokenizer([i.question for i in items], [i.context for i in items], truncation="only_second",
                    max_length=max_length, stride=stride, return_overflowing_tokens=windows == "all",
                    return_offsets_mapping=True, padding="max_length")
    rows = range(len(enc["input_ids"]))
    item = [int(x) for x in enc["overflow_to_sample_mapping"]] if windows == "all" else list(rows)
    ids = np.asarray(enc["input_ids"], dtype=np.int64)
    mask = np.asarray(enc["attention_mask"], dtype=np.int64)
    types = np.asarray(enc["token_type_ids"], dtype=np.int64) if "token_type_ids" in enc else None
    offsets = []
    for r in rows:
        seq = enc.sequence_ids(r)
        offsets.append([tuple(o) if seq[t] == 1 else None for t, o in enumerate(enc["offset_mapping"][r])])
    feats = Features(ids, mask, types, item, offsets)
    if labels:
        starts, ends = np.zeros(len(item), dtype=np.int64), np.zeros(len(item), dtype=np.int64)
        for r, (i, offs) in enumerate(zip(item, offsets, strict=True)):
            span = items[i].answer_span()
            if span is None:
                continue
            inside = [t for t, o in enumerate(offs) if o is not None]
            if not inside or offs[inside[0]][0] > span[0] or offs[inside[-1]][1] < span[1]:
                continue  # the answer is not (wholly) in this window: point at [CLS]
            starts[r] = max(t for t in inside if offs[t][0] <= span[0])
            ends[r] = min(t for t in inside if offs[t][1] >= span[1])
        feats.start_positions, feats.end_positions = starts, ends
    return feats


def postprocess(items: Sequence[QAItem], features: Features, start_logits: np.ndarray, end_logits: np.ndarray,
                *, n_best: int = 20, max_answer_length: int = 30) -> dict[str, str]:
    """Each question's answer: the context span (over all its windows) with the highest
    start + end logit (:func:`best_span`); "" when no window offers a span of the context."""
    start_logits, end_logits = np.asarray(start_logits), np.asarray(end_logits)
    best: dict[int, tuple[float, str]] = {}
    for r, i in enumerate(features.item):
        span = best_span(start_logits[r], end_logits[r], features.offsets[r], n_best=n_best,
                         max_answer_length=max_answer_length)
        if span is not None and (i not in best or span[0] > best[i][0]):
            best[i] = (span[0], items[i].context[span[1]:span[2]])
    return {items[i].id: best[i][1] if i in best else "" for i in range(len(items))}
