"""Multi-objective search over a sweep's axes instead of its full grid (Optuna).

The core is a plain loop over Optuna's ask/tell interface: each trial picks one value per
axis (categorical), ``evaluate`` returns the objective values of that variant (or None when
it failed: the trial is told FAIL). A combination already evaluated is never evaluated
again: the sampler is told its stored values and asked again, so ``budget`` counts distinct
variants, and every artifact behind them is reused from the cache anyway (trials that share
a fine-tune pay for it once: the checkpoint key does not depend on the timed axes).

Optuna directly, not ``hydra-optuna-sweeper``: its last release (1.2 / 1.3.0) pins
``optuna<3`` (2.10, 2021: no multi-objective TPE, unmaintained against NumPy 2), and a Hydra
sweeper would run each trial as a Hydra job with its own config composition but no way to
tell the sampler a repeated combination's stored values. No Hydra here: the caller composes
variants (:mod:`paretobert.cli`'s ``search``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from paretobert.frontier import Objective

__all__ = ["SAMPLERS", "SearchResult", "grid_size", "main", "run_search"]

log = logging.getLogger(__name__)

SAMPLERS = ("tpe", "nsga2", "random")


@dataclass
class SearchResult:
    """What a search evaluated: ``evaluated`` maps each distinct combination (axis -> value) to
    its objective values (None: failed), in evaluation order; ``asked`` counts trials."""

    evaluated: dict[tuple[tuple[str, Any], ...], list[float] | None] = field(default_factory=dict)
    asked: int = 0

    def combos(self) -> list[dict[str, Any]]:
        return [dict(k) for k in self.evaluated]


def grid_size(space: Mapping[str, Sequence[Any]]) -> int:
    n = 1
    for values in space.values():
        n *= len(values)
    return n


def _sampler(name: str, seed: int, budget: int):
    import optuna

    if name == "tpe":  # multi-objective TPE (MOTPE): a few random trials, then the model
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(4, budget // 5), multivariate=True)
    if name == "nsga2":  # generations small enough to evolve within the budget
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, budget // 6))
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"sampler={name!r}; accepted: {' | '.join(SAMPLERS)}")


def run_search(space: Mapping[str, Sequence[Any]], evaluate: Callable[[dict[str, Any]], Sequence[float] | None],
               objectives: Sequence[Objective], *, budget: int, sampler: str = "tpe", seed: int = 0,
               max_asks: int | None = None) -> SearchResult:
    """Evaluate at most ``budget`` distinct combinations of ``space`` (axis -> values), chosen
    by ``sampler``; stops early when the space is exhausted or after ``max_asks`` trials
    (default 20 x budget: a sampler that keeps proposing what it has seen has converged)."""
    import optuna

    if budget < 1:
        raise ValueError(f"budget={budget}: evaluate at least 1 variant")
    if any(len(v) == 0 for v in space.values()):
        raise ValueError("every axis of the search space needs at least one value")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    directions = ["maximize" if sense == "max" else "minimize" for _, sense in objectives]
    study = optuna.create_study(directions=directions, sampler=_sampler(sampler, seed, budget))
    # Optuna stores categorical choices as given: index them so any value (bool, None, str) is a choice
    choices = {axis: list(values) for axis, values in space.items()}
    out = SearchResult()
    budget = min(budget, grid_size(space))
    max_asks = max_asks or 20 * budget
    while len(out.evaluated) < budget and out.asked < max_asks:
        trial = study.ask()
        out.asked += 1
        combo = tuple((axis, vals[trial.suggest_categorical(axis, list(range(len(vals))))])
                      for axis, vals in choices.items())
        if combo not in out.evaluated:
            values = evaluate(dict(combo))
            out.evaluated[combo] = None if values is None else [float(v) for v in values]
            log.info("search %d/%d: %s -> %s", len(out.evaluated), budget, dict(combo), out.evaluated[combo])
        values = out.evaluated[combo]
        if values is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, values)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``paretobert search [OPTIONS] [+experiment=NAME] [key=value | axis=a,b,c ...]``."""
    import argparse
    import json
    import time
    from pathlib import Path

    from paretobert import compose
    from paretobert.config import ConfigError
    from paretobert.frontier import parse_objectives
    from paretobert.pipeline import run_variant
    from paretobert.report import write_report
    from paretobert.store import atomic_write_json

    ap = argparse.ArgumentParser(
        prog="paretobert search",
        description="Multi-objective search (Optuna) over a sweep's axes: evaluates a budget of distinct "
                    "variants instead of the whole grid, reusing every cached artifact and result; then "
                    "writes the sweep report (noise-aware frontier of all trials).")
    ap.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. +experiment=compression; axis=a,b,c adds an axis")
    budget = ap.add_mutually_exclusive_group()
    budget.add_argument("--budget", type=int, help="distinct variants to evaluate")
    budget.add_argument("--budget-fraction", type=float, default=0.4,
                        help="... as a fraction of the grid (default 0.4)")
    ap.add_argument("--sampler", choices=SAMPLERS, default="tpe", help="default tpe (benchmarks/search_vs_grid.py)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--objectives", nargs="+", default=["accuracy:max", "latency_p50_ms:min"])
    ap.add_argument("--sweep-dir", help="default multirun/search-<time>")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    try:
        objectives = parse_objectives(args.objectives)
        if len(objectives) != 2:
            raise ValueError("--objectives: name two (e.g. accuracy:max latency_p50_ms:min)")
        space, fixed = compose.sweep_space(list(args.overrides))
        if not space:
            raise ValueError("nothing to search: give an experiment with sweeper params (+experiment=NAME) "
                             "or axes as axis=a,b,c")
        n = grid_size(space)
        todo = args.budget if args.budget is not None else max(1, int(args.budget_fraction * n))
        if todo < 1:
            raise ValueError(f"--budget={todo}: evaluate at least 1 variant")
    except Exception as e:  # noqa: BLE001 - a bad value or Hydra's composition error: one line
        print(compose.error_line(e), file=sys.stderr)
        return 2
    sweep = Path(args.sweep_dir or f"multirun/search-{time.strftime('%Y-%m-%d_%H-%M-%S')}")

    def evaluate(combo: dict[str, Any]) -> list[float] | None:
        overrides = [*fixed, *(f"{k}={v}" for k, v in combo.items())]
        try:
            conf, variant = compose.variant_of(overrides)
        except ConfigError as e:
            log.error("search: %s: %s", " ".join(overrides), e)
            return None
        rec = run_variant(variant, out_dir=sweep / variant.variant_id, cache_dir=Path(conf.cache_dir).expanduser(),
                          force=conf.force, allow_network=conf.allow_network)
        if rec.get("status") != "ok":
            return None
        return [rec[col] for col, _ in objectives]

    res = run_search(space, evaluate, objectives, budget=todo, sampler=args.sampler, seed=args.seed)
    atomic_write_json(sweep / "search.json", {
        "space": space, "fixed": fixed, "grid": n, "budget": todo, "sampler": args.sampler, "seed": args.seed,
        "objectives": [f"{c}:{s}" for c, s in objectives], "asked": res.asked,
        "evaluated": [{"combo": c, "values": v} for c, v in zip(res.combos(), res.evaluated.values(), strict=True)]})
    if not any(v is not None for v in res.evaluated.values()):
        print(f"error: every evaluated variant failed; see {sweep}/*/result.json", file=sys.stderr)
        return 1
    out = write_report(sweep, objectives=objectives)
    print(f"search: {len(res.evaluated)} of {n} variants evaluated ({len(res.evaluated) / n:.0%}, "
          f"{res.asked} trials, sampler {args.sampler}, seed {args.seed}); report: {out['frontier']}  {out['plot']}")
    print(json.dumps({"sweep": str(sweep), "evaluated": len(res.evaluated), "grid": n}))
    return 0
