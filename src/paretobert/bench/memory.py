"""Resident memory of this process (Linux /proc; ``resource`` elsewhere). Never imports Hydra."""

from __future__ import annotations

import resource
import sys
from pathlib import Path

__all__ = ["peak_rss_mb", "reset_peak_rss", "rss_mb"]

_STATUS = Path("/proc/self/status")


def _status_kb(field: str) -> float | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def rss_mb() -> float | None:
    """Current resident set size in MB (None where /proc is absent)."""
    kb = _status_kb("VmRSS")
    return None if kb is None else kb / 1024.0


def peak_rss_mb() -> float:
    """Peak resident set size in MB since the process started or since :func:`reset_peak_rss`."""
    kb = _status_kb("VmHWM")
    if kb is None:  # ru_maxrss: kB on Linux, bytes on macOS
        r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        kb = r / 1024.0 if sys.platform == "darwin" else float(r)
    return kb / 1024.0


def reset_peak_rss() -> bool:
    """Reset the peak to the current RSS (Linux >= 4.0: ``5`` into ``/proc/self/clear_refs``);
    False where that is not possible (the peak then covers the whole process life)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False
