"""``paretobert SUBCOMMAND``: tools around finished sweeps (the sweeps themselves run with
``python -m paretobert``, Hydra's entry point).

- ``paretobert retime SWEEP_DIR [--rounds N]``: re-time every variant from cached artifacts
- ``paretobert report [SWEEP_DIR] [--objectives ...] [--group-by COL] [--markdown]``
- ``paretobert compare SWEEP_A SWEEP_B``: the same variants in two sweeps, on/off the frontier
- ``paretobert search [+experiment=NAME] [axis=a,b ...] [--budget N] [--sampler tpe|nsga2|random]``:
  a multi-objective search (Optuna) over a sweep's axes instead of its whole grid
- ``paretobert cluster [+experiment=NAME] [axis=a,b ...] --address HEAD:6379``: a sweep's grid
  on a Ray cluster, builds on the workers, timings on the reference machine (``timer`` resource)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from paretobert import compare, report, retime

__all__ = ["main"]

COMMANDS = ("retime", "report", "compare", "search", "cluster")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if args else 2
    if args[0] not in COMMANDS:
        print(f"error: unknown command {args[0]!r}; accepted: {' | '.join(COMMANDS)}", file=sys.stderr)
        return 2
    if args[0] in ("search", "cluster"):  # compose configs with Hydra (and Ray): imported only when asked for
        from paretobert import distributed, search

        return {"search": search.main, "cluster": distributed.main}[args[0]](args[1:])
    return {"retime": retime.main, "compare": compare.main, "report": report.main}[args[0]](args[1:])


if __name__ == "__main__":
    raise SystemExit(main())
