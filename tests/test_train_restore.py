"""train.restore: which weights a fine-tune with a validation split ends with (the last, unless
an earlier evaluation was significantly better; or the best evaluation's, the policy before),
keyed (best, what every earlier record did, is unhashed), moot without validation, pinned by
the committed experiments. The loop itself: tests/test_train.py."""

import pytest

from paretobert.config import ConfigError, TrainConfig
from paretobert.variant import Variant


@pytest.mark.parametrize("leaf, new, before, bad, accepted", [
    ("dropout", "fast", "torch", "bernoulli", r"fast \| torch"),  # train.dropout (2026-12-04)
    ("restore", "significant", "best", "first", r"significant \| best"),  # train.restore (2026-12-05)
])
def test_a_new_training_default_is_another_training_and_the_old_value_keeps_old_keys(variant_of, leaf, new, before,
                                                                                     bad, accepted):
    today = variant_of()
    assert getattr(today.train, leaf) == new  # the default
    d = today.to_dict()
    d["train"][leaf] = before
    pinned = Variant.from_dict(d)
    del d["train"][leaf]  # a record from before the setting existed
    old = Variant.from_dict(d)
    assert getattr(old.train, leaf) == before and old.hash == pinned.hash
    key = dict(data_fingerprint="d", source="pretrained", lr=1e-4)
    assert old.train_key(**key) == pinned.train_key(**key)
    assert today.hash != pinned.hash and today.train_key(**key) != pinned.train_key(**key)
    with pytest.raises(ConfigError, match=rf"^invalid config: train.{leaf}='{bad}'; accepted: {accepted}$"):
        TrainConfig(**{leaf: bad})


def test_without_a_validation_split_it_is_moot(variant_of):
    d = variant_of().to_dict()
    d["train"]["validation_size"] = 0.0
    a = Variant.from_dict({**d, "train": {**d["train"], "restore": "significant"}})
    b = Variant.from_dict({**d, "train": {**d["train"], "restore": "best"}})
    key = dict(data_fingerprint="d", source="pretrained", lr=1e-4)
    assert a.hash == b.hash and a.train_key(**key) == b.train_key(**key)


def test_the_committed_experiments_keep_the_restore_they_were_measured_with():
    from test_config import _compose

    for name in ("qa-reader", "runtimes", "runtimes-exit", "compression", "livedoor", "livedoor-pretrained",
                 "livedoor-newvocab", "design-card-scratch"):
        assert _compose(f"+experiment={name}").train.restore == "best", name
    assert _compose().train.restore == "significant"
