"""Measurement primitives: the timing loop and process memory. Never imports Hydra."""

from paretobert.bench.timing import LatencyStats, summarize, time_loop

__all__ = ["LatencyStats", "summarize", "time_loop"]
