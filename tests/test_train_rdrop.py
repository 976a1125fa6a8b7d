"""train.rdrop: R-Drop (two dropout masks of each batch in one forward, their mean cross-entropy
plus the weight times their symmetric KL); off by default and keyed only when set
(tests/test_variant.py); with a teacher's soft labels, their loss of both copies; rejected where
it is not built (QA, TF-IDF: tests/test_config.py too)."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from paretobert.config import ConfigError, DistillConfig, ModelConfig, TrainConfig
from paretobert.train import Distillation, fine_tune, rdrop_loss


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin, self.drop = torch.nn.Linear(4, 3), torch.nn.Dropout(0.5)

    def forward(self, x):
        return type("Out", (), {"logits": self.lin(self.drop(x))})()


def test_rdrop_is_cross_entropy_alone_without_dropout_and_adds_the_kl_of_two_masks_with_it():
    torch.manual_seed(0)
    net, x, y = _Net(), torch.randn(8, 4), torch.randint(0, 3, (8,))
    net.eval()  # no dropout: the two copies agree, the KL is 0
    plain = F.cross_entropy(net.lin(x), y)
    assert rdrop_loss(net, {"x": x}, y, alpha=5.0).item() == pytest.approx(plain.item(), abs=1e-6)
    net.train()  # two masks: the copies differ and the KL term is positive, growing with alpha
    torch.manual_seed(1)
    low = rdrop_loss(net, {"x": x}, y, alpha=0.0)
    torch.manual_seed(1)
    high = rdrop_loss(net, {"x": x}, y, alpha=1.0)
    assert high.item() > low.item()
    high.backward()
    assert net.lin.weight.grad is not None


def test_fine_tune_trains_on_the_rdrop_loss_when_set(tiny_model, tokenizer, corpus):
    texts, labels, _ = corpus
    seen = []
    runs = {}
    for alpha in (None, 1.0):
        model = copy.deepcopy(tiny_model)
        plain_forward = model.forward

        def counted(*a, _f=plain_forward, _alpha=alpha, **kw):
            seen.append((_alpha, kw["input_ids"].shape[0]))
            return _f(*a, **kw)

        model.forward = counted
        runs[alpha] = fine_tune(model, tokenizer, texts=texts, labels=labels, seed=0, lr=3e-3, progress=False,
                                cfg=TrainConfig(epochs=1, batch_size=8, max_length=48, rdrop=alpha))
    # each step's forward sees the batch twice under R-Drop, once without it
    plain, twice = [n for a, n in seen if a is None], [n for a, n in seen if a == 1.0]
    assert twice == [2 * n for n in plain] and max(plain) == 8
    assert runs[1.0]["loss_first"] != runs[None]["loss_first"]  # another loss: the KL term is in it


def test_with_a_teacher_it_is_the_soft_label_loss_of_both_copies_plus_their_kl(tiny_model, tokenizer, corpus):
    texts, labels, _ = corpus
    torch.manual_seed(0)
    kd = Distillation(soft_targets=torch.randn(len(texts), tiny_model.config.num_labels), alpha=0.5)
    enc = tokenizer(texts[:8], padding=True, return_tensors="pt")
    y, idx = torch.tensor(labels[:8]), list(range(8))

    def with_teacher(m, e, yy):  # the stacked batch's soft-label loss (each text's soft label twice)
        return kd.loss_and_logits(m, e, yy, idx + idx)

    tiny_model.eval()  # no dropout: the copies agree, so R-Drop's loss is the plain one at any weight
    plain = kd.loss(tiny_model, dict(enc), y, idx)
    rdrop = rdrop_loss(tiny_model, dict(enc), y, alpha=5.0, loss_and_logits=with_teacher)
    assert rdrop.item() == pytest.approx(plain.item(), rel=1e-5)
    tiny_model.train()
    torch.manual_seed(1)
    low = rdrop_loss(tiny_model, dict(enc), y, alpha=1e-9, loss_and_logits=with_teacher)
    torch.manual_seed(1)
    high = rdrop_loss(tiny_model, dict(enc), y, alpha=10.0, loss_and_logits=with_teacher)
    assert high.item() > low.item()  # the same two masks: the KL between them is positive
    seen = []
    plain_forward = tiny_model.forward
    tiny_model.forward = lambda *a, **kw: seen.append(kw["input_ids"].shape[0]) or plain_forward(*a, **kw)
    stats = fine_tune(tiny_model, tokenizer, texts=texts, labels=labels, seed=0, lr=1e-3, progress=False,
                      cfg=TrainConfig(epochs=1, batch_size=8, max_length=48, rdrop=1.0), distill=kd)
    assert max(seen) == 16 and math.isfinite(stats["loss_last"])  # each batch twice, through the teacher's loss


def test_rdrop_is_refused_where_it_is_not_built(variant_of):
    on = TrainConfig(epochs=2, batch_size=8, max_length=64, lr=1e-3, rdrop=1.0)
    assert variant_of(train=on).train.rdrop == 1.0  # a classifier: built, on its labels or a teacher's
    assert variant_of(train=on, distill=DistillConfig(teacher="micro")).train.rdrop == 1.0
    with pytest.raises(ConfigError, match=r"^invalid config: train.rdrop=1.0; accepted: null for model.arch=tfidf"):
        variant_of(train=on, model=ModelConfig(name="tfidf", arch="tfidf"))
