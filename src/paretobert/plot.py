"""Frontier plot from a results table and its frontier. Drawing only: no computation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["plot_frontier", "plot_training"]


def _err(df: pd.DataFrame, col: str) -> np.ndarray | None:
    """Asymmetric error bars from ``{col}_ci_lo/_ci_hi`` columns, or None."""
    lo, hi = f"{col}_ci_lo", f"{col}_ci_hi"
    if lo not in df.columns or hi not in df.columns or df[[lo, hi]].isna().all().all():
        return None
    below = (df[col] - df[lo]).clip(lower=0).fillna(0).to_numpy()
    above = (df[hi] - df[col]).clip(lower=0).fillna(0).to_numpy()
    return np.vstack([below, above])


def plot_frontier(results: pd.DataFrame, front: pd.DataFrame, path: Path, *, x: str = "latency_p50_ms",
                  y: str = "accuracy", title: str = "paretobert frontier", max_labels: int = 16,
                  group_by: str | None = None) -> Path:
    """All ok points, the frontier as a step line, points labelled (only the frontier's when
    there are more than ``max_labels``); failures listed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = results[results["status"] == "ok"] if "status" in results.columns else results
    fig, ax = plt.subplots(figsize=(10, 6.5))
    on = ok.index.isin(front.index)
    ax.scatter(ok.loc[~on, x], ok.loc[~on, y], c="tab:gray", s=36, label="dominated", zorder=2)
    shaky = ok.index.isin(front.index[front["frontier_status"] == "indistinguishable"]) \
        if "frontier_status" in front.columns else np.zeros(len(ok), dtype=bool)
    ax.scatter(ok.loc[on & ~shaky, x], ok.loc[on & ~shaky, y], c="tab:red", s=52, label="frontier", zorder=3)
    if shaky.any():
        ax.scatter(ok.loc[shaky, x], ok.loc[shaky, y], facecolors="white", edgecolors="tab:red", s=52,
                   label="indistinguishable (intervals overlap)", zorder=3)
    if "int8_collapsed" in ok.columns and ok["int8_collapsed"].eq(True).any():
        bad = ok[ok["int8_collapsed"].eq(True)]
        ax.scatter(bad[x], bad[y], marker="x", c="black", s=90, zorder=4,
                   label="int8 collapsed (accuracy far below its fp32 twin)")
    xerr = _err(ok, x)
    yerr = _err(ok, y)
    if xerr is not None or yerr is not None:
        ax.errorbar(ok[x], ok[y], xerr=xerr, yerr=yerr, fmt="none", ecolor="0.6", elinewidth=0.8, zorder=1)
    groups = [(None, front)] if group_by is None else list(front.groupby(group_by, sort=True))
    for k, (value, part) in enumerate(groups):
        if len(part):
            f = part.sort_values(x)
            color = "tab:red" if group_by is None else plt.cm.tab10(k % 10)
            ax.step(f[x], f[y], where="post", color=color, lw=1.5, zorder=1,
                    label=None if group_by is None else f"frontier {group_by}={value}")
    # neighbours along x alternate above / below their point so close labels do not overlap;
    # a crowded plot labels its frontier points only (every point is in results.csv)
    labelled = ok if len(ok) <= max_labels else ok[on]
    for k, (_, row) in enumerate(labelled.sort_values(x).iterrows()):
        ax.annotate(str(row.get("label", row.get("variant_id", ""))), (row[x], row[y]), fontsize=7,
                    xytext=(4, 5 if k % 2 == 0 else -11), textcoords="offset points")
    if len(ok) and (ok[x] > 0).all() and ok[x].max() / max(ok[x].min(), 1e-12) > 20:
        ax.set_xscale("log")
    ax.set_xlabel(x.replace("_ms", " (ms)").replace("_", " "))
    ax.set_ylabel(y)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    failed = results[results["status"] != "ok"] if "status" in results.columns else results.iloc[0:0]
    if len(failed):
        lines = [f"failed: {r.get('variant_id')}" for _, r in failed.iterrows()][:8]
        ax.text(0.99, 0.01, "\n".join(lines), transform=ax.transAxes, ha="right", va="bottom",
                fontsize=7, color="tab:red", bbox={"fc": "white", "alpha": 0.8})
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_training(curves: dict, labels: dict, path: Path, *, title: str = "fine-tuning curves") -> Path:
    """Validation accuracy and train loss per evaluation (x: epoch), one line per distinct
    curve (variants sharing a checkpoint share it; the first label names it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seen: dict[str, tuple[str, list]] = {}
    for vid, curve in curves.items():
        key = repr([(p.get("step"), p.get("val_accuracy")) for p in curve])
        seen.setdefault(key, (str(labels.get(vid, vid)), curve))
    fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(12, 4.5))
    for k, (label, curve) in enumerate(seen.values()):
        color = plt.cm.tab10(k % 10)
        ep = [p["epoch"] for p in curve]
        acc_ax.plot(ep, [p["val_accuracy"] for p in curve], marker="o", ms=3, color=color, label=label)
        loss_ax.plot(ep, [p["train_loss"] for p in curve], color=color, label=label)
    acc_ax.set(xlabel="epoch", ylabel="validation accuracy (fraction)", title="validation accuracy")
    loss_ax.set(xlabel="epoch", ylabel="train loss (cross-entropy, nats)", title="train loss")
    for ax in (acc_ax, loss_ax):
        ax.grid(alpha=0.3)
    acc_ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
