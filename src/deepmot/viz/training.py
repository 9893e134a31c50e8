"""Training curves of tracker runs: the loss and the true MOTA of each step, per run."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from deepmot.viz.figures import pyplot, save_figure

__all__ = ["plot_training_curves"]


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    if len(values) < window or window <= 1:
        return values
    return np.convolve(values, np.ones(window) / window, mode="valid")


def plot_training_curves(
    logs: Mapping[str, str | Path], path: str | Path, smooth: int = 20, title: str = ""
) -> Path:
    """Plot ``log.csv`` files of :func:`deepmot.train.tracker.train_tracker` side by side.

    Args:
        logs: run name to its ``log.csv``.
        path: the PNG to write (atomically).
        smooth: moving-average window in steps (stated in the title).
        title: what was trained on what (tracker, data, split); the smoothing is added.

    Returns:
        ``path``. Left panel: the training loss of each run (each on its own scale, so divided by
        its first value); right: the true MOTA of the training batches (exact matching), in
        percent.
    """
    plt = pyplot()
    fig, (ax_loss, ax_mota) = plt.subplots(1, 2, figsize=(11, 4.4))
    for name, log_path in logs.items():
        with Path(log_path).open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        if not rows:
            continue
        steps = np.array([int(r["iteration"]) for r in rows])
        loss = np.array([float(r["loss"]) for r in rows])
        mota = 100 * np.array([float(r["true_mota"]) for r in rows])
        x = steps[len(steps) - len(_smooth(loss, smooth)) :]
        first = loss[0] if loss[0] != 0 else 1.0
        ax_loss.plot(x, _smooth(loss / first, smooth), label=name)
        ax_mota.plot(x, _smooth(mota, smooth), label=name)
    ax_loss.set(xlabel="training step", ylabel="loss / loss of step 1", title="training loss ↓")
    ax_mota.set(
        xlabel="training step",
        ylabel="MOTA of the training batch (%)",
        title="true MOTA of the training batches ↑",
    )
    if ax_mota.get_ylim()[0] < 0:
        ax_mota.axhline(0, color="black", linewidth=0.8)
        ax_mota.set_xlabel(
            "training step\n(below 0: more FP + FN + IDSW than objects; the clips start from "
            "perturbed boxes)"
        )
    for ax in (ax_loss, ax_mota):
        ax.grid(alpha=0.3)
        ax.legend()
    smoothing = f"moving average over {smooth} steps" if smooth > 1 else "not smoothed"
    fig.suptitle(f"{title}{'; ' if title else ''}{smoothing}", fontsize=10)
    return save_figure(fig, path)
