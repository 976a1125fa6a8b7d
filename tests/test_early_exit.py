"""Early exit: ONNX segments equal torch per layer, and a high threshold stops early; a
reader's span off-ramps the same with start/end logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_reader

from paretobert.encoding import encode_text
from paretobert.models.early_exit import (
    EarlyExitRunner,
    OffRamps,
    SpanRamps,
    entropy,
    exit_entropy,
    export_segments,
    layer_logits,
    span_loss,
    train_ramps,
    train_span_ramps,
)


def test_entropy_known_values():
    assert entropy(np.array([[0.0, 0.0]]))[0] == pytest.approx(np.log(2))
    assert entropy(np.array([[100.0, 0.0, 0.0]]))[0] == pytest.approx(0.0, abs=1e-6)


@pytest.fixture(params=["mean", "cls"])
def trained(request, tiny_model, tokenizer, corpus):
    ramps, stats = train_ramps(tiny_model, tokenizer, texts=corpus[0], labels=corpus[1], max_length=32,
                               epochs=4, lr=3e-3, batch_size=8, pooling=request.param, progress=False)
    assert stats["pooling"] == ramps.pooling == request.param
    return ramps, stats


def test_mean_pooled_ramps_ignore_padding():
    ramps = OffRamps(3, 8, 4, "mean")
    h = torch.randn(1, 5, 8)
    padded = torch.cat([h, torch.randn(1, 3, 8) * 100], dim=1)
    mask, mask_padded = torch.ones(1, 5), torch.tensor([[1] * 5 + [0] * 3])
    torch.testing.assert_close(ramps(0, h, mask), ramps(0, padded, mask_padded))
    torch.testing.assert_close(ramps.pool(h, mask), h.mean(1))
    cls = OffRamps(3, 8, 4, "cls")
    torch.testing.assert_close(cls.pool(padded, mask_padded), h[:, 0])
    with pytest.raises(ValueError, match="accepted: cls | mean"):
        OffRamps(3, 8, 4, "max")


def test_ramps_train_on_a_frozen_body(tiny_model, tokenizer, corpus, trained):
    before = [p.detach().clone() for p in tiny_model.parameters()]
    ramps, stats = trained
    assert stats["steps"] == 20 and stats["loss_last"] < stats["loss_first"]
    assert all(torch.equal(a, b) for a, b in zip(before, tiny_model.parameters(), strict=True))
    assert len(ramps.ramps) == tiny_model.config.num_hidden_layers - 1


def test_segments_match_torch_and_stop_early(tmp_path, tiny_model, tokenizer, corpus, trained):
    ramps, _ = trained
    files = export_segments(tiny_model, ramps, tokenizer, tmp_path)
    assert files == ["segment_00.onnx", "segment_01.onnx"]
    names = ["input_ids", "attention_mask", "token_type_ids"]
    paths = [tmp_path / f for f in files]
    full = EarlyExitRunner(paths, threshold=0.0)
    for text in corpus[0][:5]:
        feed = encode_text(tokenizer, text, max_length=32, names=names)
        want = layer_logits(tiny_model, ramps, {k: torch.from_numpy(v) for k, v in feed.items()})
        got = full.all_logits(feed)
        assert len(got) == len(want) == 2
        for g, w in zip(got, want, strict=True):
            assert np.abs(g - w.numpy()).max() < 1e-4
        # the last layer's logits are the model's own output
        np.testing.assert_allclose(got[-1], tiny_model(**{k: torch.from_numpy(v) for k, v in feed.items()}).logits
                                   .detach().numpy(), atol=1e-4)
        logits, layer = full(feed)
        assert layer == 2 and np.allclose(logits, got[-1])
        # a threshold above any entropy (log 3 for 3 classes) exits at the first layer
        early = EarlyExitRunner(paths, threshold=np.log(3) + 1e-3)
        logits, layer = early(feed)
        assert layer == 1 and np.allclose(logits, got[0], atol=1e-5)


# ---------------------------------------------------------------------------- readers: span off-ramps

def test_a_readers_exit_entropy_is_the_mean_of_its_start_and_end_entropies():
    sure = np.array([[[50.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]])  # (1, 2, sequence): start sure, end uniform
    assert exit_entropy(sure) == pytest.approx(np.log(4) / 2, abs=1e-6)
    assert exit_entropy(np.array([[0.0, 0.0]])) == pytest.approx(np.log(2))  # a classifier: its own entropy


def test_span_loss_never_counts_padding():
    logits = torch.randn(1, 2, 5)
    padded = torch.cat([logits, torch.full((1, 2, 3), 100.0)], dim=2)  # padding that would win every softmax
    start, end = torch.tensor([1]), torch.tensor([3])
    torch.testing.assert_close(span_loss(logits, start, end, torch.ones(1, 5)),
                               span_loss(padded, start, end, torch.tensor([[1] * 5 + [0] * 3])))


def test_span_ramps_train_on_a_frozen_reader_and_its_segments_read_as_torch(tmp_path, tokenizer, qa_split):
    from paretobert.qa import prepare_features

    reader, qa_items = make_reader(tokenizer, layers=3), qa_split
    before = [p.detach().clone() for p in reader.parameters()]
    ramps, stats = train_span_ramps(reader, tokenizer, items=qa_items.train, max_length=64, doc_stride=32,
                                    epochs=6, lr=3e-3, batch_size=8, progress=False)
    assert isinstance(ramps, SpanRamps) and len(ramps.ramps) == 2
    assert stats["n_windows"] > len(qa_items.train) and stats["loss_last"] < stats["loss_first"]
    assert all(torch.equal(a, b) for a, b in zip(before, reader.parameters(), strict=True))  # the body stays frozen

    files = export_segments(reader, ramps, tokenizer, tmp_path)
    paths = [tmp_path / f for f in files]
    assert files == ["segment_00.onnx", "segment_01.onnx", "segment_02.onnx"]
    full = EarlyExitRunner(paths, threshold=0.0)
    feats = prepare_features(tokenizer, qa_items.test[:3], max_length=48, windows="first")
    for r in range(len(feats)):
        feed = feats.inputs([r])
        n = int(feed["attention_mask"].sum())
        feed = {k: v[:, :n] for k, v in feed.items()}  # batch 1, unpadded: as a deployed reader reads
        want = layer_logits(reader, ramps, {k: torch.from_numpy(v) for k, v in feed.items()})
        got = full.all_logits(feed)
        assert [g.shape for g in got] == [(1, 2, n)] * 3
        for g, w in zip(got, want, strict=True):
            assert np.abs(g - w.numpy()).max() < 1e-4
        # the last segment is the reader's own start/end logits
        out = reader(**{k: torch.from_numpy(v) for k, v in feed.items()})
        np.testing.assert_allclose(got[-1][:, 0], out.start_logits.detach().numpy(), atol=1e-4)
        np.testing.assert_allclose(got[-1][:, 1], out.end_logits.detach().numpy(), atol=1e-4)
        logits, layer = full(feed)
        assert layer == 3 and np.allclose(logits, got[-1])
        # above any window's entropy (log n) every question leaves after the first layer, with its logits
        logits, layer = EarlyExitRunner(paths, threshold=np.log(n) + 1e-3)(feed)
        assert layer == 1 and np.allclose(logits, got[0], atol=1e-5)
        # at any threshold: the first off-ramp whose mean start/end entropy is below it, else the last layer
        h = [exit_entropy(g) for g in got[:2]]
        for t in (*h, sum(h) / 2, min(h) - 1e-3, max(h) + 1e-3):
            _, layer = EarlyExitRunner(paths, threshold=t)(feed)
            assert layer == next((i + 1 for i in range(2) if h[i] < t), 3)
