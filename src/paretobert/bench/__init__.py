"""Measurement: ORT sessions and the timing loop. Never imports Hydra."""

from paretobert.bench.session import make_session
from paretobert.bench.timing import LatencyStats, summarize, time_loop

__all__ = ["LatencyStats", "make_session", "summarize", "time_loop"]
