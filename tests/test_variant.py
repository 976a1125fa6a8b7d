from __future__ import annotations

import dataclasses

import pytest

from paretobert.config import Config, ConfigError, ModelConfig, RuntimeConfig, TrainConfig
from paretobert.variant import Variant, content_hash


def _variant(**kw) -> Variant:
    return Variant.from_config(dataclasses.replace(Config(), **kw))


def test_content_hash_is_order_independent_and_sensitive():
    assert content_hash({"a": 1, "b": 2}) == content_hash({"b": 2, "a": 1})
    assert content_hash({"a": 1}) != content_hash({"a": 2})
    assert len(content_hash({"a": 1}, length=8)) == 8


def test_names_are_readable_and_ids_unique():
    v = _variant(model=ModelConfig(name="mini", layers=4, hidden=256, heads=4, intermediate=1024),
                 quant=True, seq_len=64, weights="scratch")
    assert v.name == "bbc-mini-scratch-int8-s64-t1"
    assert v.variant_id.startswith(v.name + "-")
    other_seed = dataclasses.replace(v, seed=1)
    assert other_seed.name == v.name and other_seed.variant_id != v.variant_id  # same name, other hash


def test_one_checkpoint_serves_every_quant_and_seq_len():
    keys = {_variant(quant=q, seq_len=s, runtime=RuntimeConfig(threads=1)).train_key(
        data_fingerprint="d", source="scratch", lr=1e-3) for q in (True, False) for s in (64, 128)}
    assert len(keys) == 1
    v = _variant()
    assert v.train_key(data_fingerprint="d", source="scratch", lr=1e-3) != v.train_key(data_fingerprint="e", source="scratch", lr=1e-3)
    assert v.train_key(data_fingerprint="d", source="scratch", lr=1e-3) != v.train_key(data_fingerprint="d", source="pip:x", lr=1e-3)
    assert v.train_key(data_fingerprint="d", source="s", lr=1e-3) != dataclasses.replace(v, seed=3).train_key(
        data_fingerprint="d", source="s", lr=1e-3)
    # the resolved learning rate is part of the key: a changed default retrains
    assert v.train_key(data_fingerprint="d", source="s", lr=1e-3) != v.train_key(data_fingerprint="d", source="s",
                                                                                   lr=3e-4)


def test_export_and_quant_keys_follow_their_inputs():
    v = _variant()
    assert v.export_key(train_key="a") != v.export_key(train_key="b")
    assert _variant(quant=True, seq_len=64).quant_key(export_key="e") == _variant(quant=True).quant_key(export_key="e")


def test_null_train_length_follows_seq_len_and_truncation_is_keyed():
    from paretobert.config import TrainConfig

    per_len = TrainConfig(max_length=None)
    a, b = _variant(train=per_len, seq_len=64), _variant(train=per_len, seq_len=128)
    assert (a.train_length, b.train_length) == (64, 128)
    key = dict(data_fingerprint="d", source="s", lr=1e-3)
    assert a.train_key(**key) != b.train_key(**key)
    assert _variant(seq_len=64).train_length == 128  # the default trains at 128 for every seq_len
    ht = _variant(truncation="head+tail")
    assert ht.train_key(**key) != _variant().train_key(**key) and ht.name.endswith("-s128-ht-t1")


def test_distillation_and_drop_enter_the_train_key():
    from paretobert.config import DistillConfig, DropConfig

    key = dict(data_fingerprint="d", source="s", lr=1e-3)
    plain = _variant()
    kd = _variant(distill=DistillConfig(teacher="minilm-l6", layers=[1, 3, 5]))
    assert kd.name == "bbc-minilm-l6-kd135-fp32-s128-t1"
    assert kd.train_key(**key, teacher_key="t1") != kd.train_key(**key, teacher_key="t2") != plain.train_key(**key)
    dropped = _variant(drop=DropConfig(strategy="top", keep=3))
    assert dropped.name == "bbc-minilm-l6-top3-fp32-s128-t1" and dropped.train_key(**key) != plain.train_key(**key)


def test_a_resolved_head_scale_enters_the_train_key_only_where_it_differs():
    key = dict(data_fingerprint="d", source="s", lr=1.25e-4)
    v = _variant()
    assert v.train_key(**key, head_scale=v.train.head_lr_scale) == v.train_key(**key)  # as set: the old key
    assert v.train_key(**key, head_scale=5.0) != v.train_key(**key)  # policy 6's medium: its own checkpoint


def test_settings_added_later_keep_old_hashes_at_their_default():
    from paretobert.config import BenchConfig, TrainConfig
    from paretobert.variant import RECIPE

    v = _variant(train=TrainConfig(epochs=2, validation_size=0.0, head_lr_scale=1.0, fused=False))  # the training then
    old = v.to_dict()
    for key in ("batch_sizes", "isolate"):
        del old["bench"][key]
    for key in ("validation_size", "validation_max", "patience", "eval_every", "max_minutes",
                "head_lr_scale"):  # the policy
        del old["train"][key]
    del old["exit"]["pooling"]
    for key in ("calibration_size", "calibrate_method"):  # the runtime axis
        del old["quantize"][key]
    del old["runtime"]["name"], old["precision"]
    del old["weights_from"]  # the size ladder
    for key in ("doc_stride", "max_answer_length", "max_train_articles"):  # the QA task
        del old["dataset"][key]
    del old["train"]["windows"]  # training windows
    del old["train"]["fused"]  # the fused optimizer
    del old["train"]["restore"]  # which weights a fine-tune keeps (moot without validation)
    del old["train"]["ema"]  # a moving average of the weights (off: null)
    del old["train"]["ema_correction"], old["train"]["ema_start"]  # and how it averages
    del old["train"]["layer_decay"]  # layer-wise lr decay (off: null)
    del old["train"]["rdrop"]  # R-Drop (off: null)
    assert v.hash == content_hash({"variant": old, "recipe": RECIPE})  # results recorded before them stay valid
    assert v.quant_key(export_key="e") == content_hash(
        {"export": "e", "quantize": old["quantize"], "v": __import__("paretobert.variant").variant.library_versions()})
    assert _variant(bench=BenchConfig(batch_sizes=[1, 8])).hash != v.hash
    assert _variant(bench=BenchConfig(isolate=True)).hash != v.hash
    assert _variant(train=TrainConfig(epochs=2, validation_size=0.0, head_lr_scale=1.0, windows=2)).hash != v.hash
    assert _variant(weights="selected", weights_from="minilm-l6").hash != _variant(weights="selected").hash
    assert _variant().hash != v.hash  # today's default policy (validation, early stopping) is another training


