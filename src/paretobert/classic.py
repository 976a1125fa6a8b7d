"""The classical baseline ``model=tfidf``: character n-gram TF-IDF + a linear SVM, in ONNX.

It runs through the same protocol as the transformers: the fitted pipeline is converted to
ONNX (skl2onnx turns the vectorizer into ONNX Runtime's Tokenizer + TfIdfVectorizer ops, and
the SVM becomes a MatMul + Add appended here), checked against scikit-learn, optionally
int8-quantized (the MatMul), scored and timed with ONNX Runtime at batch 1.

A "token" of this model is a character: ``seq_len`` caps the characters it reads, cut with the
variant's truncation like the transformers' tokens. Whitespace runs are collapsed to one space
before the model, as scikit-learn's char analyzer does (the preprocessing is timed as the
model's tokenization). ``sublinear_tf`` is off because skl2onnx cannot express it exactly.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from paretobert.encoding import truncate_chars
from paretobert.runtimes.onnxruntime import make_session

__all__ = ["check_tfidf_onnx", "export_tfidf", "fit_tfidf", "load_tfidf", "prepare_text", "save_tfidf"]

INPUT = "text"


def prepare_text(text: str, *, max_chars: int, truncation: str = "head") -> str:
    """What the model reads: whitespace collapsed, then at most ``max_chars`` characters."""
    return truncate_chars(" ".join(text.split()), max_chars, truncation)


def fit_tfidf(texts: Sequence[str], labels: Sequence[int], *, ngrams: int, seed: int) -> Any:
    """A fitted scikit-learn Pipeline(TfidfVectorizer(char 1..ngrams), LinearSVC)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import Pipeline
    from sklearn.svm import LinearSVC

    pipe = Pipeline([
        ("tfidf", TfidfVectorizer(analyzer="char", ngram_range=(1, ngrams), lowercase=False,
                                  sublinear_tf=False, dtype=np.float32)),
        ("svm", LinearSVC(C=1.0, random_state=seed)),
    ])
    return pipe.fit(list(texts), list(labels))


def save_tfidf(pipe: Any, path: Path) -> None:
    with open(path, "wb") as f:
        pickle.dump(pipe, f, protocol=pickle.HIGHEST_PROTOCOL)


def load_tfidf(path: Path) -> Any:
    with open(path, "rb") as f:
        return pickle.load(f)  # noqa: S301 - our own cache artifact, keyed by content hash


def decision_scores(pipe: Any, texts: Sequence[str]) -> np.ndarray:
    """Per-class scores (n, classes); binary problems get (-s, s) like the ONNX graph."""
    s = np.asarray(pipe.decision_function(list(texts)), dtype=np.float32)
    return np.stack([-s, s], axis=1) if s.ndim == 1 else s


def export_tfidf(pipe: Any, path: Path, *, opset: int = 17) -> list[str]:
    """Write the ONNX graph text (N, 1) -> logits (N, classes); returns the input names."""
    import warnings

    import onnx
    from onnx import helper, numpy_helper
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import StringTensorType

    vec, svm = pipe.named_steps["tfidf"], pipe.named_steps["svm"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "conversion of char analyzer may not work": checked below
        onx = convert_sklearn(vec, initial_types=[(INPUT, StringTensorType([None, 1]))],
                              target_opset=opset)
    feats = onx.graph.output[0].name
    coef = np.asarray(svm.coef_, dtype=np.float32)
    bias = np.asarray(svm.intercept_, dtype=np.float32)
    if coef.shape[0] == 1:  # binary: one hyperplane -> two logits (-s, s)
        coef, bias = np.concatenate([-coef, coef]), np.concatenate([-bias, bias])
    g = onx.graph
    g.initializer.extend([numpy_helper.from_array(coef.T.copy(), "svm_coef"),
                          numpy_helper.from_array(bias, "svm_bias")])
    g.node.extend([helper.make_node("MatMul", [feats, "svm_coef"], ["svm_scores"], name="svm_matmul"),
                   helper.make_node("Add", ["svm_scores", "svm_bias"], ["logits"], name="svm_add")])
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, [None, coef.shape[0]]))
    onnx.checker.check_model(onx)
    onnx.save(onx, str(path))
    return [INPUT]


def check_tfidf_onnx(onnx_path: Path, pipe: Any, texts: Sequence[str]) -> float:
    """Largest |score difference| between ONNX Runtime and scikit-learn on ``texts``."""
    sess, _ = make_session(onnx_path)
    want = decision_scores(pipe, texts)
    got = np.concatenate([sess.run(None, {INPUT: np.array([[t]], dtype=object)})[0] for t in texts])
    return float(np.max(np.abs(got - want))) if len(texts) else 0.0
