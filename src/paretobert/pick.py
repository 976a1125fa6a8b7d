"""``paretobert pick SWEEP_DIR [--max-p50-ms X] [--max-p99-ms X] [--max-mb X] [--min-accuracy A]``:
the variant to ship under a budget, chosen on the sweep's noise-aware frontier.

The rule (:func:`pick`): keep the ok variants that fit every budget; among them take the
noise-aware frontier (:func:`paretobert.frontier.noise_aware_frontier`) of the objectives;
the pick is the one best on the first objective (accuracy by default), ties going to the
next objective. The **runners-up** are the fitting frontier points whose interval on the
first objective overlaps the pick's: the measurement cannot say the pick is better than
them, so a user may prefer one of them for its other figures (it is listed with them).
Every other point of the whole sweep's frontier gets the reason it lost (over which budget,
or separated below the pick). Nothing fitting is :class:`NothingFits`, naming the closest
variant (the one whose worst budget overrun, relative to the budget, is smallest).

Pure functions over the results table (no Hydra); ``main`` is the command line.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from paretobert.frontier import (
    DEFAULT_OBJECTIVES,
    Objective,
    interval,
    noise_aware_frontier,
    parse_objectives,
)

__all__ = ["BUDGET_FLAGS", "Budget", "NothingFits", "Pick", "load_table", "main", "pick"]

# flag -> (column, "max" = the column must be <= the value | "min" = >=, unit)
BUDGET_FLAGS: dict[str, tuple[str, str, str]] = {
    "max_p50_ms": ("latency_p50_ms", "max", "ms"),
    "max_p99_ms": ("latency_p99_ms", "max", "ms"),
    "max_mb": ("model_mb", "max", "MB"),
    "min_accuracy": ("accuracy", "min", ""),
}


class NothingFits(ValueError):
    """No ok variant fits the budget; ``closest`` is the row nearest to fitting (or None)."""

    def __init__(self, msg: str, closest: dict[str, Any] | None) -> None:
        super().__init__(msg)
        self.closest = closest


@dataclass(frozen=True)
class Budget:
    """Limits on results columns: ``((column, "max"|"min", value, unit), ...)``."""

    limits: tuple[tuple[str, str, float, str], ...] = ()

    @classmethod
    def from_flags(cls, **flags: float | None) -> Budget:
        limits = []
        for flag, value in flags.items():
            if value is None:
                continue
            if flag not in BUDGET_FLAGS:
                raise ValueError(f"unknown budget {flag!r}; accepted: {' | '.join(BUDGET_FLAGS)}")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"--{flag.replace('_', '-')}={value}: need a finite value >= 0")
            col, kind, unit = BUDGET_FLAGS[flag]
            limits.append((col, kind, float(value), unit))
        return cls(tuple(limits))

    def overruns(self, row: pd.Series) -> list[str]:
        """Why ``row`` does not fit (empty when it fits); a missing figure does not fit."""
        out = []
        for col, kind, value, unit in self.limits:
            x = pd.to_numeric(row.get(col), errors="coerce")
            if x is None or not np.isfinite(x):
                out.append(f"{col} not measured")
            elif (kind == "max" and x > value) or (kind == "min" and x < value):
                out.append(f"{col} {_fmt(x)}{_u(unit)} {'>' if kind == 'max' else '<'} {_fmt(value)}{_u(unit)}")
        return out

    def excess(self, row: pd.Series) -> float:
        """The worst relative overrun of ``row`` (0 when it fits; inf for a missing figure)."""
        worst = 0.0
        for col, kind, value, _ in self.limits:
            x = pd.to_numeric(row.get(col), errors="coerce")
            if x is None or not np.isfinite(x):
                return math.inf
            over = (x - value) if kind == "max" else (value - x)
            worst = max(worst, over / max(abs(value), 1e-12))
        return worst

    def describe(self) -> str:
        if not self.limits:
            return "no budget"
        return ", ".join(f"{col} {'<=' if kind == 'max' else '>='} {_fmt(v)}{_u(unit)}"
                         for col, kind, v, unit in self.limits)


@dataclass
class Pick:
    """The chosen row, the runners-up the intervals cannot separate from it, why each other
    frontier point lost (``{variant_id: reason}``), and, where the pick's configuration ran with
    other seeds too, each seed's figure on the first objective (``{seed: value}``, ok runs)."""

    best: dict[str, Any]
    runners_up: list[dict[str, Any]] = field(default_factory=list)
    lost: dict[str, str] = field(default_factory=dict)
    budget: str = ""
    objectives: tuple[Objective, ...] = DEFAULT_OBJECTIVES
    seeds: dict[int, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"pick": _brief(self.best, self.objectives), "budget": self.budget,
                "objectives": [f"{c}:{d}" for c, d in self.objectives],
                "runners_up": [_brief(r, self.objectives) for r in self.runners_up], "lost": self.lost,
                "seeds": {str(k): v for k, v in self.seeds.items()}}


