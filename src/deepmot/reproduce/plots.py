"""The reproduce tables' figure: our rows as bars (mean ± std over the seeds), the paper's
value of the same row as a marker."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from deepmot.viz.figures import pyplot, save_figure

__all__ = ["bar_figure", "bar_plot"]


def bar_figure(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    title: str,
    paper: Mapping[str, Mapping[str, float]] | None = None,
):
    """The figure :func:`bar_plot` writes (a matplotlib ``Figure``). Each panel's axis takes
    in zero, so a difference of 0.1 between rows looks as small as it is next to the values;
    the std over seeds is each bar's error bar."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(columns), figsize=(3.2 * len(columns), 3.4), squeeze=False)
    labels = [str(r["row"]) for r in rows]
    x = range(len(rows))
    for ax, column in zip(axes[0], columns, strict=True):
        means = [float(r[column]) for r in rows]
        stds = [float(r.get(f"{column}_std", 0.0)) for r in rows]
        ax.bar(x, means, yerr=stds, capsize=3, color="tab:blue", alpha=0.8, label="ours")
        theirs = [
            (i, paper[r][column])
            for i, r in enumerate(labels)
            if paper and column in paper.get(r, {})
        ]
        if theirs:
            ax.scatter(*zip(*theirs, strict=True), marker="D", color="black", label="paper")
        low = min([0.0] + [m - s for m, s in zip(means, stds, strict=True)])
        low = min([low] + [v for _, v in theirs])
        high = max([0.0] + [m + s for m, s in zip(means, stds, strict=True)])
        high = max([high] + [v for _, v in theirs])
        pad = 0.08 * max(high - low, 1e-9)
        ax.set_ylim(low - pad if low < 0 else 0.0, high + pad if high > 0 else 0.0)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_xticks(list(x), labels, rotation=35, ha="right", fontsize=8)
        ax.set_title(column)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def bar_plot(
    rows: Sequence[Mapping[str, Any]],
    path: str | Path,
    columns: Sequence[str],
    title: str,
    paper: Mapping[str, Mapping[str, float]] | None = None,
) -> Path:
    """One panel per column, its axis from zero: a bar per row with its std as an error bar;
    where ``paper`` has the row, its value as a black diamond. Written atomically to
    ``path``."""
    return save_figure(bar_figure(rows, columns, title, paper), path)
