"""What a runtime is: how an exported model is prepared, opened and run (never what is measured).

A runtime (optimum-benchmark's *backend*) knows three things about the exported fp32 ONNX
model of a variant:

- :meth:`Runtime.prepare`: the artifacts it runs for the variant's precision (for ONNX
  Runtime: the fp32 graph as it is, or a cached int8 copy), keyed by the ``Variant``;
- :meth:`Runtime.open`: a fresh session on one model file with N intra-op threads;
- :meth:`Session.run`: logits for one feed (a batch of any size).

Scoring, timing and the record live elsewhere (``measure``, ``pipeline``); adding an engine
is adding one module here and one entry in ``runtimes.RUNTIMES``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from paretobert.store import Built
    from paretobert.variant import Variant

__all__ = ["Prepared", "Runtime", "Session"]


class Session(ABC):
    """One opened model: its input names and a call from feed to logits."""

    input_names: list[str]

    @abstractmethod
    def outputs(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every output of the model, by name, for one feed (``{input name: array}``)."""

    def run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        """Logits of one feed (any batch size)."""
        return self.outputs(feed)["logits"]


@dataclass(frozen=True)
class Prepared:
    """What a runtime runs for one variant: its model file(s), the key of the artifact that
    holds them (the evaluation cache is keyed by it) and the stage that built it, if any."""

    paths: list[Path]
    key: str
    stage: Built | None = None


class Runtime(ABC):
    """An inference engine for exported models."""

    name: ClassVar[str]

    @abstractmethod
    def version(self) -> str:
        """The engine's version (recorded; part of the machine id for ONNX Runtime)."""

    @abstractmethod
    def prepare(self, variant: Variant, *, exported: Path, export_key: str, cache_dir: Path) -> Prepared:
        """The artifacts this runtime runs for ``variant``, built (and cached) from the exported
        fp32 model ``exported`` whose key is ``export_key``."""

    @abstractmethod
    def open(self, path: Path, *, threads: int | None = None, spin: bool = True) -> tuple[Session, float]:
        """A fresh session on ``path`` with ``threads`` intra-op threads (None: all cores);
        returns (session, creation milliseconds). ``spin=False`` stops idle worker threads
        from spin-waiting (for several sessions that take turns)."""

    def describe(self) -> dict[str, Any]:
        """What the record says about the runtime."""
        return {"runtime": self.name, "runtime_version": self.version()}