def _u(unit: str) -> str:
    return f" {unit}" if unit else ""


def _fmt(x: float) -> str:
    return f"{x:.4g}" if abs(x) < 1000 else f"{x:,.0f}"


FIGURES = ("accuracy", "accuracy_ci_lo", "accuracy_ci_hi", "latency_p50_ms", "latency_p50_ms_ci_lo",
           "latency_p50_ms_ci_hi", "latency_p99_ms", "model_mb")


def _brief(row: dict[str, Any], objectives: Sequence[Objective]) -> dict[str, Any]:
    keys = ["variant_id", "label", "model", "precision", "runtime", "seq_len", "threads", "job_dir", *FIGURES,
            *[c for c, _ in objectives]]
    out = {}
    for k in dict.fromkeys(keys):
        v = row.get(k)
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        out[k] = v.item() if isinstance(v, np.generic) else v
    return out


def pick(df: pd.DataFrame, budget: Budget = Budget(), objectives: Sequence[Objective] = DEFAULT_OBJECTIVES) -> Pick:
    """The variant to ship from a results table (:func:`paretobert.record.results_table`
    rows) under ``budget``; raises :class:`NothingFits` when no ok variant fits."""
    objectives = tuple(objectives)
    for col, _ in objectives:
        if col not in df.columns:
            raise KeyError(f"objective column {col!r} not in the results (columns: {', '.join(df.columns)})")
    ok = df[df["status"].eq("ok")] if "status" in df.columns else df
    if ok.empty:
        raise NothingFits("the sweep has no ok variant", None)
    fits = ok[[not budget.overruns(r) for _, r in ok.iterrows()]]
    if fits.empty:
        closest = ok.loc[min(ok.index, key=lambda i: (budget.excess(ok.loc[i]), str(ok.loc[i, "variant_id"])))]
        raise NothingFits(f"nothing fits {budget.describe()}: the closest is {closest['variant_id']} "
                          f"({'; '.join(budget.overruns(closest))})", _brief(closest.to_dict(), objectives))
    front = noise_aware_frontier(fits, objectives)
    if front.empty:
        raise NothingFits(f"no variant that fits {budget.describe()} has every objective measured "
                          f"({', '.join(c for c, _ in objectives)})", None)
    keys = [c for c, _ in objectives]
    asc = [d == "min" for _, d in objectives]
    ranked = front.sort_values([*keys, "variant_id"], ascending=[*asc, True], kind="mergesort")
    best = ranked.iloc[0]
    first, direction = objectives[0]
    los, his = interval(ranked, first)
    b_lo, b_hi = los[0], his[0]
    runners, lost = [], {}
    for (_, r), lo, hi in zip(ranked.iloc[1:].iterrows(), los[1:], his[1:], strict=True):
        if lo <= b_hi and b_lo <= hi:
            runners.append(r.to_dict())
        else:
            word = "below" if direction == "max" else "above"
            lost[r["variant_id"]] = (f"{first} {_fmt(r[first])} [{_fmt(lo)}, {_fmt(hi)}] is {word} the pick's "
                                     f"[{_fmt(b_lo)}, {_fmt(b_hi)}]")
    for _, r in noise_aware_frontier(ok, objectives).iterrows():
        vid = r["variant_id"]
        if vid != best["variant_id"] and vid not in lost and not any(x["variant_id"] == vid for x in runners):
            over = budget.overruns(r)
            lost[vid] = ("over budget: " + "; ".join(over)) if over else "dominated among the variants that fit"
    return Pick(best.to_dict(), runners, lost, budget.describe(), objectives, _seeds_of(ok, best, first))


def _seeds_of(ok: pd.DataFrame, best: pd.Series, column: str) -> dict[int, float]:
    """``{seed: column}`` of the ok runs of the pick's configuration (rows sharing its
    ``seed_group``), where more than one seed ran; else empty."""
    if "seed_group" not in ok.columns or pd.isna(best.get("seed_group")):
        return {}
    same = ok[ok["seed_group"].eq(best["seed_group"]) & ok["seed"].notna() & ok[column].notna()]
    if same["seed"].nunique() < 2:
        return {}
    return {int(r["seed"]): float(r[column]) for _, r in same.sort_values("seed", kind="mergesort").iterrows()}


