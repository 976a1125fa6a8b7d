"""What a runtime is: how an exported model is prepared, opened and run (never what is measured).

A runtime (optimum-benchmark's *backend*) knows three things about a variant's exported model:

- :meth:`Runtime.prepare`: the artifacts it runs for the variant's precision (for ONNX
  Runtime: the fused fp32 graph, a dynamic or a calibrated static int8 copy; for OpenVINO:
  its IR, NNCF's int8), each cached under a key from the ``Variant``;
- :meth:`Runtime.open`: a fresh session on one model file with N intra-op threads at a precision;
- :meth:`Session.outputs`: named outputs for one feed (a batch of any size).

:meth:`Runtime.check` says, before any work, why this machine cannot run a variant (bf16 on a
CPU without bf16 units): a variant fails with that reason, never silently at another precision.
Scoring, timing and the record live elsewhere (``measure``, ``pipeline``); adding an engine
is adding one module here and one entry in ``runtimes.RUNTIMES``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from paretobert.store import Built
    from paretobert.variant import Variant

__all__ = ["BuildInputs", "Prepared", "Runtime", "Session", "Unsupported"]

Feed = dict[str, np.ndarray]


class Unsupported(RuntimeError):
    """A runtime x precision this machine or engine cannot run, with the reason."""


class Session(ABC):
    """One opened model: its input names, a call from feed to outputs, what actually ran."""

    input_names: list[str]
    executed: dict[str, Any]

    @abstractmethod
    def outputs(self, feed: Feed) -> dict[str, np.ndarray]:
        """Every output of the model, by name, for one feed (``{input name: array}``)."""

    def run(self, feed: Feed) -> np.ndarray:
        """Logits of one feed (any batch size)."""
        return self.outputs(feed)["logits"]


@dataclass
class BuildInputs:
    """What a runtime may build its artifacts from (given by the pipeline)."""

    exported: Built  # the ONNX export (fused when export.optimize)
    raw_onnx: Callable[[], Built]  # the unfused ONNX export, built on first call
    calibration: Callable[[list[str]], list[Feed]]  # input names -> feeds of calibration train texts
    data_fingerprint: str
    cache_dir: Path


@dataclass(frozen=True)
class Prepared:
    """What a runtime runs for one variant: its model file(s), the key of the artifact that
    holds them (the evaluation cache is keyed by it) and the stage that built it, if any."""

    paths: list[Path]
    key: str
    stage: Built | None = None
    info: dict[str, Any] = field(default_factory=dict)


class Runtime(ABC):
    """An inference engine for exported models."""

    name: ClassVar[str]

    @abstractmethod
    def version(self) -> str:
        """The engine's version (recorded, and part of its artifacts' keys)."""

    @abstractmethod
    def check(self, variant: Variant) -> None:
        """Raise :class:`Unsupported` when this machine cannot run ``variant`` as asked."""

    @abstractmethod
    def prepare(self, variant: Variant, inputs: BuildInputs) -> Prepared:
        """The artifacts this runtime runs for ``variant`` at its precision, built (and cached)."""

    @abstractmethod
    def open(self, path: Path, *, threads: int | None = None, spin: bool = True,
             precision: str = "fp32") -> tuple[Session, float]:
        """A fresh session on ``path`` with ``threads`` intra-op threads (None: all cores) at
        ``precision``; returns (session, creation milliseconds). ``spin=False`` stops idle
        worker threads from spin-waiting (for several sessions that take turns)."""

    def describe(self) -> dict[str, Any]:
        """What the record says about the runtime."""
        return {"runtime": self.name, "runtime_version": self.version()}
