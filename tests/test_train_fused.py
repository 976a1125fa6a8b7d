"""train.fused: AdamW as torch's fused kernel by default (the same algorithm, a faster step),
keyed (false, the implementation every earlier record trained with, is unhashed), recorded, and
a one-line error where torch has no fused kernel."""

import pytest
import torch

from paretobert.config import TrainConfig
from paretobert.train import TrainingError, adamw, fine_tune
from paretobert.variant import Variant


def _fresh(tokenizer):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128, num_labels=3))


def test_fused_and_foreach_train_the_same_model_to_the_last_bits(tokenizer, corpus):
    texts, labels, _ = corpus
    weights, stats = {}, {}
    for fused in (False, True):
        model = _fresh(tokenizer)
        cfg = TrainConfig(epochs=2, batch_size=8, max_length=48, precision="fp32", validation_size=0.0, fused=fused)
        stats[fused] = fine_tune(model, tokenizer, texts=texts, labels=labels, seed=0, lr=3e-3, cfg=cfg,
                                 progress=False)
        weights[fused] = {k: v.clone() for k, v in model.state_dict().items()}
    assert (stats[False]["fused"], stats[True]["fused"]) == (False, True)
    assert stats[True]["steps"] == stats[False]["steps"] > 5
    moved = max(float((weights[True][k] - _fresh(tokenizer).state_dict()[k]).abs().max()) for k in weights[True])
    assert moved > 1e-2  # the weights did move: the comparison below is not of two untrained models
    for k in weights[True]:
        torch.testing.assert_close(weights[True][k], weights[False][k], rtol=1e-4, atol=1e-5, msg=k)
    assert stats[True]["loss_last"] == pytest.approx(stats[False]["loss_last"], abs=1e-4)


def test_adamw_is_fused_only_when_asked():
    p = torch.nn.Parameter(torch.ones(3))
    assert adamw([{"params": [p]}], lr=1e-3, fused=True).defaults["fused"] is True
    assert not adamw([{"params": [p]}], lr=1e-3, fused=False).defaults["fused"]


def test_no_fused_kernel_is_a_one_line_error_not_a_fallback():
    ints = torch.nn.Parameter(torch.zeros(3, dtype=torch.long), requires_grad=False)
    with pytest.raises(TrainingError, match=r"^train.fused=true: torch .* no fused AdamW for torch.int64 parameters "
                                            r"on cpu; set train.fused=false$"):
        adamw([{"params": [ints]}], lr=1e-3, fused=True)


def test_fused_is_another_training_and_false_keeps_old_hashes_and_keys(variant_of):
    fused = variant_of()
    assert fused.train.fused is True  # the default
    d = fused.to_dict()
    d["train"]["fused"] = False
    foreach = Variant.from_dict(d)
    del d["train"]["fused"]  # a record from before train.fused
    old = Variant.from_dict(d)
    assert old.train.fused is False and old.hash == foreach.hash
    key = dict(data_fingerprint="d", source="scratch", lr=1e-3)
    assert old.train_key(**key) == foreach.train_key(**key)
    assert fused.hash != foreach.hash and fused.train_key(**key) != foreach.train_key(**key)


def test_the_committed_experiments_keep_the_optimizer_they_were_measured_with():
    from test_config import _compose

    for name in ("qa-reader", "runtimes", "compression", "livedoor", "design-card-scratch"):
        assert _compose(f"+experiment={name}").train.fused is False, name
    assert _compose().train.fused is True
    assert _compose("+experiment=design-card").train.fused is True  # re-measured with it (2026-12-03, policies 5 and 6)