def load_table(sweep_dir: Path) -> pd.DataFrame:
    """The results table of a sweep directory (every result.json under it)."""
    from paretobert.record import results_table
    from paretobert.store import load_results

    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"{sweep_dir}: no such sweep directory")
    records = load_results(sweep_dir)
    if not records:
        raise FileNotFoundError(f"no result.json under {sweep_dir}: run the sweep first")
    return results_table(records)


def _line(row: dict[str, Any]) -> str:
    acc, p50 = row.get("accuracy"), row.get("latency_p50_ms")
    parts = [f"{row['variant_id']}  {row.get('label') or ''}".rstrip()]
    if acc is not None and np.isfinite(acc):
        parts.append(f"accuracy {acc:.4f} [{row.get('accuracy_ci_lo', acc):.3f}, {row.get('accuracy_ci_hi', acc):.3f}]")
    if p50 is not None and np.isfinite(p50):
        parts.append(f"p50 {p50:.2f} ms")
    p99, mb = row.get("latency_p99_ms"), row.get("model_mb")
    if p99 is not None and np.isfinite(p99):
        parts.append(f"p99 {p99:.2f} ms")
    if mb is not None and np.isfinite(mb):
        parts.append(f"{mb:.1f} MB")
    return "  ".join(parts[:1]) + ("\n    " + "   ".join(parts[1:]) if len(parts) > 1 else "")


def render(p: Pick, sweep_dir: Path) -> str:
    lines = [f"pick ({p.budget}; objectives {', '.join(f'{c}:{d}' for c, d in p.objectives)}):",
             "  " + _line(p.best)]
    if p.runners_up:
        lines.append("runners-up (the intervals cannot separate them from the pick):")
        lines += ["  " + _line(r) for r in p.runners_up]
    if p.lost:
        lines.append("other frontier points:")
        lines += [f"  {vid}: {why}" for vid, why in sorted(p.lost.items())]
    if p.seeds:
        first = p.objectives[0][0]
        values = list(p.seeds.values())
        lines.append(f"seeds: its configuration ran {len(values)} seeds, {first} "
                     + " / ".join(f"{_fmt(v)} (seed {k})" for k, v in p.seeds.items())
                     + f", mean {_fmt(float(np.mean(values)))}: the pick is the best of them on the test split, "
                       "an optimistic figure; a retrain with another seed lands anywhere in that range")
    lines.append(f"ship it: paretobert export {sweep_dir} {p.best['variant_id']} OUT_DIR")
    return "\n".join(lines)


def add_budget_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--max-p50-ms", type=float, help="latency p50 budget (ms, batch 1)")
    ap.add_argument("--max-p99-ms", type=float, help="latency p99 budget (ms, batch 1)")
    ap.add_argument("--max-mb", type=float, help="model size budget (MB on disk)")
    ap.add_argument("--min-accuracy", type=float, help="least accuracy (fraction of the test split)")
    ap.add_argument("--objectives", nargs="+", default=[f"{c}:{d}" for c, d in DEFAULT_OBJECTIVES],
                    help="COLUMN:max|min ..., the first decides the pick (default accuracy:max latency_p50_ms:min)")


def budget_of(args: argparse.Namespace) -> Budget:
    return Budget.from_flags(max_p50_ms=args.max_p50_ms, max_p99_ms=args.max_p99_ms, max_mb=args.max_mb,
                             min_accuracy=args.min_accuracy)


def choose(sweep_dir: Path, args: argparse.Namespace) -> Pick:
    """The pick for parsed command-line budget flags (shared by ``pick`` and ``export --pick``)."""
    return pick(load_table(sweep_dir), budget_of(args), parse_objectives(args.objectives))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="paretobert pick", description=__doc__.split("\n\n")[0])
    ap.add_argument("sweep", type=Path, help="a finished sweep directory")
    add_budget_args(ap)
    ap.add_argument("--json", action="store_true", help="print the pick as JSON (for scripts)")
    args = ap.parse_args(argv)
    try:
        p = choose(args.sweep, args)
    except NothingFits as e:
        if args.json:
            print(json.dumps({"pick": None, "error": str(e), "closest": e.closest}))
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (FileNotFoundError, KeyError, ValueError) as e:
        print(f"error: {str(e).strip(chr(34))}", file=sys.stderr)
        return 2
    print(json.dumps(p.as_dict(), indent=2) if args.json else render(p, args.sweep))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
