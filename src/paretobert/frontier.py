"""Pareto frontier of a results table. Pure functions: no I/O, no plotting.

Every objective is normalised to minimisation (``max`` objectives are negated). Rows whose
status is not ``ok`` or whose objective values are missing / NaN are never on the frontier.
Ties: identical points do not dominate each other, so all of them stay on the frontier.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from paretobert.stats import noise_aware_status

__all__ = [
    "DEFAULT_OBJECTIVES",
    "Objective",
    "frontier",
    "hypervolume",
    "interval",
    "noise_aware_frontier",
    "parse_objectives",
    "pareto_mask",
    "separated_dominance",
]

Objective = tuple[str, str]
DEFAULT_OBJECTIVES: tuple[Objective, ...] = (("accuracy", "max"), ("latency_p50_ms", "min"))


def parse_objectives(specs: Sequence[str]) -> tuple[Objective, ...]:
    """``["accuracy:max", "latency_p50_ms:min"]`` -> objective tuples."""
    out = []
    for spec in specs:
        col, sep, direction = str(spec).rpartition(":")
        if not sep or not col or direction not in ("min", "max"):
            raise ValueError(f"objective {spec!r} is not COLUMN:min or COLUMN:max")
        out.append((col, direction))
    if not out:
        raise ValueError("need at least one objective")
    return tuple(out)


def _valid(df: pd.DataFrame, objectives: Sequence[Objective]) -> pd.Series:
    ok = pd.Series(True, index=df.index)
    if "status" in df.columns:
        ok &= df["status"].eq("ok")
    for col, _ in objectives:
        if col not in df.columns:
            raise KeyError(f"objective column {col!r} not in the table (columns: {list(df.columns)})")
        ok &= np.isfinite(pd.to_numeric(df[col], errors="coerce").astype(float))
    return ok


def pareto_mask(df: pd.DataFrame, objectives: Sequence[Objective] = DEFAULT_OBJECTIVES) -> pd.Series:
    """Boolean Series: True for the non-dominated valid rows.

    Row a dominates row b when a is no worse on every objective and strictly better on one.
    """
    valid = _valid(df, objectives)
    mask = pd.Series(False, index=df.index)
    if not valid.any():
        return mask
    sub = df.loc[valid]
    x = np.column_stack([
        (-1.0 if d == "max" else 1.0) * pd.to_numeric(sub[c]).astype(float).to_numpy() for c, d in objectives
    ])
    no_worse = (x[:, None, :] <= x[None, :, :]).all(axis=2)  # [j, i]: j no worse than i
    better = (x[:, None, :] < x[None, :, :]).any(axis=2)
    dominated = (no_worse & better).any(axis=0)
    mask.loc[sub.index] = ~dominated
    return mask


def frontier(df: pd.DataFrame, objectives: Sequence[Objective] = DEFAULT_OBJECTIVES) -> pd.DataFrame:
    """The non-dominated rows, same columns, sorted by the objectives (minimised form)."""
    front = df.loc[pareto_mask(df, objectives)].copy()
    keys = [c for c, _ in objectives]
    asc = [d == "min" for _, d in objectives]
    # sort by the first 'min' objective when there is one (latency), else the first objective
    order = sorted(range(len(keys)), key=lambda i: not asc[i])
    return front.sort_values([keys[i] for i in order], ascending=[asc[i] for i in order], kind="mergesort")


def interval(df: pd.DataFrame, col: str) -> tuple[np.ndarray, np.ndarray]:
    """``{col}_ci_lo`` / ``{col}_ci_hi`` where present, else the point value (zero width)."""
    est = pd.to_numeric(df[col], errors="coerce").astype(float).to_numpy()
    lo = pd.to_numeric(df.get(f"{col}_ci_lo", df[col]), errors="coerce").astype(float).to_numpy()
    hi = pd.to_numeric(df.get(f"{col}_ci_hi", df[col]), errors="coerce").astype(float).to_numpy()
    lo, hi = np.where(np.isfinite(lo), lo, est), np.where(np.isfinite(hi), hi, est)
    return lo, hi


def noise_aware_frontier(df: pd.DataFrame, objectives: Sequence[Objective] = DEFAULT_OBJECTIVES,
                         by: str | None = None) -> pd.DataFrame:
    """Rows no other row dominates beyond the intervals (``{objective}_ci_lo/_hi`` columns;
    zero width where absent), with ``frontier_status`` = ``frontier`` or ``indistinguishable``
    (a plain Pareto frontier would drop it, the intervals cannot). Per group with ``by``."""
    if by is not None:
        if by not in df.columns:
            raise KeyError(f"group column {by!r} not in the table (columns: {list(df.columns)})")
        parts = [noise_aware_frontier(g, objectives) for _, g in df.groupby(by, sort=True, dropna=False)]
        return pd.concat(parts) if parts else df.iloc[0:0].assign(frontier_status=[])
    valid = _valid(df, objectives)
    sub = df.loc[valid]
    if sub.empty:
        return df.iloc[0:0].assign(frontier_status=pd.Series(dtype=str))
    est = np.column_stack([pd.to_numeric(sub[c]).astype(float).to_numpy() for c, _ in objectives])
    bounds = [interval(sub, c) for c, _ in objectives]
    lo = np.column_stack([b[0] for b in bounds])
    hi = np.column_stack([b[1] for b in bounds])
    status = pd.Series(noise_aware_status(est, lo, hi, [d for _, d in objectives]), index=sub.index)
    front = sub.loc[status != "dominated"].assign(frontier_status=status[status != "dominated"])
    keys = [c for c, _ in objectives]
    asc = [d == "min" for _, d in objectives]
    order = sorted(range(len(keys)), key=lambda i: not asc[i])
    return front.sort_values([keys[i] for i in order], ascending=[asc[i] for i in order], kind="mergesort")


def separated_dominance(df: pd.DataFrame, objectives: Sequence[Objective] = DEFAULT_OBJECTIVES,
                        key: str = "variant_id") -> dict[tuple[str, str], str]:
    """For every pair of valid rows whose intervals are disjoint on every objective (so no
    noise can reorder them), which one dominates: ``{(a, b): a | b | "neither"}`` with
    ``a < b``. Two runs of one sweep must agree on every pair both of them separate."""
    valid = _valid(df, objectives)
    sub = df.loc[valid]
    ids = sub[key].astype(str).to_numpy()
    est = np.column_stack([(-1.0 if d == "max" else 1.0) * pd.to_numeric(sub[c]).astype(float).to_numpy()
                           for c, d in objectives])
    bounds = [interval(sub, c) for c, _ in objectives]
    out: dict[tuple[str, str], str] = {}
    for i in range(len(sub)):
        for j in range(len(sub)):
            a, b = ids[i], ids[j]
            if not a < b:
                continue
            if not all(lo[i] > hi[j] or lo[j] > hi[i] for lo, hi in bounds):
                continue
            if (est[i] <= est[j]).all():
                out[a, b] = a
            elif (est[j] <= est[i]).all():
                out[a, b] = b
            else:
                out[a, b] = "neither"
    return out


def hypervolume(df: pd.DataFrame, objectives: Sequence[Objective] = DEFAULT_OBJECTIVES, *,
                reference: Sequence[float], log: Sequence[str] = ("latency_p50_ms",)) -> float:
    """The area the ok rows of ``df`` dominate up to ``reference`` (one value per objective,
    in its own units and direction: e.g. the grid's worst accuracy and slowest p50), for two
    objectives. Columns in ``log`` are compared as log10 (a latency halved counts the same at
    2 ms and at 200 ms). Rows worse than the reference in any objective add nothing."""
    if len(objectives) != 2:
        raise ValueError(f"hypervolume: two objectives, got {len(objectives)}")
    pts, ref = [], []
    for (col, sense), r in zip(objectives, reference, strict=True):
        v = df.loc[_valid(df, objectives), col].to_numpy(dtype=float)
        if col in log:
            v, r = np.log10(v), float(np.log10(r))
        pts.append(-v if sense == "max" else v)
        ref.append(-r if sense == "max" else r)
    p = np.stack(pts, axis=1) if len(pts[0]) else np.empty((0, 2))
    p = p[(p[:, 0] < ref[0]) & (p[:, 1] < ref[1])]
    area, best_y = 0.0, ref[1]
    for x, y in sorted(map(tuple, p)):  # by the first objective; each point adds the strip below best_y
        if y < best_y:
            area += (ref[0] - x) * (best_y - y)
            best_y = y
    return float(area)
