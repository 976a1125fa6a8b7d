"""Dataset loaders: ``load_split(cfg)`` returns the train/test :class:`Split` of a corpus."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from paretobert.config import DatasetConfig
from paretobert.data.base import DataError, Document, Split
from paretobert.data.folders import bbc_default_path, load_class_folders
from paretobert.data.livedoor import load_livedoor, resolve_livedoor
from paretobert.data.split import split_indices, stratified_subsample
from paretobert.data.squad import QASplit, load_qa_split, resolve_squad
from paretobert.data.tables import load_table, sst2_files

__all__ = ["DataError", "QASplit", "Split", "load_split"]

log = logging.getLogger(__name__)


def _labels(train: Sequence[Document], test: Sequence[Document]) -> list[str]:
    return sorted({d.label for d in train} | {d.label for d in test})


def _from_docs(
    train: Sequence[Document], test: Sequence[Document], *, cfg: DatasetConfig, source: str, skipped: list[str]
) -> Split:
    names = _labels(train, test)
    index = {n: i for i, n in enumerate(names)}
    tr_x, tr_y = [d.text for d in train], [index[d.label] for d in train]
    te_x, te_y = [d.text for d in test], [index[d.label] for d in test]
    if cfg.max_train is not None:
        keep = stratified_subsample(tr_y, cfg.max_train, seed=cfg.split_seed)
        tr_x, tr_y = [tr_x[i] for i in keep], [tr_y[i] for i in keep]
    if cfg.max_test is not None:
        keep = stratified_subsample(te_y, cfg.max_test, seed=cfg.split_seed)
        te_x, te_y = [te_x[i] for i in keep], [te_y[i] for i in keep]
    if len(set(tr_y)) < 2:
        raise DataError(f"{source}: the train split has fewer than 2 classes")
    missing = sorted(set(range(len(names))) - set(te_y))
    if missing:
        log.warning("%s: test split has no example of %s", source, [names[i] for i in missing])
    untrained = sorted(set(range(len(names))) - set(tr_y))
    if untrained:
        log.warning("%s: train split has no example of %s: the model can never predict it", source,
                    [names[i] for i in untrained])
    if skipped:
        log.warning("%s: skipped %d file(s): %s", source, len(skipped), "; ".join(skipped))
    return Split(tr_x, tr_y, te_x, te_y, names, source, list(skipped))


def _split_docs(docs: Sequence[Document], cfg: DatasetConfig, source: str, skipped: list[str]) -> Split:
    names = sorted({d.label for d in docs})
    index = {n: i for i, n in enumerate(names)}
    train_idx, test_idx = split_indices(
        [d.text for d in docs], [index[d.label] for d in docs], test_size=cfg.test_size, seed=cfg.split_seed
    )
    return _from_docs([docs[i] for i in train_idx], [docs[i] for i in test_idx], cfg=cfg, source=source, skipped=skipped)


def _qa_split(cfg: DatasetConfig, cache_dir: Path, allow_network: bool) -> QASplit:
    """A SQuAD-format dataset split by article (``split_seed``, ``test_size``), or its two files
    as given; ``max_test``: that many test questions, evenly spread (a quicker evaluation)."""
    path, test_path = resolve_squad(cfg.name, cfg.path, cfg.test_path, cache_dir=cache_dir,
                                    allow_network=allow_network)
    split = load_qa_split(path, test_path=test_path, test_size=cfg.test_size, seed=cfg.split_seed,
                          max_train_articles=cfg.max_train_articles)
    if not split.train:
        raise DataError(f"{path}: no train question has its answer at its offset")
    if cfg.max_test is not None and cfg.max_test < len(split.test):
        import numpy as np

        pick = sorted({int(i) for i in np.linspace(0, len(split.test) - 1, cfg.max_test)})
        split.test = [split.test[i] for i in pick]
    split.source = f"{cfg.name}:{split.source}"
    split.language = "ja" if cfg.name == "jsquad" else "en"
    return split


def load_split(cfg: DatasetConfig, *, cache_dir: Path | None = None,
               allow_network: bool = True) -> Split | QASplit:
    """Load the corpus named by ``cfg`` and split it (or use its own split): a
    :class:`QASplit` of questions for a QA dataset, else a :class:`Split` of labelled texts."""
    skipped: list[str] = []
    if cfg.task == "qa":
        return _qa_split(cfg, cache_dir or Path(".cache"), allow_network)
    if cfg.name == "bbc":
        path = Path(cfg.path).expanduser() if cfg.path else bbc_default_path()
        return _split_docs(load_class_folders(path, skipped), cfg, f"bbc:{path}", skipped)
    if cfg.name == "livedoor":
        path = resolve_livedoor(cfg.path, cache_dir=cache_dir or Path(".cache"), allow_network=allow_network)
        return _split_docs(load_livedoor(path, skipped), cfg, f"livedoor:{path}", skipped)
    if cfg.name == "sst2":
        if not cfg.path:
            raise DataError("dataset=sst2 needs dataset.path=DIR holding GLUE SST-2's train.tsv and dev.tsv")
        train_f, test_f = sst2_files(Path(cfg.path).expanduser(), cfg.test_split)
        # train.tsv names its text column "sentence", dev/test.tsv name it "content"
        train = load_table(train_f, text_column="sentence", label_column="label")
        test = load_table(test_f, text_column="content", label_column="label")
        return _from_docs(train, test, cfg=cfg, source=f"sst2:{cfg.path}", skipped=skipped)
    if cfg.name == "csv":
        assert cfg.path is not None
        kw = {"text_column": cfg.text_column, "label_column": cfg.label_column}
        docs = load_table(Path(cfg.path).expanduser(), **kw)
        if cfg.test_path:
            test = load_table(Path(cfg.test_path).expanduser(), **kw)
            return _from_docs(docs, test, cfg=cfg, source=f"csv:{cfg.path}", skipped=skipped)
        return _split_docs(docs, cfg, f"csv:{cfg.path}", skipped)
    raise DataError(f"unknown dataset {cfg.name!r}")
