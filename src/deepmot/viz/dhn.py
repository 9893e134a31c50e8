"""Plots of the Deep Hungarian Net: WA versus matrix size (Fig. 8) and training curves.

Matplotlib with the Agg backend (no display needed); PNGs are written atomically.
"""

from __future__ import annotations

import csv
from pathlib import Path

from deepmot.viz.figures import pyplot, save_figure

__all__ = ["plot_size_study", "plot_training_log"]


def plot_size_study(curves: dict[str, dict[int, dict[str, float]]], path: str | Path) -> Path:
    """WA (%) against square matrix size, one line per method and discretisation.

    Args:
        curves: ``{method: {size: {"row": WA, "col": WA}}}``.
        path: PNG to write.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, mode, label in zip(
        axes, ("row", "col"), ("row-wise maximum", "column-wise maximum"), strict=True
    ):
        for method, per_size in curves.items():
            sizes = sorted(per_size)
            ax.plot(sizes, [per_size[s][mode] for s in sizes], marker=".", label=method)
        ax.set_title(f"WA vs size ({label})")
        ax.set_xlabel("matrix size N = M (uniform random D)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("WA %")
    axes[0].legend()
    save_figure(fig, path)
    plt.close(fig)
    return Path(path)


def plot_training_log(log_csv: str | Path, path: str | Path, smooth: int = 50) -> Path:
    """Loss and batch WA against iteration from a run's ``log.csv``."""
    plt = pyplot()
    with Path(log_csv).open(newline="") as f:
        rows = list(csv.DictReader(f))
    its = [int(r["iteration"]) for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key in zip(axes, ("loss", "wa"), strict=True):
        values = [float(r[key]) for r in rows]
        k = max(1, min(smooth, len(values)))
        smoothed = [
            sum(values[max(0, i - k + 1) : i + 1]) / len(values[max(0, i - k + 1) : i + 1])
            for i in range(len(values))
        ]
        ax.plot(its, smoothed)
        ax.set_xlabel("iteration")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        if key == "loss":
            ax.set_yscale("log")
    save_figure(fig, path)
    plt.close(fig)
    return Path(path)
