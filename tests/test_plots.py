"""Pictures that tell the truth: axes from zero (no magnified noise), units that match the
legend, legends that hide no bar, no line drawn twice."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from deepmot.metrics import FrameAccumulator, evaluate_accumulators  # noqa: E402
from deepmot.metrics.plots import alpha_curves_figure, sequence_bars_figure  # noqa: E402
from deepmot.reproduce.plots import bar_figure  # noqa: E402
from deepmot.viz.figures import pyplot  # noqa: E402
from deepmot.viz.training import training_curves_figure  # noqa: E402


def _evaluation(sequences: int = 3):
    """Sequences where the tracker finds both people in every frame but one: MOTA near 95%."""
    accumulators = []
    for k in range(sequences):
        acc = FrameAccumulator(f"SEQ-{k}")
        gt = np.array([[10, 10, 40, 100], [300, 10, 40, 100]], dtype=float)
        for frame in range(20):
            found = [1, 2] if frame != k else [1]
            acc.update([1, 2], found, gt_boxes=gt, tracker_boxes=gt[: len(found)] + [2, 0, 0, 0])
        accumulators.append(acc)
    evaluation = evaluate_accumulators(accumulators)
    evaluation.tracker = "mine"
    return evaluation


def test_reproduce_bars_start_at_zero() -> None:
    rows = [
        {"row": "Vanilla", "MOTA": 47.15, "MOTA_std": 0.0},
        {"row": "DeepMOT", "MOTA": 47.19, "MOTA_std": 0.06},
    ]
    fig = bar_figure(rows, ["MOTA"], "t")
    low, high = fig.axes[0].get_ylim()
    assert low == 0 and 47.25 < high < 55  # 0.04 apart looks as small as it is
    pyplot().close(fig)
    rows = [{"row": "a", "Spearman": -0.2}, {"row": "b", "Spearman": 0.9}]
    fig = bar_figure(rows, ["Spearman"], "t")
    low, high = fig.axes[0].get_ylim()
    assert low < -0.2 and 0.9 < high < 1.1
    pyplot().close(fig)


def test_alpha_curves_are_in_percent_as_the_legend() -> None:
    evaluation = _evaluation()
    fig = alpha_curves_figure({"mine": evaluation})
    hota = 100 * np.asarray(evaluation.combined["hota"]["HOTA"])
    ax = fig.axes[0]
    assert ax.get_ylim() == (0, 100) and ax.get_ylabel() == "percent"
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_ydata(), hota)
    assert line.get_label() == f"mine (mean {hota.mean():.1f})" and hota.mean() > 50


def test_the_sequence_bars_legend_hides_no_bar() -> None:
    fig = sequence_bars_figure(_evaluation())
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent(renderer)
    bars = [patch.get_window_extent(renderer) for patch in ax.patches]
    assert len(bars) == 3 * 4  # MOTA, IDF1, HOTA of three sequences and COMBINED
    assert not any(legend.overlaps(bar) for bar in bars)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[-1] == "COMBINED"


def _log(path: Path, mota: list[float], loss: list[float]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["iteration", "loss", "true_mota"])
        for step, (m, v) in enumerate(zip(mota, loss, strict=True), start=1):
            writer.writerow([step, v, m])
    return path


def test_training_curves_draw_a_column_once(tmp_path: Path) -> None:
    same = [0.5, 0.6, 0.7, 0.8]
    logs = {
        "DeepMOT": _log(tmp_path / "a.csv", same, [4, 3, 2, 1]),
        "Smooth-L1": _log(tmp_path / "b.csv", same, [2, 2, 1, 1]),
        "Kalman": _log(tmp_path / "c.csv", [0.4, 0.4, 0.5, 0.5], [1, 1, 1, 1]),
    }
    fig = training_curves_figure(logs, smooth=1)
    loss_ax, mota_ax = fig.axes
    assert len(loss_ax.get_lines()) == 3
    labels = [line.get_label() for line in mota_ax.get_lines()]
    assert labels == ["DeepMOT = Smooth-L1", "Kalman"]
    pyplot().close(fig)
