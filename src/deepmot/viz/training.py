"""Training curves of tracker runs: the loss and the true MOTA of each step, per run."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from deepmot.viz.figures import pyplot, save_figure

__all__ = ["plot_diagnostics", "plot_training_curves", "training_curves_figure"]


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    if len(values) < window or window <= 1:
        return values
    return np.convolve(values, np.ones(window) / window, mode="valid")


def training_curves_figure(logs: Mapping[str, str | Path], smooth: int = 20, title: str = ""):
    """The figure :func:`plot_training_curves` writes (a matplotlib ``Figure``).

    A run whose true-MOTA column equals an earlier run's in every row is not drawn again: the
    earlier line's label names both (``DeepMOT = Smooth-L1``), so no line hides another.
    """
    plt = pyplot()
    fig, (ax_loss, ax_mota) = plt.subplots(1, 2, figsize=(11, 4.4))
    drawn: list[tuple[list[str], np.ndarray, object]] = []  # names, column, line
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
        same = next((d for d in drawn if np.array_equal(d[1], mota)), None)
        if same is not None:
            same[0].append(name)
            same[2].set_label(" = ".join(same[0]))
            continue
        (line,) = ax_mota.plot(x, _smooth(mota, smooth), label=name)
        drawn.append(([name], mota, line))
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
    return fig


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
        percent, one line per distinct column (runs with the same values share a line).
    """
    return save_figure(training_curves_figure(logs, smooth, title), path)


GRADIENT_COLUMNS = ("grad_fp", "grad_fn", "grad_ids", "grad_dmotp", "grad_gate")


def plot_diagnostics(log: str | Path, path: str | Path, title: str = "") -> Path:
    """What reaches the tracker from each part of the DeepMOT loss, from a run's ``log.csv``.

    Left: the gradient norm each term sends to the predicted boxes (FP~, FN~, IDS~, dMOTP, the
    soft gate; log scale; the steps where it was measured). Right: the share of softmax entries
    in their active band, in percent (near 0: saturated, FP~/FN~/IDS~ pass almost nothing).
    See :mod:`deepmot.train.diagnostics`. Returns ``path`` (written atomically).
    """
    plt = pyplot()
    with Path(log).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    fig, (ax_grad, ax_active) = plt.subplots(1, 2, figsize=(11, 4.4))
    steps = np.array([int(r["iteration"]) for r in rows])
    for column in GRADIENT_COLUMNS:
        values = np.array([float(r.get(column) or "nan") for r in rows])
        measured = np.isfinite(values)
        if measured.any():
            floor = np.maximum(values[measured], 1e-20)  # a zero gradient shows at the floor
            ax_grad.plot(steps[measured], floor, marker=".", label=column.removeprefix("grad_"))
    ax_grad.set_yscale("log")
    ax_grad.set(
        xlabel="training step",
        ylabel="gradient norm on the predicted boxes",
        title="gradient from each loss term",
    )
    active = 100 * np.array([float(r.get("active_share") or "nan") for r in rows])
    ax_active.plot(steps, active, color="tab:purple")
    ax_active.set(
        xlabel="training step",
        ylabel="softmax entries in the active band (%)",
        title="not saturated (0.01 < p < 0.99) ↑",
    )
    for ax in (ax_grad, ax_active):
        ax.grid(alpha=0.3)
    if ax_grad.lines:
        ax_grad.legend()
    fig.suptitle(title or "DeepMOT loss diagnostics", fontsize=10)
    return save_figure(fig, path)
