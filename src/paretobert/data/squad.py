"""Extractive question answering data in SQuAD format (SQuAD v1.1, JSQuAD): read in place,
split BY ARTICLE (questions on one paragraph share their context, so a split by question
would leak it), never modified.

``load_qa_split(path)`` reads one file and holds out ``test_size`` of its articles (fixed
seed); ``load_qa_split(path, test_path=...)`` takes a train file and a test file as they are
(the official train-v1.1.json / dev-v1.1.json pair, or JSQuAD's valid / test).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from paretobert.data.base import DataError

__all__ = ["QAItem", "QASplit", "SQUAD_URLS", "load_qa_split", "read_squad", "resolve_squad", "split_articles"]

# the official SQuAD v1.1 pair (with network: dataset=squad without dataset.path)
SQUAD_URLS = {"train": "https://rajpurkar.github.io/SQuAD-explorer/dataset/train-v1.1.json",
              "dev": "https://rajpurkar.github.io/SQuAD-explorer/dataset/dev-v1.1.json"}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QAItem:
    """One question on one context, with its reference answers (text and character offset)."""

    id: str
    question: str
    context: str
    answers: tuple[str, ...]
    answer_starts: tuple[int, ...]
    article: str

    def answer_span(self) -> tuple[int, int] | None:
        """Character span ``[start, end)`` of the first reference answer that sits where its
        offset says, or None (such an item cannot teach a span)."""
        for text, start in zip(self.answers, self.answer_starts, strict=True):
            if text and self.context[start:start + len(text)] == text:
                return start, start + len(text)
        return None


@dataclass
class QASplit:
    """Train and test questions, and which articles each side holds."""

    train: list[QAItem]
    test: list[QAItem]
    source: str
    train_articles: list[str]
    test_articles: list[str]
    skipped: list[str] = field(default_factory=list)

    language: str = "en"  # ja: scored per character (JSQuAD)
    task = "qa"

    def fingerprint(self) -> str:
        """Content hash: any change in questions, contexts, answers or the split changes it."""
        h = hashlib.sha256()
        for part in (self.train, self.test):
            h.update(json.dumps([[i.id, i.question, i.context, i.answers, i.answer_starts] for i in part],
                                ensure_ascii=False).encode())
        return h.hexdigest()[:16]

    def stats(self) -> dict[str, object]:
        return {"source": self.source, "task": "qa", "n_train": len(self.train), "n_test": len(self.test),
                "train_articles": len(self.train_articles), "test_articles": len(self.test_articles),
                "skipped": self.skipped, "fingerprint": self.fingerprint()}


def _need(obj: object, key: str, kind: type, where: str, path: Path) -> object:
    if not isinstance(obj, dict) or key not in obj or not isinstance(obj[key], kind):
        raise DataError(f"{path}: not SQuAD format: {where} has no {kind.__name__} '{key}' "
                        "(expected data[*].paragraphs[*].{context, qas[*].{id, question, answers[*]}})")
    return obj[key]


def read_squad(path: str | Path) -> list[tuple[str, list[QAItem]]]:
    """The articles of a SQuAD-format JSON file, in file order: ``(title, questions)``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file (a SQuAD-format JSON, e.g. ../shared/data/squad/dev-v1.1.json)")
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not a UTF-8 JSON file ({e})") from None
    articles: list[tuple[str, list[QAItem]]] = []
    seen: set[str] = set()
    for a, art in enumerate(_need(doc, "data", list, "the file", path)):
        title = str(art.get("title", f"article-{a}")) if isinstance(art, dict) else f"article-{a}"
        if title in seen:
            title = f"{title}#{a}"
        seen.add(title)
        items = []
        for p, par in enumerate(_need(art, "paragraphs", list, f"data[{a}]", path)):
            context = _need(par, "context", str, f"data[{a}].paragraphs[{p}]", path)
            for q, qa in enumerate(_need(par, "qas", list, f"data[{a}].paragraphs[{p}]", path)):
                where = f"data[{a}].paragraphs[{p}].qas[{q}]"
                answers = _need(qa, "answers", list, where, path)
                texts = tuple(str(_need(x, "text", str, f"{where}.answers[*]", path)) for x in answers)
                starts = tuple(int(_need(x, "answer_start", int, f"{where}.answers[*]", path)) for x in answers)
                items.append(QAItem(id=str(qa.get("id", f"{a}-{p}-{q}")),
                                    question=str(_need(qa, "question", str, where, path)),
                                    context=context, answers=texts, answer_starts=starts, article=title))
        if items:
            articles.append((title, items))
    if not articles:
        raise DataError(f"{path}: no questions in the file")
    return articles