@pytest.mark.parametrize("leaf, value, bad, accepted", [
    ("ema", 0.999, (1, 1.5, -0.1, True, "x"),
     r"null \(the policy's\) \| 0 \(off\) \| a decay strictly between 0 and 1 \(e.g. 0.999\), or 1 with "
     r"train.ema_correction=bias"),
    ("layer_decay", 0.8, (0, -0.5, 1.5, True, "x"), r"null \| a factor in \(0, 1\] \(e.g. 0.8\)"),
    ("rdrop", 1.0, (-1.0, True, "x"), r"null \(the policy's\) \| 0 \(off\) \| a weight > 0 \(e.g. 1.0\)"),
])
def test_an_opt_in_training_setting_is_keyed_only_when_set_and_bad_values_are_one_line_errors(variant_of, leaf, value,
                                                                                              bad, accepted):
    today = variant_of()
    assert getattr(today.train, leaf) is None  # the default (the policy's, resolved where it is trained)
    d = today.to_dict()
    d["train"][leaf] = value
    on = Variant.from_dict(d)
    del d["train"][leaf]  # a record from before the setting existed
    old = Variant.from_dict(d)
    key = dict(data_fingerprint="d", source="pretrained", lr=1e-4)
    assert old.hash == today.hash and old.train_key(**key) == today.train_key(**key)
    assert on.hash != today.hash and on.train_key(**key) != today.train_key(**key)
    for b in bad:
        with pytest.raises(ConfigError, match=rf"^invalid config: train.{leaf}=.*; accepted: {accepted}$"):
            TrainConfig(**{leaf: b})


def test_a_bf16_moving_average_checkpoint_is_trained_again_after_the_autocast_fix(monkeypatch):
    """train.ema under bf16 scored its average with stale bf16 casts before the fix: only those
    checkpoints (and results) get another key; fp32 ones and runs without an average keep theirs."""
    from paretobert import variant as variant_mod
    from paretobert.config import TrainConfig

    key = dict(data_fingerprint="d", source="s", lr=1e-4)
    affected = _variant(train=TrainConfig(ema=0.999, precision="bf16"))
    spared = [_variant(train=TrainConfig(ema=0.999, precision="fp32")), _variant(train=TrainConfig(precision="bf16"))]
    assert variant_mod.train_fixes(affected.train) == {"ema_casts": 1}
    assert all(variant_mod.train_fixes(v.train) == {} for v in spared)
    before = {id(v): (v.train_key(**key), v.hash) for v in (affected, *spared)}
    monkeypatch.setattr(variant_mod, "train_fixes", lambda train: {})  # the keys as they were before the fix
    assert affected.train_key(**key) != before[id(affected)][0]
    assert affected.hash != before[id(affected)][1]  # its recorded results are stale too
    assert all((v.train_key(**key), v.hash) == before[id(v)] for v in spared)


def test_how_the_average_averages_is_keyed_only_with_an_average(variant_of):
    """train.ema_correction / train.ema_start: new settings at their defaults keep every key; set
    without train.ema they change nothing (and no key); with it they are another training."""
    today = variant_of()
    key = dict(data_fingerprint="d", source="pretrained", lr=1e-4)

    def with_train(**kw):
        d = today.to_dict()
        d["train"].update(kw)
        return Variant.from_dict(d)

    old = today.to_dict()
    del old["train"]["ema_correction"], old["train"]["ema_start"]  # a record from before them
    assert Variant.from_dict(old).train_key(**key) == today.train_key(**key)
    moot = with_train(ema_correction="bias", ema_start=0.5)  # no average: nothing to correct or start
    assert moot.hash == today.hash and moot.train_key(**key) == today.train_key(**key)
    capped = with_train(ema=0.999)
    keys = {capped.train_key(**key), with_train(ema=0.999, ema_correction="bias").train_key(**key),
            with_train(ema=0.999, ema_start=0.5).train_key(**key),
            with_train(ema=1.0, ema_correction="bias").train_key(**key)}
    assert len(keys) == 4 and today.train_key(**key) not in keys


@pytest.mark.parametrize("kw, message", [
    ({"ema": 1.0}, r"^invalid config: train.ema=1.0; accepted: .*or 1 with train.ema_correction=bias$"),
    ({"ema": 0.999, "ema_correction": "linear"}, r"^invalid config: train.ema_correction='linear'"),
    ({"ema": 0.999, "ema_start": 1.0}, r"^invalid config: train.ema_start=1.0; accepted: a fraction in \[0, 1\)$"),
    ({"ema_start": -0.1}, r"^invalid config: train.ema_start=-0.1"),
])
def test_bad_average_settings_are_one_line_errors(kw, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**kw)
    assert TrainConfig(ema=1.0, ema_correction="bias", ema_start=0.5).ema == 1.0  # the uniform average
