"""Truncation strategies: pure id selection, and the same [CLS]/[SEP] as the tokenizer's own."""

from __future__ import annotations

import pytest

from paretobert.encoding import encode_batch, encode_ids, encode_text, truncate_chars, truncate_ids


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
