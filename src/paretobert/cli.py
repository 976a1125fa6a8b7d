"""``paretobert SUBCOMMAND``: tools around finished sweeps (the sweeps themselves run with
``python -m paretobert``, Hydra's entry point).

- ``paretobert retime SWEEP_DIR [--rounds N]``: re-time every variant from cached artifacts
- ``paretobert report [SWEEP_DIR] [--objectives ...] [--group-by COL] [--markdown]``
- ``paretobert compare SWEEP_A SWEEP_B``: the same variants in two sweeps, on/off the frontier
- ``paretobert search [+experiment=NAME] [axis=a,b ...] [--budget N] [--sampler tpe|nsga2|random]``:
  a multi-objective search (Optuna) over a sweep's axes instead of its whole grid
- ``paretobert cluster [+experiment=NAME] [axis=a,b ...] --address HEAD:6379``: a sweep's grid
  on a Ray cluster, builds on the workers, timings on the reference machine (``timer`` resource)
- ``paretobert pick SWEEP_DIR [--max-p50-ms X] [--max-p99-ms X] [--max-mb X] [--min-accuracy A] [--json]``:
  the variant to ship under a budget, with its runners-up and why the others lost
- ``paretobert export SWEEP_DIR VARIANT_ID OUT_DIR`` (or ``--pick OUT_DIR`` with pick's budget flags):
  a self-contained bundle of exactly what was measured
- ``paretobert predict OUT_DIR "text" ... | --file texts.txt [--json]``: labels and probabilities
  from a bundle (numpy, tokenizers and the runtime only)
- ``paretobert cache [--prune] [--prune-snapshots]``: the artifact cache per kind, and what
  killed builds left in it (deleted unless a build of that key is running)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from paretobert import cache, compare, pick, report, retime

__all__ = ["main"]

COMMANDS = ("retime", "report", "compare", "search", "cluster", "pick", "export", "predict", "cache")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if args else 2
    if args[0] not in COMMANDS:
        print(f"error: unknown command {args[0]!r}; accepted: {' | '.join(COMMANDS)}", file=sys.stderr)
        return 2
    if args[0] in ("export", "predict"):
        from paretobert import bundle

        return {"export": bundle.export_main, "predict": bundle.predict_main}[args[0]](args[1:])
    if args[0] in ("search", "cluster"):  # compose configs with Hydra (and Ray): imported only when asked for
        from paretobert import distributed, search

        return {"search": search.main, "cluster": distributed.main}[args[0]](args[1:])
    return {"retime": retime.main, "compare": compare.main, "report": report.main, "pick": pick.main,
            "cache": cache.main}[args[0]](args[1:])


if __name__ == "__main__":
    raise SystemExit(main())
