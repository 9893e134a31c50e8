"""The single-object trackers through the framework: the Vanilla objective, fine-tuning from
its weights, and `deepmot train/track/eval` on a rendered synthetic sequence."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from deepmot.cli import main
from deepmot.data.synthetic import SceneConfig, generate_scene
from deepmot.errors import DeepMOTError
from deepmot.io.mot import read_results
from deepmot.trackers.goturn import GoturnModel, GoturnPredictor, load_goturn
from deepmot.train.clips import ClipSampler
from deepmot.train.config import AugmentationConfig, TrackerTrainConfig
from deepmot.train.sot import single_object_step
from deepmot.train.tracker import train_tracker


@pytest.fixture(scope="module")
def sequence():
    return generate_scene(
        SceneConfig(frames=20, width=320, height=240, people=5, seed=4)
    ).to_sequence()


def test_vanilla_step_scores_the_unmoved_boxes_as_the_evaluator_would(sequence):
    starts = ClipSampler([sequence], 2, 1, 1.0, AugmentationConfig(jitter=0.0)).sample(
        np.random.default_rng(0), 3
    )
    predictor = GoturnPredictor(GoturnModel().eval())  # untrained: keeps each box
    with torch.no_grad():
        loss, counts = single_object_step(starts, predictor, torch.device("cpu"))
    # the oracle: ground truth at t against ground truth at t + 1, object by object
    tp = objects = 0
    for s in starts:
        a = s.sequence.gt_at(s.start).active_pedestrians()
        b = s.sequence.gt_at(s.start + 1).active_pedestrians()
        objects += len(b.ids)
        for box, gid in zip(a.boxes, a.ids, strict=True):
            if gid in b.ids:
                other = b.boxes[list(b.ids).index(gid)]
                lo, hi = np.maximum(box[:2], other[:2]), np.minimum(box[2:], other[2:])
                inter = np.prod(np.clip(hi - lo, 0, None))
                union = np.prod(box[2:] - box[:2]) + np.prod(other[2:] - other[:2]) - inter
                tp += inter / union >= 0.5
    assert counts["tp"] == tp and counts["objects"] == objects > 0
    assert float(loss) > 0


def test_vanilla_needs_a_single_object_tracker(tmp_path, sequence):
    config = TrackerTrainConfig(tracker="motion", loss="vanilla", iterations=1, batch_size=1)
    with pytest.raises(DeepMOTError, match="single-object objective"):
        train_tracker([sequence], tmp_path, config, progress=False)


def test_fine_tuning_starts_from_the_given_weights(tmp_path, sequence):
    first = TrackerTrainConfig(tracker="goturn", loss="vanilla", iterations=2, batch_size=2)
    weights = train_tracker([sequence], tmp_path / "v", first, progress=False)["weights"]
    tuned = TrackerTrainConfig(
        tracker="goturn", loss="smoothl1", iterations=1, batch_size=1, lr=1e-12,
        init_weights=weights,
    )  # fmt: skip
    out = train_tracker([sequence], tmp_path / "s", tuned, progress=False)["weights"]
    start, end = load_goturn(weights).state_dict(), load_goturn(out).state_dict()
    for name, value in start.items():  # a step of 1e-12 leaves the start's weights
        torch.testing.assert_close(end[name], value)
    assert not torch.equal(start["regressor.4.weight"], torch.zeros_like(end["regressor.4.weight"]))
    stored = json.loads((tmp_path / "s" / "config.json").read_text())
    assert stored["init_weights"] == weights


@pytest.mark.parametrize("tracker", ["goturn", "siamrpn"])
def test_train_track_eval_commands(tmp_path: Path, tracker: str) -> None:
    root = tmp_path / "data"
    synth = ["synth", str(root), "--sequences", "1", "--frames", "12", "--width", "320"]
    assert main([*synth, "--height", "240", "--people", "4", "--no-progress", "--no-preview"]) == 0
    run = tmp_path / "run"
    train = ["train", str(root), "--out", str(run), "--tracker", tracker, "--det-file", "det.txt"]
    assert main([*train, "--loss", "vanilla", "--iterations", "2", "--batch-size", "2"]) == 0
    weights = run / f"{tracker}.safetensors"
    assert weights.is_file()
    results = tmp_path / "results"
    track = ["track", str(root), "--out", str(results), "--tracker", tracker]
    assert main([*track, "--weights", str(weights), "--no-progress"]) == 0
    rows = read_results(results / "SYNTH-01.txt")
    assert len(rows) > 0 and rows.frames.min() >= 3  # born after 3 consecutive frames
    assert main(["eval", str(root), str(results), "--metrics", "clear"]) == 0


@pytest.mark.parametrize("tracker", ["goturn", "siamrpn"])
def test_track_uses_the_shipped_weights_without_weights(tracker: str) -> None:
    from deepmot import WEIGHTS_DIR
    from deepmot.commands.track import _tracker
    from deepmot.trackers.registry import get_trainable

    shipped = WEIGHTS_DIR / f"{tracker}.safetensors"
    assert shipped.is_file() and shipped.stat().st_size <= 15 * 2**20
    model = _tracker(tracker, None, {}, None).predictor.model
    expected = get_trainable(tracker).load(shipped).state_dict()
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, expected[name])


def test_init_weights_of_other_settings_is_one_clear_error(tmp_path, sequence):
    from deepmot.trackers.goturn import GoturnConfig, save_goturn

    other = tmp_path / "small.safetensors"
    save_goturn(GoturnModel(GoturnConfig(hidden=8)), other)
    config = TrackerTrainConfig(
        tracker="goturn", loss="vanilla", iterations=1, batch_size=1, init_weights=str(other)
    )
    with pytest.raises(DeepMOTError, match="small.safetensors: weights do not fit"):
        train_tracker([sequence], tmp_path / "run", config, progress=False)


def test_cli_alexnet_focal_and_frozen_layers(tmp_path: Path, capsys) -> None:
    from deepmot.trackers.siamrpn import SiamRPNConfig, SiamRPNModel, load_siamrpn

    root = tmp_path / "data"
    synth = ["synth", str(root), "--sequences", "1", "--frames", "8", "--width", "320"]
    assert main([*synth, "--height", "240", "--people", "3", "--no-progress", "--no-preview"]) == 0
    run = tmp_path / "run"
    train = ["train", str(root), "--out", str(run), "--tracker", "siamrpn", "--det-file",
             "det.txt", "--matcher", "sinkhorn", "--iterations", "1", "--batch-size", "1",
             "--no-progress"]  # fmt: skip
    assert main([*train, "--backbone", "alexnet", "--focal-weight", "10", "--freeze",
                 "features.0"]) == 0  # fmt: skip
    stored = json.loads((run / "config.json").read_text())
    assert SiamRPNConfig.from_dict(stored["model"]) == SiamRPNConfig.alexnet()
    assert stored["focal_weight"] == 10.0 and stored["freeze"] == ["features.0"]
    (row,) = csv.DictReader((run / "log.csv").open())
    assert float(row["focal"]) > 0
    torch.manual_seed(0)  # the run's seed: the model it started from
    start = SiamRPNModel(SiamRPNConfig.alexnet()).state_dict()
    end = load_siamrpn(run / "siamrpn.safetensors").state_dict()
    torch.testing.assert_close(end["features.0.weight"], start["features.0.weight"])
    assert not torch.equal(end["cls.head.2.weight"], start["cls.head.2.weight"])
    # mistakes: a tracker without backbones, a prefix that names no parameter
    other = ["--out", str(tmp_path / "other")]
    assert main([*train, *other, "--tracker", "motion", "--backbone", "alexnet"]) == 2
    assert "tracker 'motion' has no backbone to choose" in capsys.readouterr().err
    assert main([*train, *other, "--overwrite", "--freeze", "feature"]) == 2
    assert "freeze 'feature': the model has no such parameters" in capsys.readouterr().err
