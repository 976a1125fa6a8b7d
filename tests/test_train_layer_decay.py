"""train.layer_decay: layer-wise lr decay (the top layer and the pooler at the body's lr, each
layer below at the factor times the one above, the embeddings at factor^layers; the head keeps
its own lr); 1 is the training without it (keyed only when set: tests/test_variant.py)."""

import copy

import pytest
import torch
from test_train import toy_run

from paretobert.config import TrainConfig
from paretobert.train import layer_depths, param_groups
from paretobert.variant import Variant


def test_depths_count_down_from_the_top_of_any_numbered_stack():
    bert = ["bert.embeddings.word_embeddings.weight", "bert.encoder.layer.0.attention.self.query.weight",
            "bert.encoder.layer.1.output.LayerNorm.bias", "bert.encoder.layer.2.output.dense.weight",
            "bert.pooler.dense.weight"]
    assert list(layer_depths(bert).values()) == [3, 2, 1, 0, 0]
    distil = ["distilbert.embeddings.position_embeddings.weight", "distilbert.transformer.layer.0.ffn.lin1.weight",
              "distilbert.transformer.layer.5.ffn.lin2.bias"]
    assert list(layer_depths(distil).values()) == [6, 5, 0]
    # a body with its layers renumbered after dropping (2 left): counts what it has
    assert layer_depths(["m.embeddings.w", "m.encoder.layer.1.w"]) == {"m.embeddings.w": 2, "m.encoder.layer.1.w": 0}
    assert layer_depths(["m.embeddings.w", "m.dense.w"]) == {"m.embeddings.w": 0, "m.dense.w": 0}  # no stack: flat


def test_each_body_parameter_learns_at_its_depths_lr_and_the_head_at_its_own(tiny_model):
    lr = {}
    for g in param_groups(tiny_model, lr=1e-4, weight_decay=0.01, head_lr_scale=20.0, layer_decay=0.5):
        for p in g["params"]:
            lr[id(p)] = g["lr"], g["weight_decay"]
    named = dict(tiny_model.named_parameters())
    assert len(lr) == len(named)  # every parameter in exactly one group
    want = {"bert.embeddings.word_embeddings.weight": (2.5e-5, 0.01), "bert.embeddings.LayerNorm.weight": (2.5e-5, 0.0),
            "bert.encoder.layer.0.attention.self.query.weight": (5e-5, 0.01),
            "bert.encoder.layer.0.attention.self.query.bias": (5e-5, 0.0),
            "bert.encoder.layer.1.output.dense.weight": (1e-4, 0.01), "bert.pooler.dense.weight": (1e-4, 0.01),
            "classifier.weight": (2e-3, 0.01), "classifier.bias": (2e-3, 0.0)}
    for name, (rate, wd) in want.items():
        assert lr[id(named[name])] == (pytest.approx(rate), wd), name
    # without it: the groups (and their order: a snapshot's optimizer state) of the loop before
    plain = param_groups(tiny_model, lr=1e-4, weight_decay=0.01, head_lr_scale=20.0)
    assert [(g["lr"], g["weight_decay"]) for g in plain] == [(1e-4, 0.01), (1e-4, 0.0), (2e-3, 0.01), (2e-3, 0.0)]


def test_the_embeddings_barely_move_under_a_tiny_factor(tiny_model):
    runs = {}
    for decay in (None, 1e-6):
        model = copy.deepcopy(tiny_model)
        start = model.bert.embeddings.word_embeddings.weight.detach().clone()
        top = model.bert.encoder.layer[-1].output.dense.weight.detach().clone()
        stats = toy_run(model, layer_decay=decay, validate=False)
        runs[decay] = ((model.bert.embeddings.word_embeddings.weight - start).abs().max().item(),
                       (model.bert.encoder.layer[-1].output.dense.weight - top).abs().max().item(), stats)
    assert runs[None][0] > 1e-4 and runs[1e-6][0] < 1e-7  # lr x 1e-18 at depth 3 (Adam's step ~ lr)
    assert runs[1e-6][1] == pytest.approx(runs[None][1], rel=0.5)  # the top layer learns at lr either way
    assert runs[1e-6][2]["layer_decay"] == 1e-6 and "layer_decay" not in runs[None][2]


def test_a_factor_of_one_is_the_training_without_it(variant_of):
    """(keyed only when set, bad factors: tests/test_variant.py, beside train.ema)"""
    today = variant_of()
    d = today.to_dict()
    d["train"]["layer_decay"] = 1.0  # every layer at lr: the same training
    one = Variant.from_dict(d)
    key = dict(data_fingerprint="d", source="pretrained", lr=1e-4)
    assert one.train.layer_decay is None
    assert one.hash == today.hash and one.train_key(**key) == today.train_key(**key)
    assert TrainConfig(layer_decay=1).layer_decay is None and isinstance(TrainConfig(layer_decay=0.8).layer_decay, float)


def test_a_model_without_a_body_prefix_learns_at_one_lr():
    m = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 2))
    groups = param_groups(m, lr=1e-3, weight_decay=0.0, layer_decay=0.5)
    assert {g["lr"] for g in groups} == {1e-3}
