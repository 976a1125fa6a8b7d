"""Early exit: ONNX segments equal torch per layer, and a high threshold stops early."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from paretobert.encoding import encode_text
from paretobert.models.early_exit import (
    EarlyExitRunner,
    OffRamps,
    entropy,
    export_segments,
    layer_logits,
    train_ramps,
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
