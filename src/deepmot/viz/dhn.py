"""Plots of the Deep Hungarian Net: WA versus matrix size (Fig. 8) and training curves.

Matplotlib with the Agg backend (no display needed); PNGs are written atomically.
"""

from __future__ import annotations

import csv
from pathlib import Path

from deepmot.viz.figures import pyplot, save_figure

__all__ = ["plot_size_study", "plot_training_log"]


def plot_size_study(
    curves: dict[str, dict[int, dict[str, float]]],
    path: str | Path,
    title: str = "",
    exact: dict[str, dict[int, dict[str, float]]] | None = None,
) -> Path:
    """WA (%) against matrix size, one line per method and discretisation; with ``exact``, a
    second row of panels with the exact-match rate (%).

    Args:
        curves: ``{method: {size: {"row": WA, "col": WA}}}``; methods whose name ends in
            ``(real frames)`` are drawn dashed (their size is a bin's largest side).
        path: PNG to write.
        title: what was measured (by default: the methods on random square matrices).
        exact: ``{method: {size: {"row": exact, "col": exact}}}`` or None.
    """
    plt = pyplot()
    panels = [("WA", "weighted accuracy WA (%)", curves)]
    if exact is not None:
        panels.append(("exact", "exact match with Hungarian (%)", exact))
    fig, axes = plt.subplots(
        len(panels), 2, figsize=(11, 4.3 * len(panels)), sharey="row", squeeze=False
    )
    for row_axes, (metric, ylabel, data) in zip(axes, panels, strict=True):
        for ax, mode, label in zip(
            row_axes, ("row", "col"), ("row-wise maximum", "column-wise maximum"), strict=True
        ):
            for method, per_size in data.items():
                sizes = sorted(per_size)
                style = "--" if method.endswith("(real frames)") else "-"
                ax.plot(sizes, [per_size[s][mode] for s in sizes], style, marker=".", label=method)
            ax.set_title(f"{metric} ↑ against size, {label}")
            ax.set_xlabel("matrix size (uniform: N = M; real frames: largest side, binned)")
            ax.grid(alpha=0.3)
        row_axes[0].set_ylabel(ylabel)
    axes[0][0].legend(fontsize=8)
    fig.subplots_adjust(hspace=0.35)
    fig.suptitle(
        title
        or f"{' vs '.join(m for m in curves if not m.endswith('(real frames)'))}: accuracy "
        "against the Hungarian solution "
        "(paper Fig. 8; not smoothed)",
        fontsize=10,
    )
    return save_figure(fig, path)


def plot_training_log(
    log_csv: str | Path, path: str | Path, smooth: int = 50, title: str = ""
) -> Path:
    """Loss and batch WA (in percent) against the step from a DHN run's ``log.csv``, as a
    moving average over ``smooth`` steps (stated in the title)."""
    plt = pyplot()
    with Path(log_csv).open(newline="") as f:
        rows = list(csv.DictReader(f))
    its = [int(r["iteration"]) for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3))
    labels = {
        "loss": ("weighted focal loss ↓ (log scale)", 1.0),
        "wa": ("WA of the training batch ↑ (%)", 100.0),
    }
    for ax, key in zip(axes, ("loss", "wa"), strict=True):
        label, factor = labels[key]
        values = [factor * float(r[key]) for r in rows]
        k = max(1, min(smooth, len(values)))
        smoothed = [
            sum(values[max(0, i - k + 1) : i + 1]) / len(values[max(0, i - k + 1) : i + 1])
            for i in range(len(values))
        ]
        ax.plot(its, smoothed)
        ax.set_xlabel("training step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if key == "loss":
            ax.set_yscale("log")
    smoothing = f"moving average over {smooth} steps" if smooth > 1 else "not smoothed"
    fig.suptitle(f"{title or f'DHN training ({log_csv})'}; {smoothing}", fontsize=10)
    return save_figure(fig, path)
