"""Checks of a valid config against this machine and its disk, run once at the entry point
before any work: the cores ``runtime.threads`` asks for, the paths a config names, the preset
files it refers to, and whether local weights fit the preset's shape. (Validation of values
is pure and lives in :mod:`paretobert.config`, so records load on any machine.)"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from paretobert.config import ENCODER_ARCHES, Config, ConfigError, load_model_preset, model_presets

__all__ = ["check", "check_arch", "check_model_path"]

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                "pytorch_model.bin.index.json")
# config.json key -> ModelConfig field
SHAPE = (("num_hidden_layers", "layers"), ("hidden_size", "hidden"), ("num_attention_heads", "heads"),
         ("intermediate_size", "intermediate"))
# DistilBERT's config.json names its shape its own way
SHAPE_OF_TYPE = {"distilbert": (("n_layers", "layers"), ("dim", "hidden"), ("n_heads", "heads"),
                                ("hidden_dim", "intermediate"))}


def _fail(key: str, value: Any, expected: str) -> None:
    raise ConfigError(f"invalid config: {key}={value!r}; accepted: {expected}")


def _readable(key: str, value: str, *, kind: str) -> Path:
    p = Path(value).expanduser()
    if not p.exists():
        _fail(key, value, f"an existing {kind} (nothing at {p})")
    if kind == "file" and not p.is_file():
        _fail(key, value, f"a file ({p} is a directory)")
    if kind == "directory" and not p.is_dir():
        _fail(key, value, f"a directory ({p} is a file)")
    if not os.access(p, os.R_OK) or (p.is_dir() and not os.access(p, os.X_OK)):
        _fail(key, value, f"a readable {kind} (no read permission on {p})")
    return p


def _same_type(a: str, b: str) -> bool:
    """One model_type spelt either way (config.json's ``deberta-v2``, ``big_bird``)."""
    return a.replace("_", "-") == b.replace("_", "-")


def check_arch(conf: Config) -> None:
    """``model.arch``: tfidf, or a model_type this transformers knows (an encoder it can build
    a sequence-classification or QA head on, from weights or at random init)."""
    arch = conf.model.arch
    if arch == "tfidf":
        return
    from transformers import CONFIG_MAPPING

    if not any(_same_type(arch, k) for k in CONFIG_MAPPING):
        import transformers

        _fail("model.arch", arch, f"a model_type transformers {transformers.__version__} knows (config.json's "
                                  f"model_type), e.g. {' | '.join(ENCODER_ARCHES)}")


def check_model_path(conf: Config) -> None:
    """``model.path``: a readable directory with a usable ``config.json``, weights, and the
    preset's architecture and shape (a mismatch would mislabel every result)."""
    m = conf.model
    if not m.path:
        return
    d = _readable("model.path", m.path, kind="directory")
    cfg_file = d / "config.json"
    if not cfg_file.is_file():
        _fail("model.path", m.path, f"a model directory with config.json (none in {d})")
    try:
        cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        _fail("model.path", m.path, f"a model directory with a readable config.json ({cfg_file}: {e})")
    if not isinstance(cfg, dict) or "model_type" not in cfg:
        _fail("model.path", m.path, f"a config.json naming its model_type ({cfg_file})")
    if not any((d / f).is_file() for f in WEIGHT_FILES):
        _fail("model.path", m.path, f"a model directory with weights ({' or '.join(WEIGHT_FILES[:2])} in {d})")
    kind = str(cfg["model_type"])
    if _same_type(kind, m.arch) is False:
        _fail("model.path", m.path, f"a {m.arch} model for model.arch={m.arch} (config.json says model_type="
                                    f"{kind!r}; set model.arch={kind})")
    shape = SHAPE_OF_TYPE.get(kind.replace("_", "-"), SHAPE)
    wrong = [(k, f, cfg[k], getattr(m, f)) for k, f in shape if k in cfg and cfg[k] != getattr(m, f)]
    if wrong:
        have = ", ".join(f"{k}={v}" for k, _, v, _ in wrong)
        fix = " ".join(f"model.{f}={v}" for _, f, v, _ in wrong)
        _fail("model.path", m.path, f"weights of the preset's shape (model={m.name}: "
              + ", ".join(f"{f}={want}" for _, f, _, want in wrong) + f"); these have {have}: set {fix}")


def check(conf: Config) -> None:
    """Raise :class:`ConfigError` (one line: key, value, what is expected) when ``conf``
    cannot run on this machine as it is."""
    cores = os.cpu_count() or 1
    if conf.runtime.threads > cores:
        _fail("runtime.threads", conf.runtime.threads, f"an integer in 1..{cores} (this machine's cores)")
    ds = conf.dataset
    if ds.path:
        _readable("dataset.path", ds.path, kind="file or directory")
    if ds.test_path:
        _readable("dataset.test_path", ds.test_path, kind="file")
    if conf.distill.teacher is not None:
        if conf.distill.teacher not in model_presets():
            _fail("distill.teacher", conf.distill.teacher, " | ".join(model_presets()))
        teacher = load_model_preset(conf.distill.teacher)
        if teacher.arch == "tfidf":
            _fail("distill.teacher", conf.distill.teacher, "a transformer preset")
        if conf.distill.layers and max(conf.distill.layers) >= teacher.layers:
            _fail("distill.layers", conf.distill.layers, f"indices below the teacher's {teacher.layers} layers")
    check_arch(conf)
    check_model_path(conf)
