"""Truncation strategies: pure id selection, and the same [CLS]/[SEP] as the tokenizer's own."""

from __future__ import annotations

import pytest

from paretobert.encoding import (
    encode_batch,
    encode_ids,
    encode_text,
    text_windows,
    truncate_chars,
    truncate_ids,
    windowed,
)


def test_truncate_ids_head_and_head_tail():
    ids = list(range(10))
    assert truncate_ids(ids, 4, "head") == [0, 1, 2, 3]
    assert truncate_ids(ids, 4, "head+tail") == [0, 1, 8, 9]
    assert truncate_ids(ids, 5, "head+tail") == [0, 1, 2, 8, 9]  # the head gets the odd one
    assert truncate_ids(ids, 1, "head+tail") == [0]
    assert truncate_ids(ids, 0, "head") == []
    assert truncate_ids(ids, 10, "head+tail") == ids and truncate_ids(ids, 99, "head") == ids
    with pytest.raises(ValueError, match="head \\| head\\+tail"):
        truncate_ids(ids, 4, "middle")


def test_truncate_chars():
    assert truncate_chars("abcdefgh", 4, "head+tail") == "abgh"
    assert truncate_chars("abc", 4, "head+tail") == "abc"


@pytest.mark.parametrize("truncation", ["head", "head+tail"])
def test_encode_ids_keeps_cls_sep_and_length(tokenizer, corpus, truncation):
    long_text = " ".join(corpus[0][:6])
    full = tokenizer(long_text)["input_ids"]
    ids = encode_ids(tokenizer, long_text, max_length=10, truncation=truncation)
    assert len(ids) == 10 and ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
    if truncation == "head":
        assert ids == full[:9] + [tokenizer.sep_token_id]
    else:
        assert ids[1:5] == full[1:5] and ids[5:9] == full[-5:-1]  # 4 head + 4 tail tokens
    # a short text is untouched, exactly as the tokenizer encodes it
    assert encode_ids(tokenizer, "sport team", max_length=64, truncation=truncation) == tokenizer("sport team")["input_ids"]


def test_encode_text_and_batch_feeds(tokenizer):
    feed = encode_text(tokenizer, "sport team goal", max_length=64, names=["input_ids", "attention_mask"],
                       truncation="head+tail")
    assert set(feed) == {"input_ids", "attention_mask"} and feed["input_ids"].dtype.name == "int64"
    assert feed["input_ids"].shape == feed["attention_mask"].shape == (1, len(tokenizer("sport team goal")["input_ids"]))
    batch = encode_batch([[2, 5, 3], [2, 3]], pad_id=0, names=["input_ids", "attention_mask", "token_type_ids"])
    assert batch["input_ids"].tolist() == [[2, 5, 3], [2, 3, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["token_type_ids"].sum() == 0


def test_text_windows_are_the_following_token_windows(tokenizer, corpus):
    """Window 0 is the text (what head truncation reads); the later windows follow each other
    in whole words of at most b = max_length - 2 tokens, from the word head truncation cut: they
    re-tokenize to exactly the text's tokens from there on, each encodes whole at max_length."""
    text = " ".join(corpus[0][:4])
    enc = tokenizer(text, add_special_tokens=False)
    body, words = enc["input_ids"], enc.word_ids()
    budget = 8
    pieces = text_windows(tokenizer, text, max_length=budget + 2, n=1000)
    assert pieces[0] == text and len(pieces) > len(body) // budget
    again = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in pieces[1:]]
    first = len(body) - sum(len(a) for a in again)
    assert 0 < first <= budget and (first == budget or words[first] != words[first - 1])  # a word start
    assert sum(again, []) == body[first:]  # nothing lost, nothing re-segmented
    assert all(0 < len(ids) <= budget for ids in again)
    assert text_windows(tokenizer, text, max_length=budget + 2, n=3) == pieces[:3]
    assert text_windows(tokenizer, "sport team", max_length=10, n=4) == ["sport team"]  # one window: alone
    assert text_windows(tokenizer, text, max_length=10, n=1) == [text]
    with pytest.raises(ValueError, match="at least 1"):
        text_windows(tokenizer, text, max_length=10, n=0)


def test_a_word_longer_than_a_window_is_cut(tokenizer):
    word = "stockseconomygrowthmarket"  # many word pieces in this small vocabulary
    n_pieces = len(tokenizer(word, add_special_tokens=False)["input_ids"])
    assert n_pieces > 3
    pieces = text_windows(tokenizer, f"sport {word} team", max_length=5, n=100)  # 3 tokens a window
    assert len(pieces) >= 3 and all(len(tokenizer(p, add_special_tokens=False)["input_ids"]) <= 4 for p in pieces[1:])


def test_windowed_labels_each_window_as_its_text(tokenizer, corpus):
    texts, labels = [" ".join(corpus[0][:3]), "sport team"], [2, 0]
    out, out_labels, origin = windowed(tokenizer, texts, labels, max_length=10, n=3)
    assert out[0] == texts[0] and out[-1] == "sport team" and len(out) == 4
    assert out_labels == [2, 2, 2, 0] and origin == [0, 0, 0, 1]
    assert windowed(tokenizer, texts, labels, max_length=10, n=1) == (texts, labels, [0, 1])


def test_windows_need_character_offsets(tmp_path):
    from transformers import BertTokenizer

    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"]))
    slow = BertTokenizer(str(tmp_path / "vocab.txt"))
    with pytest.raises(ValueError, match="fast tokenizer"):
        text_windows(slow, "a b a b a b", max_length=4, n=2)
