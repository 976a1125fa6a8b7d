"""Extractive QA readers: the shared training loop (early stopping on F1), a tiny reader that
trains, exports with start/end logits and answers the same through ONNX Runtime, also int8."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_reader

from paretobert.config import QuantizeConfig, TrainConfig
from paretobert.export import export_onnx
from paretobert.qa import prepare_features, score
from paretobert.qa_model import QA_OUTPUTS, answer, fine_tune_qa, session_logits, torch_logits
from paretobert.quantize import quantize_onnx
from paretobert.runtimes import get_runtime
from paretobert.train import train_loop


@pytest.fixture()
def reader(tokenizer):
    return make_reader(tokenizer)


def test_the_training_loop_stops_early_on_any_metric_and_keeps_the_best_weights():
    model = torch.nn.Linear(2, 1)
    x = torch.randn(8, 2)
    seen, metrics = [], iter([0.2, 0.6, 0.5, 0.4, 0.9])

    def evaluate():
        seen.append({k: v.clone() for k, v in model.state_dict().items()})
        return {"val_f1": next(metrics), "val_loss": 1.0}

    stats = train_loop(model, n_items=8, batch_loss=lambda idx: model(x[idx]).pow(2).mean(),
                       cfg=TrainConfig(batch_size=4, epochs=5.0, lr=0.1, restore="best"), seed=0, lr=0.1, epochs=5.0,
                       evaluate=evaluate, every=1, patience=2, metric="val_f1", progress=False)
    assert stats["stopped"] == "patience" and stats["steps"] == 4 and stats["best_step"] == 2
    assert stats["val_f1"] == 0.6 and [p["val_f1"] for p in stats["curve"]] == [0.2, 0.6, 0.5, 0.4]
    for k, v in model.state_dict().items():  # the weights of the best evaluation, restored
        assert torch.equal(v, seen[1][k])


def test_a_tiny_reader_fine_tunes_with_validation_f1(reader, tokenizer, qa_split):
    val = [i for i in qa_split.train if i.article == qa_split.train_articles[0]]
    train = [i for i in qa_split.train if i.article != qa_split.train_articles[0]]
    stats = fine_tune_qa(reader, tokenizer, train, cfg=TrainConfig(batch_size=16, lr=3e-3), seed=0, lr=3e-3,
                         max_length=64, doc_stride=32, validation=val, epochs=4.0, progress=False)
    assert stats["n_windows"] > stats["n_questions"] == len(train)  # contexts longer than a window
    assert stats["loss_last"] < stats["loss_first"]  # it learns (at least where no answer is: [CLS])
    assert len(stats["curve"]) >= 2 and all(0.0 <= p["val_f1"] <= 1.0 for p in stats["curve"])
    # the weights kept (train.restore=significant, per-question F1): the best evaluation's or the last's
    kept = max(p["val_f1"] for p in stats["curve"]) if stats["kept"] == "best" else stats["curve"][-1]["val_f1"]
    assert stats["val_f1"] == kept and stats["n_validation"] == len(val) and stats["restore"] == "significant"
    assert stats["kept"] in ("best", "last")
    # each evaluation after the first tests its gain: per-question F1 (sign test), per-window loss (t-test)
    assert all("gain_p" not in p for p in stats["curve"][:1])
    assert all(0.0 <= p["gain_p"] <= 1.0 and 0.0 <= p["loss_drop_p"] <= 1.0 for p in stats["curve"][1:])


def test_the_exported_reader_answers_as_torch_does_fp32_and_int8(reader, tokenizer, qa_split, tmp_path):
    raw = tmp_path / "reader.onnx"
    names = export_onnx(reader, tokenizer, raw, outputs=QA_OUTPUTS)
    assert names == ["input_ids", "attention_mask", "token_type_ids"]
    session, _ = get_runtime("onnxruntime").open(raw, threads=1)
    for length in (48, 96):  # a dynamic sequence axis, in and out
        feats = prepare_features(tokenizer, qa_split.test[:4], max_length=length, windows="first")
        ort_s, ort_e = session_logits(session)(feats.inputs())
        pt_s, pt_e = torch_logits(reader)(feats.inputs())
        assert ort_s.shape == (4, length) and np.abs(ort_s - pt_s).max() < 1e-4 and np.abs(ort_e - pt_e).max() < 1e-4
    items = qa_split.test
    via_torch = answer(torch_logits(reader), tokenizer, items, seq_len=64)
    via_ort = answer(session_logits(session), tokenizer, items, seq_len=64)
    assert via_ort == via_torch and set(via_ort) == {i.id for i in items}
    q = tmp_path / "reader.int8.onnx"
    quantize_onnx(raw, q, cfg=QuantizeConfig())
    int8, _ = get_runtime("onnxruntime").open(q, threads=1)
    got = answer(session_logits(int8), tokenizer, items, seq_len=64, batch_size=4)
    assert all(got[i.id] in i.context for i in items)
    assert 0.0 <= score(got, items)["f1"] <= 100.0
