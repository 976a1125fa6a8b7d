"""The TF-IDF baseline: fitted, exported to ONNX, equal to scikit-learn, quantizable."""

from __future__ import annotations

import numpy as np
import pytest

from paretobert.classic import (
    check_tfidf_onnx,
    decision_scores,
    export_tfidf,
    fit_tfidf,
    prepare_text,
)
from paretobert.runtimes import make_session

pytest.importorskip("skl2onnx")


def test_prepare_text_collapses_whitespace_and_truncates():
    assert prepare_text("a  b\n\tc", max_chars=99) == "a b c"
    assert prepare_text("abc def", max_chars=4, truncation="head+tail") == "abef"
    assert prepare_text("abc def", max_chars=4) == "abc "


@pytest.mark.parametrize("n_classes", [3, 2])
def test_tfidf_onnx_matches_sklearn_and_quantizes(tmp_path, corpus, n_classes):
    from paretobert.config import QuantizeConfig
    from paretobert.quantize import quantize_onnx

    texts, labels, _ = corpus
    keep = [i for i, y in enumerate(labels) if y < n_classes]
    texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
    # Japanese text too: characters are the tokens
    texts = texts + ["東京でスマートフォン発売", "映画の公開日が決定"] * 3
    labels = labels + [0, 1] * 3
    pipe = fit_tfidf([prepare_text(t, max_chars=200) for t in texts], labels, ngrams=2, seed=0)
    onnx_path = tmp_path / "m.onnx"
    assert export_tfidf(pipe, onnx_path) == ["text"]
    sample = [prepare_text(t, max_chars=200) for t in texts[::3]]
    assert check_tfidf_onnx(onnx_path, pipe, sample) < 1e-4
    sess, _ = make_session(onnx_path)
    logits = np.concatenate([sess.run(None, {"text": np.array([[t]], dtype=object)})[0] for t in sample])
    assert logits.shape == (len(sample), n_classes)
    assert (logits.argmax(1) == decision_scores(pipe, sample).argmax(1)).all()
    q = tmp_path / "m.int8.onnx"
    quantize_onnx(onnx_path, q, cfg=QuantizeConfig())
    qs, _ = make_session(q)
    qlogits = np.concatenate([qs.run(None, {"text": np.array([[t]], dtype=object)})[0] for t in sample])
    assert np.abs(qlogits - logits).max() < 0.1 and q.stat().st_size < onnx_path.stat().st_size
