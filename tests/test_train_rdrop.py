"""train.rdrop: R-Drop (two dropout masks of each batch in one forward, their mean cross-entropy
plus the weight times their symmetric KL); null is policy 7's (on, with a weight average, for a
pretrained body's long budget; off elsewhere, keeping old keys: tests/test_variant.py), 0 is off;
with a teacher's soft labels, their loss of both copies; rejected where it is not built (QA,
TF-IDF: tests/test_config.py too)."""

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
    with pytest.raises(ConfigError, match=r"^invalid config: train.rdrop=1.0; accepted: null or 0 for model.arch=tfidf"):
        variant_of(train=on, model=ModelConfig(name="tfidf", arch="tfidf"))
    off = TrainConfig(epochs=2, batch_size=8, max_length=64, lr=1e-3, rdrop=0, ema=0)
    assert variant_of(train=off, model=ModelConfig(name="tfidf", arch="tfidf")).train.rdrop == 0  # 0 is off


def test_the_policy_turns_rdrop_and_the_average_on_for_a_new_heads_long_budget_only():
    from paretobert import train as training

    long, short = training.LARGE_BUDGET_STEPS + 1, training.LARGE_BUDGET_STEPS
    sst2 = training.regularisation(TrainConfig(), new_head=True, steps=12255)
    assert (sst2.rdrop, sst2.ema, sst2.ema_correction) == (1.0, 0.9998, "bias")  # the decay measured on SST-2
    on = training.regularisation(TrainConfig(), new_head=True, steps=long)
    assert (on.rdrop, on.ema, on.ema_correction) == (1.0, 0.9995, "bias")  # about its last 40%, not the whole run
    assert on.ema_start == 0.0 and on.lr is None  # nothing else changes
    # a budget at the bound, or a body that is not a pretrained one with a new head: as before
    for cfg in (training.regularisation(TrainConfig(), new_head=True, steps=short),
                training.regularisation(TrainConfig(), new_head=False, steps=long)):
        assert (cfg.rdrop, cfg.ema, cfg.ema_correction) == (None, None, "cap")
    # 0 is off on any budget and resolves to null (the key of a run without them)
    off = training.regularisation(TrainConfig(rdrop=0, ema=0), new_head=True, steps=long)
    assert (off.rdrop, off.ema) == (None, None)
    # a set value is kept; each setting is resolved on its own
    mine = training.regularisation(TrainConfig(rdrop=0.5, ema=0.999), new_head=True, steps=long)
    assert (mine.rdrop, mine.ema, mine.ema_correction) == (0.5, 0.999, "cap")
    half = training.regularisation(TrainConfig(rdrop=0), new_head=True, steps=long)
    assert (half.rdrop, half.ema, half.ema_correction) == (None, 0.9995, "bias")
    assert training.regularisation(TrainConfig(ema=0.999), new_head=False, steps=long).ema == 0.999


def test_a_long_budget_trains_the_recipe_into_the_recipes_checkpoint_and_a_short_one_keeps_its_key(
        tmp_path, variant_of, tokenizer, monkeypatch, caplog):
    """Through the fine-tune stage, on a pretrained checkpoint (``model.path``) with a new head:
    the default on a long budget is the checkpoint ``train.rdrop=1 train.ema=<its decay>
    train.ema_correction=bias`` asks for by hand, and trains with them; on a short budget null,
    0 and the default share one checkpoint, trained without them."""
    import dataclasses

    from transformers import BertConfig, BertModel

    from paretobert import measure
    from paretobert import train as training
    from paretobert.models import resolve_source
    from paretobert.stages import fine_tune as stage_fine_tune

    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=128)).save_pretrained(tmp_path / "body")
    tokenizer.save_pretrained(tmp_path / "body")
    seen = []

    def fake(model, tok, *, cfg, lr, **kw):
        seen.append((cfg.rdrop, cfg.ema, cfg.ema_correction))
        return {"lr": lr, "curve": [], "stopped": "budget", "seconds": 1.0, "epochs": 1.0, "warning": None,
                **({"rdrop": cfg.rdrop} if cfg.rdrop else {})}

    monkeypatch.setattr(training, "fine_tune", fake)
    body = ModelConfig(name="my-bert", arch="bert", path=str(tmp_path / "body"), layers=2, hidden=32, heads=2,
                       intermediate=64, max_position=128)
    train = TrainConfig(epochs=1, batch_size=8, max_length=64, lr=1e-3)
    v = variant_of(model=body, weights="auto", train=train)

    def run(vv):
        split = measure.split_of(vv, tmp_path, False)
        src = resolve_source(vv.model, weights=vv.weights, cache_dir=tmp_path / "cache", allow_network=False)
        assert src.pretrained
        return stage_fine_tune(vv, split, src, tmp_path / "cache", progress=False)

    def with_(**kw):
        return dataclasses.replace(v, train=dataclasses.replace(v.train, **kw))

    short = run(v)
    assert seen == [(None, None, "cap")] and "rdrop" not in short.meta["train"]
    assert run(with_(rdrop=0, ema=0)).key == short.key and len(seen) == 1  # 0 is off: the same checkpoint
    monkeypatch.setattr(training, "LARGE_BUDGET_STEPS", 0)  # every budget is long
    with caplog.at_level("INFO", logger="paretobert.stages"):
        long = run(v)
    decay = seen[1][1]
    assert f"R-Drop (train.rdrop=1, about twice a step's compute) and the bias-corrected {decay:g} average" in caplog.text
    assert seen[1:] == [(1.0, decay, "bias")] and 0 < decay < 1 and long.key != short.key
    assert long.meta["train"]["rdrop"] == 1.0
    by_hand = run(with_(rdrop=1.0, ema=decay, ema_correction="bias"))
    assert by_hand.reused and by_hand.key == long.key
    assert run(with_(rdrop=0, ema=0)).key == short.key  # off by hand on a long budget
    assert len(seen) == 2


def test_the_long_budget_average_spans_about_the_last_40_percent_of_any_budget():
    from paretobert.train import long_budget_decay

    assert [long_budget_decay(s) for s in (5001, 7500, 12255, 20000, 100000)] == [
        0.9995, 0.9997, 0.9998, 0.9999, 0.99997]
    for steps in (5001, 7500, 12255, 20000, 100000):
        horizon = 1 / (1 - long_budget_decay(steps))  # steps of the average's e-folding
        assert 0.3 * steps < horizon < 0.7 * steps
