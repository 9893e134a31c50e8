"""The plots ``deepmot eval --plots DIR`` writes (matplotlib, imported only here).

- ``<class>_alpha_curves.png``: HOTA, DetA and AssA (percent, 0-100) against the
  localisation threshold alpha (0.05 ... 0.95), one line per tracker, COMBINED over the
  sequences (TrackEval's curve plot, with the trackers side by side); the legend gives each
  tracker's mean over alpha, in percent too.
- ``<tracker>_<class>_sequences.png``: MOTA, IDF1 and HOTA of every sequence and COMBINED as
  grouped bars, the legend above the axes (it hides no bar).

Figures are drawn on matplotlib's Agg canvas without ``pyplot`` (no global state, no display
needed) and written atomically (:func:`deepmot.io.atomic.atomic_path`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from deepmot.io.atomic import atomic_path
from deepmot.metrics.evaluate import Evaluation
from deepmot.metrics.hota import ALPHAS

__all__ = [
    "alpha_curves_figure",
    "plot_alpha_curves",
    "plot_sequence_bars",
    "sequence_bars_figure",
    "write_plots",
]

CURVES = ("HOTA", "DetA", "AssA")


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def alpha_curves_figure(evaluations: Mapping[str, Evaluation]) -> Any:
    """The figure of :func:`plot_alpha_curves`: in percent, as the legend's means are."""
    first = next(iter(evaluations.values()))
    fig = _figure(4.2 * len(CURVES), 4.0)
    axes = fig.subplots(1, len(CURVES), sharey=True)
    for ax, field in zip(axes, CURVES, strict=True):
        for name, evaluation in evaluations.items():
            values = 100 * np.asarray(evaluation.combined["hota"][field])
            ax.plot(ALPHAS, values, marker=".", label=f"{name} (mean {values.mean():.1f})")
        ax.set_title(f"{field} ({first.cls})")
        ax.set_xlabel("alpha (localisation threshold)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize="small")
    axes[0].set_ylabel("percent")
    fig.tight_layout()
    return fig


def plot_alpha_curves(evaluations: Mapping[str, Evaluation], path: str | Path) -> Path:
    """HOTA, DetA and AssA (percent) against alpha, one line per tracker (COMBINED), in one
    PNG."""
    return _save(alpha_curves_figure(evaluations), Path(path))


def sequence_bars_figure(evaluation: Evaluation) -> Any:
    """The figure of :func:`plot_sequence_bars`; its legend sits above the axes, where it
    covers no bar (COMBINED, the last group, included)."""
    rows = evaluation.rows()
    names = list(rows)
    bars = []
    for family, field in (("clear", "MOTA"), ("identity", "IDF1"), ("hota", "HOTA")):
        if all(family in r for r in rows.values()):
            bars.append((field, [100 * float(np.mean(rows[n][family][field])) for n in names]))
    fig = _figure(max(6.0, 0.9 * len(names) + 2), 4.8)
    ax = fig.subplots()
    x = np.arange(len(names))
    width = 0.8 / max(1, len(bars))
    for k, (field, values) in enumerate(bars):
        ax.bar(x + (k - (len(bars) - 1) / 2) * width, values, width, label=field)
    if len(names) > 1:  # COMBINED apart from the sequences
        ax.axvline(len(names) - 1.5, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize="small")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_ylabel("percent")
    ax.set_title(f"{evaluation.tracker} ({evaluation.cls})", pad=28)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncol=max(1, len(bars)),
        fontsize="small",
        frameon=False,
    )
    fig.tight_layout()
    return fig


def plot_sequence_bars(evaluation: Evaluation, path: str | Path) -> Path:
    """MOTA, IDF1 and HOTA (percent) of each sequence and COMBINED as grouped bars."""
    return _save(sequence_bars_figure(evaluation), Path(path))


def write_plots(
    by_tracker: Mapping[str, Mapping[str, Evaluation]], folder: str | Path
) -> list[Path]:
    """Every plot of the module doc for ``tracker -> class -> Evaluation``; the paths written."""
    folder = Path(folder)
    written: list[Path] = []
    classes = list(next(iter(by_tracker.values())))
    for cls in classes:
        per_tracker = {t: by_cls[cls] for t, by_cls in by_tracker.items()}
        if all("hota" in ev.combined for ev in per_tracker.values()):
            written.append(plot_alpha_curves(per_tracker, folder / f"{cls}_alpha_curves.png"))
        for tracker, evaluation in per_tracker.items():
            target = folder / f"{_safe(tracker)}_{cls}_sequences.png"
            written.append(plot_sequence_bars(evaluation, target))
    return written
