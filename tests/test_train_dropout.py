"""train.dropout: dropout masks drawn 16 bits per element from 64-bit random words while a CPU
fine-tune runs (the same Bernoulli keep and scale as torch's, another random stream), keyed
(torch, the kernel every earlier record trained with, is unhashed: tests/test_train_restore.py
checks each new training default's keys), recorded, restored after."""

import pytest
import torch

from paretobert.config import TrainConfig
from paretobert.train import dropout_kernel, fast_dropout, fine_tune

CPU = torch.device("cpu")


def test_each_element_is_kept_with_probability_one_minus_p_and_scaled_as_torch_does():
    torch.manual_seed(0)
    x = torch.rand(1_000_000) + 1.0  # never 0: a zero in the output is a dropped element
    for p in (0.1, 0.5):
        y = fast_dropout(x, p)
        kept = y != 0
        # every 16-bit lane of the random words: a lane whose top bit were never set would keep ~1-p/2 (the
        # int64 random_() of [0, 2**63) did that); the binomial standard error here is ~0.0006 per lane
        for lane in range(4):
            assert kept[lane::4].float().mean().item() == pytest.approx(1 - p, abs=0.004), (p, lane)
        torch.testing.assert_close(y[kept], x[kept] / (1 - p))


def test_the_gradient_is_the_mask_times_the_scale():
    torch.manual_seed(1)
    x = (torch.rand(64, 33) + 1.0).requires_grad_()
    y = fast_dropout(x, 0.25)
    y.sum().backward()
    torch.testing.assert_close(x.grad, (y != 0).float() / 0.75)


def test_masks_follow_torchs_seed_and_nothing_is_dropped_outside_training():
    x = torch.rand(4, 8, 16) + 1.0
    torch.manual_seed(3)
    a = fast_dropout(x, 0.1)
    torch.manual_seed(3)
    b = fast_dropout(x, 0.1)
    torch.manual_seed(4)
    c = fast_dropout(x, 0.1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert fast_dropout(x, 0.1, training=False) is x and fast_dropout(x, 0.0) is x
    assert torch.equal(fast_dropout(x, 1.0), torch.zeros_like(x))
    z = x.clone()
    torch.manual_seed(3)
    assert fast_dropout(z, 0.1, inplace=True) is z and torch.equal(z, a)
    with pytest.raises(ValueError, match="between 0 and 1"):
        fast_dropout(x, 1.5)


def test_the_kernel_is_swapped_only_while_asked_and_restored_after_an_error():
    torch_dropout = torch.nn.functional.dropout
    layer = torch.nn.Dropout(0.1).train()
    x = torch.rand(2, 3, 40) + 1.0
    with dropout_kernel("fast", CPU) as kind:
        assert kind == "fast" and torch.nn.functional.dropout is fast_dropout
        torch.manual_seed(5)
        via_module = layer(x)  # nn.Dropout (and the models' functional attention dropout) take it
    torch.manual_seed(5)
    assert torch.equal(via_module, fast_dropout(x, 0.1))
    assert torch.nn.functional.dropout is torch_dropout
    with pytest.raises(RuntimeError, match="boom"), dropout_kernel("fast", CPU):
        raise RuntimeError("boom")
    assert torch.nn.functional.dropout is torch_dropout
    for kind, device in (("torch", CPU), ("fast", torch.device("cuda"))):  # a CUDA fine-tune keeps torch's
        with dropout_kernel(kind, device) as used:
            assert used == "torch" and torch.nn.functional.dropout is torch_dropout


def _fresh(tokenizer):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128, num_labels=3)
    cfg._attn_implementation = "eager"  # as the product trains: the attention's dropout is the functional one
    return BertForSequenceClassification(cfg)


def test_a_fine_tune_records_its_kernel_and_the_two_are_two_random_streams(tokenizer, corpus):
    texts, labels, _ = corpus
    weights, stats = {}, {}
    for kind in ("torch", "fast"):
        model = _fresh(tokenizer)
        cfg = TrainConfig(epochs=2, batch_size=8, max_length=48, precision="fp32", validation_size=0.0, dropout=kind)
        stats[kind] = fine_tune(model, tokenizer, texts=texts, labels=labels, seed=0, lr=3e-3, cfg=cfg,
                                progress=False)
        weights[kind] = model.state_dict()
        assert torch.nn.functional.dropout is not fast_dropout  # restored
    assert (stats["torch"]["dropout"], stats["fast"]["dropout"]) == ("torch", "fast")
    start = _fresh(tokenizer).state_dict()
    assert max(float((weights["fast"][k] - start[k]).abs().max()) for k in start) > 1e-2  # it trains
    assert any(not torch.equal(weights["fast"][k], weights["torch"][k]) for k in weights["fast"])


def test_the_committed_experiments_keep_the_kernel_they_were_measured_with():
    from test_config import _compose

    for name in ("qa-reader", "runtimes", "runtimes-exit", "compression", "livedoor", "livedoor-pretrained",
                 "livedoor-newvocab", "design-card-scratch"):
        assert _compose(f"+experiment={name}").train.dropout == "torch", name
    assert _compose().train.dropout == "fast"
