"""Frontier plot from a results table and its frontier. Drawing only: no computation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["frontier_figure", "plot_frontier", "plot_training"]


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
    """:func:`frontier_figure` saved as a PNG at ``path``."""
    import matplotlib.pyplot as plt

    fig = frontier_figure(results, front, x=x, y=y, title=title, max_labels=max_labels, group_by=group_by)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def frontier_figure(results: pd.DataFrame, front: pd.DataFrame, *, x: str = "latency_p50_ms", y: str = "accuracy",
                    title: str = "paretobert frontier", max_labels: int = 16, group_by: str | None = None):
    """All ok points with their intervals, the frontier as a step line through its
    ``frontier`` points, a log x axis when x spans more than 10x, round ticks; up to
    ``max_labels`` labels placed where they overlap nothing (frontier points first), the
    other points numbered against a table beside the plot; failures listed."""
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
    # the step line joins the points that are on the frontier beyond the noise only: through an
    # `indistinguishable` point it could go down as latency grows
    solid = front[front["frontier_status"].eq("frontier")] if "frontier_status" in front.columns else front
    groups = [(None, solid)] if group_by is None else list(solid.groupby(group_by, sort=True))
    for k, (value, part) in enumerate(groups):
        if len(part):
            f = part.sort_values(x)
            color = "tab:red" if group_by is None else plt.cm.tab10(k % 10)
            ax.step(f[x], f[y], where="post", color=color, lw=1.5, zorder=1,
                    label=None if group_by is None else f"frontier {group_by}={value}")
    if len(ok) and (ok[x] > 0).all() and ok[x].max() / max(ok[x].min(), 1e-12) > 10:
        ax.set_xscale("log")
    _round_ticks(ax)
    # labels where they fit without overlapping; the rest numbered (number beside the point
    # where it fits) against a table beside the plot; frontier points are placed first
    order = sorted(range(len(ok)), key=lambda i: (not on[i], float(ok[x].iloc[i])))
    names = [str(ok.iloc[i].get("label", ok.iloc[i].get("variant_id", ""))) for i in order]
    pts = [(float(ok[x].iloc[i]), float(ok[y].iloc[i])) for i in order]
    ax.set_xlabel(x.replace("_ms", " (ms)").replace("_", " "))
    qa = "task" in ok.columns and len(ok) and (ok["task"] == "qa").all()
    ax.set_ylabel("exact match (fraction)" if qa and y == "accuracy" else y)
    ax.set_title(title)
    failed = results[results["status"] != "ok"] if "status" in results.columns else results.iloc[0:0]
    boxes = []
    if len(failed):
        lines = [f"failed: {r.get('variant_id')}" for _, r in failed.iterrows()][:8]
        boxes.append(ax.text(0.99, 0.01, "\n".join(lines), transform=ax.transAxes, ha="right", va="bottom",
                             fontsize=7, color="tab:red", bbox={"fc": "white", "alpha": 0.8}))
    fig.tight_layout()
    renderer = fig.canvas.get_renderer()
    # the legend where matplotlib finds it best among the points, then pinned there (at save
    # time "best" would move it again, onto the labels placed meanwhile)
    where = ax.legend(loc="best", fontsize=8).get_window_extent(renderer).transformed(ax.transAxes.inverted())
    boxes.append(ax.legend(loc=(where.x0, where.y0), fontsize=8))
    numbered = _place_labels(fig, ax, pts, names, max_labels=max_labels,
                             taken=[b.get_window_extent(renderer) for b in boxes])
    if numbered:
        _number_table(fig, ax, numbered)
    ax.grid(True, alpha=0.3)
    return fig


def _round_ticks(ax) -> None:
    """Tick labels as short round numbers (1, 2, 5, 10, 20 on a log axis), never 3.2905."""
    from matplotlib import ticker

    fmt = ticker.FuncFormatter(lambda v, _: f"{v:.3g}")
    if ax.get_xscale() == "log":
        ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    else:
        ax.xaxis.set_major_locator(ticker.MaxNLocator(nbins=8, steps=[1, 2, 2.5, 5, 10]))
    ax.xaxis.set_major_formatter(fmt)
    ax.yaxis.set_major_locator(ticker.MaxNLocator(nbins=8, steps=[1, 2, 2.5, 5, 10]))
    ax.yaxis.set_major_formatter(fmt)


def _number_table(fig, ax, numbered: list[tuple[int, str]]) -> None:
    """The numbered points' names in columns to the right of the axes: the figure grows to
    the right by their width, the axes keep their size in pixels (labels stay where placed)."""
    pos = ax.get_position()
    line_pt = 6 * 1.25  # fontsize 6, matplotlib's line spacing 1.2 and a margin
    per_col = max(5, int(pos.y1 * fig.get_size_inches()[1] * 72 / line_pt) - 2)
    lines = [f"{n:>3}  {name}" for n, name in numbered]
    cols = [lines[i:i + per_col] for i in range(0, len(lines), per_col)]
    widths = [0.055 * max(map(len, col)) + 0.15 for col in cols]  # inches: monospace 6 pt, a gap
    w, h = fig.get_size_inches()
    total = w + 0.12 + sum(widths)
    fig.set_size_inches(total, h)
    ax.set_position([pos.x0 * w / total, pos.y0, pos.width * w / total, pos.height])
    x = w + 0.1
    for k, (col, width) in enumerate(zip(cols, widths, strict=True)):
        fig.text(x / total, pos.y1, ("numbered points\n" if k == 0 else "\n") + "\n".join(col), fontsize=6,
                 family="monospace", va="top", ha="left")
        x += width

OFFSETS = ((5, 4), (5, -10), (-5, 4), (-5, -10), (0, 9), (0, -15), (10, -3), (-10, -3))
MARKER_PT = 3.5  # a marker's half-width in points (scatter s=36..52 pt^2): no label covers another point


def _place_labels(fig, ax, points, names, *, max_labels: int = 16, taken=()) -> list[tuple[int, str]]:
    """Annotate ``points`` in order with ``names`` where a label fits (inside the axes, over
    no other label) at one of a few offsets; at most ``max_labels`` names, the others get a
    number (drawn where it fits); returns the numbered (number, name) pairs. Every drawn text
    is tagged ``gid="point-label"`` (the test checks none overlap); ``taken`` are boxes
    (legend, notes) no label may cover. Nor may a label cover another point's marker (read
    beside that point, it would name the wrong one)."""
    from matplotlib.transforms import Bbox

    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    placed: list = list(taken)
    r = MARKER_PT * fig.dpi / 72
    markers = [Bbox.from_extents(px - r, py - r, px + r, py + r) for px, py in ax.transData.transform(points)] \
        if len(points) else []

    def put(k, text, size) -> bool:
        others = markers[:k] + markers[k + 1:]
        for dx, dy in OFFSETS:
            ha = "left" if dx > 0 else "right" if dx < 0 else "center"
            t = ax.annotate(text, points[k], xytext=(dx, dy), textcoords="offset points", fontsize=size, ha=ha,
                            gid="point-label")
            box = t.get_window_extent(renderer)
            inside = (box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0 and box.y1 <= frame.y1)
            if inside and not any(box.overlaps(b) for b in placed) and not any(box.overlaps(m) for m in others):
                placed.append(box)
                return True
            t.remove()
        return False

    numbered: list[tuple[int, str]] = []
    for k, name in enumerate(names):
        if k < max_labels and put(k, name, 7):
            continue
        number = len(numbered) + 1
        numbered.append((number, name))
        put(k, str(number), 6)  # where even the number does not fit, the table still lists it
    return numbered


def plot_training(curves: dict, labels: dict, path: Path, *, title: str = "fine-tuning curves") -> Path:
    """Validation accuracy and train loss per evaluation (x: epoch), one line per distinct
    curve (variants sharing a checkpoint share it; the first label names it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def metric(p: dict) -> float:  # a QA reader's curve holds validation F1
        return p["val_accuracy"] if "val_accuracy" in p else p["val_f1"]

    seen: dict[str, tuple[str, list]] = {}
    for vid, curve in curves.items():
        key = repr([(p.get("step"), p.get("val_accuracy", p.get("val_f1"))) for p in curve])
        seen.setdefault(key, (str(labels.get(vid, vid)), curve))
    fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(12, 4.5))
    for k, (label, curve) in enumerate(seen.values()):
        color = plt.cm.tab10(k % 10)
        ep = [p["epoch"] for p in curve]
        acc_ax.plot(ep, [metric(p) for p in curve], marker="o", ms=3, color=color, label=label)
        loss_ax.plot(ep, [p["train_loss"] for p in curve], color=color, label=label)
    acc_ax.set(xlabel="epoch", ylabel="validation accuracy (QA: F1), fraction", title="validation accuracy / F1")
    loss_ax.set(xlabel="epoch", ylabel="train loss (cross-entropy, nats)", title="train loss")
    for ax in (acc_ax, loss_ax):
        ax.grid(alpha=0.3)
    acc_ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
