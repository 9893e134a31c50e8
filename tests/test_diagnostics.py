"""Loss diagnostics on hand-made frames: saturated softmaxes pass no FP~ gradient, soft ones do;
the temperature schedule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepmot.assign.sinkhorn import Sinkhorn, SinkhornConfig
from deepmot.boxes import distance_matrix
from deepmot.loss.deepmot import DeepMOTLoss
from deepmot.train.config import TrackerTrainConfig
from deepmot.train.diagnostics import FrameRecord, gradient_norms

GT = torch.tensor([[100.0, 100.0, 140.0, 200.0], [400.0, 100.0, 440.0, 200.0]])


def frame(loss_fn: DeepMOTLoss, tracks: torch.Tensor):
    tracks = tracks.clone().requires_grad_(True)
    distance = distance_matrix(tracks, GT, 640, 480)
    ids, gt_ids = np.array([1, 2, 3]), np.array([1, 2])
    out, _ = loss_fn.forward_batch([distance], [ids], [gt_ids], [{1: 1, 2: 2}])
    record = FrameRecord([tracks], [distance], [ids], [gt_ids], [{1: 1, 2: 2}], out)
    return out, gradient_norms([record], loss_fn)


# two tracks on their objects and a false one far from both
TRACKS = torch.tensor(
    [[102.0, 101.0, 142.0, 201.0], [398.0, 99.0, 438.0, 199.0], [250.0, 300.0, 290.0, 400.0]]
)


def test_a_saturated_frame_has_no_active_entries_and_no_fp_gradient():
    sharp = DeepMOTLoss(Sinkhorn(SinkhornConfig(epsilon=0.01)), scale=100.0, gate="hard")
    out, norms = frame(sharp, TRACKS)
    assert float(out.active_share) == 0.0
    assert float(out.fp.detach()) == pytest.approx(1.0, abs=1e-3)  # counted, but frozen
    assert norms["fp"] < 1e-8 and norms["fn"] < 1e-8 and norms["gate"] == 0.0
    assert norms["dmotp"] > 1e-4  # dMOTP still pulls the matched boxes


def test_a_soft_frame_has_active_entries_and_an_fp_gradient():
    soft = DeepMOTLoss(Sinkhorn(SinkhornConfig(epsilon=0.5)), scale=5.0, gate="soft")
    out, norms = frame(soft, TRACKS)
    assert 0.2 < float(out.active_share) <= 1.0
    assert norms["fp"] > 1e-4 and norms["fn"] > 1e-4 and norms["dmotp"] > 1e-4


def test_the_gate_term_is_what_the_soft_gate_adds():
    # a track just beyond the gate: the soft gate's weight sends it a gradient, the hard one none
    near = TRACKS.clone()
    near[0] += torch.tensor([14.0, 0.0, 14.0, 0.0])
    soft = DeepMOTLoss(Sinkhorn(SinkhornConfig(epsilon=0.5)), scale=5.0, gate="soft")
    hard = DeepMOTLoss(Sinkhorn(SinkhornConfig(epsilon=0.5)), scale=5.0, gate="hard")
    assert frame(soft, near)[1]["gate"] > 1e-5
    assert frame(hard, near)[1]["gate"] == 0.0


def test_temperature_schedule_goes_geometrically_from_soft_to_sharp():
    config = TrackerTrainConfig(iterations=5, scale_start=1.0)
    scales = [config.scale_at(i) for i in range(5)]
    assert scales[0] == pytest.approx(1.0) and scales[-1] == pytest.approx(100.0)
    assert scales[2] == pytest.approx(10.0)
    assert all(b > a for a, b in zip(scales, scales[1:], strict=False))
    assert TrackerTrainConfig(iterations=5).scale_at(3) == 100.0
    with pytest.raises(ValueError, match="scale_start"):
        TrackerTrainConfig(scale_start=0.0)


def test_train_writes_the_diagnostics_plot(tmp_path):
    from deepmot.cli import main

    root = tmp_path / "data"
    synth = ["synth", str(root), "--sequences", "1", "--frames", "30", "--people", "5"]
    assert main([*synth, "--no-images", "--no-progress", "--no-preview"]) == 0
    run = tmp_path / "run"
    args = ["train", str(root), "--out", str(run), "--matcher", "sinkhorn", "--iterations", "3"]
    args += ["--batch-size", "2", "--det-file", "det.txt", "--diagnose-every", "1"]
    assert main([*args, "--no-progress"]) == 0
    for name in ("training_curves.png", "diagnostics.png"):
        assert (run / name).stat().st_size > 1000, name
    import csv

    rows = list(csv.DictReader((run / "log.csv").open()))
    assert all(float(r["grad_dmotp"]) > 0 for r in rows)  # measured every step here
    assert all(0 <= float(r["active_share"]) <= 1 for r in rows)
