import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from paretobert.evaluate import classification_metrics, encode, predict


@pytest.mark.parametrize("seed", range(5))
def test_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    t, p = rng.integers(0, 4, 50), rng.integers(0, 5, 50)
    m = classification_metrics(t.tolist(), p.tolist())
    assert m["accuracy"] == pytest.approx(accuracy_score(t, p))
    assert m["macro_f1"] == pytest.approx(f1_score(t, p, average="macro"))


def test_metrics_reject_bad_input():
    with pytest.raises(ValueError):
        classification_metrics([], [])
    with pytest.raises(ValueError):
        classification_metrics([1, 2], [1])


def test_encode_truncates_keeping_cls_and_sep(tokenizer):
    feeds = encode(tokenizer, ["sport " * 100, "tech"], seq_len=8, names=["input_ids", "attention_mask"])
    ids = feeds[0]["input_ids"][0]
    assert len(ids) == 8 and ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
    short = feeds[1]["input_ids"][0]  # short texts are not padded up to seq_len
    assert len(short) < 8 and short[0] == tokenizer.cls_token_id and short[-1] == tokenizer.sep_token_id
    assert feeds[0]["input_ids"].dtype == np.int64


class ArgmaxOfFirstToken:
    """A fake session: logits = one-hot of (first non-CLS token id mod 3); checks padding shape."""

    def run(self, feed):
        ids = feed["input_ids"]
        assert ids.shape == feed["attention_mask"].shape
        return np.eye(3)[ids[:, 1] % 3]


@pytest.mark.parametrize("batch_size", [1, 2, 5])
def test_predict_same_for_any_batch_size(tokenizer, batch_size):
    texts = ["sport match", "tech chip phone", "money bank", "sport", "tech data app device"]
    feeds = encode(tokenizer, texts, seq_len=16, names=["input_ids", "attention_mask"])
    want = [f["input_ids"][0, 1] % 3 for f in feeds]
    assert predict(ArgmaxOfFirstToken(), feeds, batch_size=batch_size).tolist() == want
