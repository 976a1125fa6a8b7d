"""Extractive QA's pure parts: the SQuAD-format loader (split by article), the metrics, and
the round trip questions -> windows -> logits -> answer text."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_squad

from paretobert.data.base import DataError
from paretobert.data.squad import QAItem, load_qa_split, read_squad, split_articles
from paretobert.qa import exact_match, f1, normalize_answer, postprocess, prepare_features, score


@pytest.fixture()
def squad_file(tmp_path):
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(make_squad()))
    return path


def test_split_by_article_keeps_each_article_on_one_side(squad_file):
    split = load_qa_split(squad_file, test_size=0.34, seed=3)
    assert len(split.test_articles) == 2 and len(split.train_articles) == 4  # round(6 * 0.34)
    assert not set(split.train_articles) & set(split.test_articles)
    assert {i.article for i in split.train} == set(split.train_articles)
    assert {i.article for i in split.test} == set(split.test_articles)
    assert len(split.train) + len(split.test) == 6 * 2 * 3
    again = load_qa_split(squad_file, test_size=0.34, seed=3)
    assert again.fingerprint() == split.fingerprint()  # a fixed seed: the same split
    other = load_qa_split(squad_file, test_size=0.34, seed=4)
    assert other.test_articles != split.test_articles
    assert split_articles(["a", "b"], 0.9, 0) in ((["a"], ["b"]), (["b"], ["a"]))  # at least one on each side


def test_a_test_file_is_taken_as_it_is_and_train_articles_can_be_limited(tmp_path, squad_file):
    test = tmp_path / "test.json"
    test.write_text(json.dumps(make_squad(n_articles=2, seed=9)))
    split = load_qa_split(squad_file, test_path=test)
    assert len(split.train_articles) == 6 and len(split.test_articles) == 2 and len(split.test) == 2 * 2 * 3
    few = load_qa_split(squad_file, test_path=test, max_train_articles=2)
    assert len(few.train_articles) == 2 and set(few.train_articles) <= set(split.train_articles)
    assert len(few.train) == 2 * 2 * 3


def test_train_questions_whose_answer_is_not_at_its_offset_are_skipped_and_listed(tmp_path):
    doc = make_squad(n_articles=2)
    doc["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] += 1
    path = tmp_path / "d.json"
    path.write_text(json.dumps(doc))
    split = load_qa_split(path, test_path=path)
    assert split.skipped == ["a0p0q0: no reference answer at its offset"]
    assert "a0p0q0" not in {i.id for i in split.train} and "a0p0q0" in {i.id for i in split.test}


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"),
    (b"\xff\xfe not json", "not a UTF-8 JSON file"),
    (b'{"data": [{"title": "x", "paragraphs": [{"qas": []}]}]}', "has no str 'context'"),
    (b'{"version": "1.1"}', "has no list 'data'"),
    (b'{"data": []}', "no questions"),
])
def test_bad_files_get_one_line(tmp_path, content, message):
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message) as e:
        read_squad(path)
    assert "\n" not in str(e.value)


def test_squad_normalisation_exact_match_and_f1():
    assert normalize_answer("The  Cat, sat!") == "cat sat"
    assert exact_match("the cat", ["Cat"]) == 1.0 and exact_match("a dog", ["cat"]) == 0.0
    assert f1("the cat sat", ["cat sat on"]) == pytest.approx(0.8)  # P 2/2, R 2/3
    assert f1("cat", ["dog", "the cat"]) == 1.0  # the max over references
    assert f1("", ["cat"]) == 0.0 and f1("the", ["a"]) == 1.0  # both empty after normalisation
    assert f1("東京都", ["東京"], language="ja") == pytest.approx(0.8)  # per character
    assert exact_match("東京。", ["東京"], language="ja") == 1.0


def test_score_counts_a_missing_prediction_as_wrong_and_brackets_the_means():
    items = [QAItem(f"q{i}", "q?", "some context", ("cat",), (0,), "a") for i in range(40)]
    preds = {f"q{i}": "cat" if i < 30 else "dog" for i in range(38)}  # q38, q39 missing
    s = score(preds, items)
    assert s["exact_match"] == pytest.approx(75.0) and s["f1"] == pytest.approx(75.0) and s["missing"] == 2
    assert s["exact_match_ci_lo"] < 75.0 < s["exact_match_ci_hi"] and s["n_questions"] == 40


def _oracle(feats):
    """Logits that put the labelled span first (the [CLS] row when a window lacks the answer)."""
    n, length = feats.input_ids.shape
    start, end = np.zeros((n, length)), np.zeros((n, length))
    start[np.arange(n), feats.start_positions] = 10.0
    end[np.arange(n), feats.end_positions] = 10.0
    return start, end


def test_the_windows_fingerprint_follows_their_tokens(tokenizer, squad_file):
    """Features.fingerprint (the key of a reader's teacher-logits stage) is the same for the same
    windows and differs when the stride, the length or the questions change."""
    items = load_qa_split(squad_file, test_path=squad_file).test

    def fp(items=items, **kw):
        return prepare_features(tokenizer, items, **{"max_length": 64, "doc_stride": 32, **kw}).fingerprint()

    assert fp() == fp() and len(fp()) == 32
    assert len({fp(), fp(doc_stride=16), fp(max_length=48), fp(items=items[1:])}) == 4


def test_windows_labels_and_postprocess_round_trip(tokenizer, squad_file):
    items = load_qa_split(squad_file, test_path=squad_file).test
    feats = prepare_features(tokenizer, items, max_length=64, doc_stride=32, windows="all", labels=True)
    assert len(feats) > len(items)  # long contexts: several windows per question
    assert feats.input_ids.shape == (len(feats), 64) and feats.inputs()["input_ids"].dtype == np.int64
    preds = postprocess(items, feats, *_oracle(feats))
    assert score(preds, items)["exact_match"] == 100.0  # every answer is wholly in some window (overlap 32 >= its
    # at most 23 tokens of this tiny vocabulary) and comes back
    first = prepare_features(tokenizer, items, max_length=64, windows="first", labels=True)
    assert len(first) == len(items)
    beyond = {items[r].id for r in range(len(items)) if first.start_positions[r] == 0}
    assert beyond  # some answers lie past the first window...
    got = postprocess(items, first, *_oracle(first))
    s = score(got, items)
    assert s["exact_match"] == pytest.approx(100 * (1 - len(beyond) / len(items)))  # ...and are misses there
    assert all(got[i] != next(x for x in items if x.id == i).answers[0] for i in beyond)


def test_postprocess_never_answers_outside_the_context_or_longer_than_allowed(tokenizer, squad_file):
    items = load_qa_split(squad_file, test_path=squad_file).test[:5]
    feats = prepare_features(tokenizer, items, max_length=64, windows="first")
    rng = np.random.default_rng(0)
    start, end = rng.normal(size=feats.input_ids.shape), rng.normal(size=feats.input_ids.shape)
    start[:, 0] = end[:, 0] = 100.0  # [CLS] (question side) is never a span
    got = postprocess(items, feats, start, end, max_answer_length=3)
    for item in items:
        assert got[item.id] in item.context and 0 < len(got[item.id].split()) <= 3


def test_a_slow_tokenizer_is_refused(squad_file):
    class Slow:
        is_fast = False

    with pytest.raises(ValueError, match="fast tokenizer"):
        prepare_features(Slow(), [], max_length=32)