def split_articles(titles: list[str], test_size: float, seed: int) -> tuple[list[str], list[str]]:
    """Train and test article titles: ``test_size`` of the articles (at least one on each
    side) held out, drawn with ``seed``."""
    if len(titles) < 2:
        raise DataError(f"need at least 2 articles to split by article, got {len(titles)}")
    order = sorted(titles)
    random.Random(seed).shuffle(order)
    n_test = min(max(1, round(len(order) * test_size)), len(order) - 1)
    test = set(order[:n_test])
    return [t for t in titles if t not in test], [t for t in titles if t in test]


def load_qa_split(path: str | Path, *, test_path: str | Path | None = None, test_size: float = 0.25,
                  seed: int = 0, max_train_articles: int | None = None) -> QASplit:
    """The train/test questions of ``path`` split by article (or ``path`` / ``test_path`` as
    given); ``max_train_articles`` keeps that many train articles (the first of a seeded
    shuffle: a learning curve over the amount of training data). Train questions whose
    answers do not sit at their offsets are skipped (listed in ``skipped``); test questions
    are all kept (every reference answer counts when scoring)."""
    articles = read_squad(path)
    if test_path is not None:
        test_articles = read_squad(test_path)
        train = articles
        source = f"{path} + {test_path}"
    else:
        tr, te = split_articles([t for t, _ in articles], test_size, seed)
        keep_tr, keep_te = set(tr), set(te)
        train = [(t, q) for t, q in articles if t in keep_tr]
        test_articles = [(t, q) for t, q in articles if t in keep_te]
        source = f"{path} (split by article, test_size={test_size}, seed={seed})"
    if max_train_articles is not None:
        if max_train_articles < 1:
            raise DataError(f"max_train_articles={max_train_articles}: need at least 1")
        order = list(range(len(train)))
        random.Random(seed + 1).shuffle(order)
        keep = set(order[:max_train_articles])
        train = [a for i, a in enumerate(train) if i in keep]
    skipped, train_items = [], []
    for _, qs in train:
        for item in qs:
            if item.answer_span() is None:
                skipped.append(f"{item.id}: no reference answer at its offset")
            else:
                train_items.append(item)
    if skipped:
        log.warning("%s: skipped %d train question(s) whose answer is not at its offset", path, len(skipped))
    return QASplit(train=train_items, test=[i for _, qs in test_articles for i in qs], source=source,
                   train_articles=[t for t, _ in train], test_articles=[t for t, _ in test_articles],
                   skipped=skipped)


def resolve_squad(name: str, path: str | None, test_path: str | None, *, cache_dir: Path,
                  allow_network: bool) -> tuple[Path, Path | None]:
    """(file, test file or None) of a QA dataset: ``path`` as given, else (``squad`` with
    network) a cached download of the official train / dev pair."""
    if path:
        return Path(path).expanduser(), Path(test_path).expanduser() if test_path else None
    if name != "squad":
        raise DataError(f"dataset={name} needs dataset.path=FILE (a SQuAD-format JSON, e.g. "
                        "../shared/data/jsquad/jsquad-valid-v1.3.json)")
    files = {k: Path(cache_dir) / "data" / "squad" / Path(u).name for k, u in SQUAD_URLS.items()}
    for k, target in files.items():
        if target.exists():
            continue
        if not allow_network:
            raise DataError("dataset=squad offline needs dataset.path=FILE (a SQuAD-format JSON, e.g. "
                            "../shared/data/squad/dev-v1.1.json: split by article)")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".part")
        log.info("downloading %s", SQUAD_URLS[k])
        try:
            with urllib.request.urlopen(SQUAD_URLS[k], timeout=30) as r, open(tmp, "wb") as f:
                while chunk := r.read(1 << 20):
                    f.write(chunk)
            read_squad(tmp)  # a SQuAD-format file, or DataError before it is kept
        except (OSError, DataError) as e:
            tmp.unlink(missing_ok=True)
            raise DataError(f"could not download {SQUAD_URLS[k]} ({e}); pass dataset.path=FILE") from e
        os.replace(tmp, target)
    return files["train"], files["dev"]
