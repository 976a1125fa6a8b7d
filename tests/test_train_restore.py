"""train.restore: which weights a fine-tune with a validation split ends with (the last, unless
an earlier evaluation was significantly better; or the best evaluation's, the policy before),
keyed (best, what every earlier record did, is unhashed), moot without validation, pinned by
the committed experiments. The loop itself: tests/test_train.py."""

import pytest

from paretobert.config import ConfigError, TrainConfig
from paretobert.variant import Variant


def test_significant_is_another_training_and_best_keeps_old_hashes_and_keys(variant_of):
    new = variant_of()
    assert new.train.restore == "significant"  # the default
    d = new.to_dict()
    d["train"]["restore"] = "best"
    best = Variant.from_dict(d)
    del d["train"]["restore"]  # a record from before train.restore
    old = Variant.from_dict(d)
    assert old.train.restore == "best" and old.hash == best.hash
    key = dict(data_fingerprint="d", source="pretrained", lr=1e-4)
    assert old.train_key(**key) == best.train_key(**key)
    assert new.hash != best.hash and new.train_key(**key) != best.train_key(**key)
    with pytest.raises(ConfigError, match=r"^invalid config: train.restore='first'; accepted: significant \| best$"):
        TrainConfig(restore="first")


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
