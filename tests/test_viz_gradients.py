"""The Fig. 9 gradient plot: per-term gradients that add up to the loss's, and a PNG."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from deepmot.assign.sinkhorn import Sinkhorn, SinkhornConfig
from deepmot.loss.deepmot import DeepMOTLoss
from deepmot.viz.gradients import plot_loss_gradients


def test_term_gradients_add_up_and_png_is_written(tmp_path: Path) -> None:
    gt = np.array([[10, 10, 50, 90], [100, 10, 140, 90], [200, 10, 240, 90]], np.float32)
    pred = gt + np.array([[8, 2, 8, 2], [0, 0, 0, 0], [16, 0, 16, 0]], np.float32)
    # a soft matcher and a mild scale so that every term has a gradient worth checking
    loss_fn = DeepMOTLoss(Sinkhorn(SinkhornConfig(epsilon=0.3)), scale=5.0)
    memory = {1: 1, 2: 2, 3: 3}
    path = tmp_path / "grads.png"
    grads = plot_loss_gradients(path, loss_fn, pred, gt, [1, 3, 2], [1, 2, 3], (320, 240), memory)
    cfg = loss_fn.config
    combined = (grads["fp"] + grads["fn"] + cfg.gamma * grads["ids"]) / 3 + cfg.lam * grads[
        "1 - dmotp"
    ]
    np.testing.assert_allclose(grads["loss"], combined, rtol=1e-4, atol=1e-7)
    assert all(np.abs(grads[t]).max() > 0 for t in ("fp", "fn", "ids", "1 - dmotp"))
    image = cv2.imread(str(path))
    assert image is not None and image.shape[1] > image.shape[0] > 100
    assert [p.name for p in tmp_path.iterdir()] == ["grads.png"]
