"""Shared fixtures: a tiny random BERT built in-process and a few dozen separable examples."""

from __future__ import annotations

import json
import random

import pytest

TOPICS = {
    "sport": "match goal team coach league season player score win cup",
    "tech": "software chip phone computer internet data app device network code",
    "money": "bank market shares profit economy price stocks growth trade rates",
}


def make_texts(n_per_class: int = 12, seed: int = 0) -> tuple[list[str], list[int], list[str]]:
    """Separable synthetic documents: each class draws words from its own topic list."""
    rng = random.Random(seed)
    texts, labels = [], []
    names = sorted(TOPICS)
    for label, name in enumerate(names):
        words = TOPICS[name].split()
        for i in range(n_per_class):
            body = " ".join(rng.choice(words) for _ in range(rng.randint(8, 30)))
            texts.append(f"{name} story {i}: {body}")
            labels.append(label)
    return texts, labels, names


@pytest.fixture(scope="session", autouse=True)
def _own_machine_lock(tmp_path_factory):
    """The suite's builds and timings (and its subprocesses') share a lock of their own: a
    sweep running beside the tests neither waits for them nor is waited for (the tests'
    timings are not measurements). Set in os.environ for the session, not by monkeypatch, so a
    test's monkeypatch.undo() cannot take it away."""
    import os

    before = os.environ.get("PARETOBERT_MACHINE_LOCK")
    os.environ["PARETOBERT_MACHINE_LOCK"] = str(tmp_path_factory.getbasetemp() / "machine.lock")
    yield
    if before is None:
        os.environ.pop("PARETOBERT_MACHINE_LOCK", None)
    else:
        os.environ["PARETOBERT_MACHINE_LOCK"] = before


@pytest.fixture(autouse=True)
def _no_size_ladder(request, monkeypatch):
    """weights=auto builds a preset without weights from an installed pretrained model (the
    size ladder): tests keep their small presets at scratch unless marked ``ladder``."""
    if "ladder" in request.keywords:
        return
    from paretobert.models import zoo

    monkeypatch.setattr(zoo, "_teachers", lambda *a, **k: [])


WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda omicron sigma tau upsilon phi chi psi "
         "omega river stone cloud market engine signal").split()


def make_squad(n_articles=6, paragraphs=2, questions=3, seed=0, words=60):
    """A SQuAD-format document; each answer is a 2-4 word span of its context, at its offset."""
    rng = random.Random(seed)
    data = []
    for a in range(n_articles):
        pars = []
        for p in range(paragraphs):
            toks = [rng.choice(WORDS) for _ in range(words)]
            context = " ".join(toks)
            qas = []
            for q in range(questions):
                i = rng.randrange(0, words - 4)
                text = " ".join(toks[i:i + rng.randint(2, 4)])
                start = len(" ".join(toks[:i])) + (1 if i else 0)
                assert context[start:start + len(text)] == text
                qas.append({"id": f"a{a}p{p}q{q}", "question": f"where is {toks[i]} {toks[i + 1]}?",
                            "answers": [{"text": text, "answer_start": start}]})
            pars.append({"context": context, "qas": qas})
        data.append({"title": f"Article_{a}", "paragraphs": pars})
    return {"version": "1.1", "data": data}


@pytest.fixture(scope="session")
def corpus() -> tuple[list[str], list[int], list[str]]:
    return make_texts()


@pytest.fixture(scope="session")
def tokenizer(corpus):
    from paretobert.models import train_wordpiece

    return train_wordpiece(corpus[0], vocab_size=120, max_length=128, lowercase=True)


def make_reader(tokenizer, layers: int = 2):
    """A tiny random BERT reader (start/end head) on the session tokenizer."""
    import torch
    from transformers import BertConfig, BertForQuestionAnswering

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128)
    cfg._attn_implementation = "eager"
    return BertForQuestionAnswering(cfg).eval()


@pytest.fixture()
def qa_split(tmp_path):
    """Six synthetic SQuAD articles split by article (two held out)."""
    from paretobert.data.squad import load_qa_split

    path = tmp_path / "squad.json"
    path.write_text(json.dumps(make_squad(n_articles=6, words=40)))
    return load_qa_split(path, test_size=0.34, seed=0)


@pytest.fixture()
def tiny_model(tokenizer):
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128, num_labels=3)
    cfg._attn_implementation = "eager"
    return BertForSequenceClassification(cfg).eval()


@pytest.fixture()
def variant_of(tmp_path, corpus):
    """A factory of small scratch variants on the synthetic corpus written as a CSV dataset."""
    import csv

    from paretobert import measure
    from paretobert.config import BenchConfig, Config, DatasetConfig, ModelConfig, TrainConfig
    from paretobert.env import resolve_variant
    from paretobert.variant import Variant

    texts, labels, names = corpus
    data = tmp_path / "data.csv"
    with open(data, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows((t, names[y]) for t, y in zip(texts, labels, strict=True))

    def make(**kw):
        cfg = Config(
            model=ModelConfig(name="micro", layers=1, hidden=32, heads=2, intermediate=64, max_position=128,
                              tokenizer="wordpiece", vocab_size=150),
            dataset=DatasetConfig(name="csv", path=str(data)),
            train=TrainConfig(epochs=2, batch_size=8, max_length=64, lr=1e-3),
            bench=BenchConfig(warmup=1, min_iters=5, min_seconds=0.0, max_seconds=2.0, n_texts=4),
            weights="scratch", seq_len=32, allow_network=False,
        )
        for k, v in kw.items():
            setattr(cfg, k, v)
        cfg.__post_init__()  # validate and normalise what was set, as Hydra's to_object does
        return resolve_variant(Variant.from_config(cfg))  # this CPU's defaults, as the entry point does

    measure.clear_split_cache()
    return make



