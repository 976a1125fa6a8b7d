"""Hydra callback: build the report of a sweep when the multirun ends."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from paretobert.frontier import parse_objectives
from paretobert.report import write_report

__all__ = ["ReportCallback"]

log = logging.getLogger(__name__)


class ReportCallback(Callback):
    def __init__(self, objectives: list[str] | None = None, group_by: str | None = None) -> None:
        self.objectives = list(objectives or ["accuracy:max", "latency_p50_ms:min"])
        self.group_by = group_by

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            out = write_report(sweep_dir, objectives=parse_objectives(self.objectives), group_by=self.group_by)
        except Exception as e:  # noqa: BLE001 - a report failure must not hide the results
            log.error("report for %s failed: %s", sweep_dir, e)
            return
        print(f"sweep report: {out['results']}  {out['frontier']}  {out['plot']}")
