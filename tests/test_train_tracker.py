"""Training a tracker: the loss goes down, a resumed run is the same run, the CLI."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from deepmot.cli import main
from deepmot.data.synthetic import SceneConfig, generate_scene
from deepmot.errors import DeepMOTError
from deepmot.io.mot import read_results as mot_results
from deepmot.loss.deepmot import DeepMOTLoss
from deepmot.trackers import TrackBatch, create_tracker
from deepmot.trackers.motion import LearnedMotionModel, load_motion_model
from deepmot.trackers.predictor import MotionPredictor
from deepmot.train.clips import ClipSampler
from deepmot.train.config import AugmentationConfig, TrackerTrainConfig
from deepmot.train.losses import DeepMOTTraining
from deepmot.train.rollout import run_clips
from deepmot.train.tracker import train_tracker


@pytest.fixture(scope="module")
def sequences():
    return [
        generate_scene(SceneConfig(frames=80, people=8, seed=s, name=f"S{s}")).to_sequence()
        for s in (1, 2)
    ]


def _held_out_loss(model: LearnedMotionModel, sequences, config: TrackerTrainConfig) -> float:
    """The DeepMOT loss of a fixed batch of 32 samples (through Sinkhorn)."""
    from deepmot.assign.sinkhorn import Sinkhorn

    history_len = model.config.history_len
    sampler = ClipSampler(sequences, config.frames_per_sample, history_len, 1.0, config.augment)
    rng = np.random.default_rng(123)
    with torch.no_grad():
        result = run_clips(
            sampler.sample(rng, 32),
            MotionPredictor(model),
            DeepMOTTraining(DeepMOTLoss(Sinkhorn())),
            config,
            rng,
            history_len,
            torch.device("cpu"),
        )
    return float(result.loss)


def test_deepmot_training_reduces_the_loss(tmp_path: Path, sequences) -> None:
    # Without the supplementary's perturbation most tracks start inside the gate, where the
    # DeepMOT loss has a gradient (with it, few do and learning is slow).
    config = TrackerTrainConfig(
        matcher="sinkhorn",
        iterations=80,
        batch_size=8,
        lr=1e-3,
        det_file="det.txt",
        augment=AugmentationConfig(perturb=0.0, jitter=0.0),
    )
    torch.manual_seed(config.seed)
    before = _held_out_loss(LearnedMotionModel(), sequences, config)
    summary = train_tracker(sequences, tmp_path / "run", config, progress=False)
    after = _held_out_loss(load_motion_model(summary["weights"]), sequences, config)
    assert after < 0.75 * before, (before, after)  # measured: 0.0233 -> 0.0129
    rows = list(csv.DictReader((tmp_path / "run" / "log.csv").open()))
    assert len(rows) == 80
    assert all(
        np.isfinite(float(rows[-1][k]))
        for k in ("loss", "dmota", "dmotp", "true_mota", "true_motp")
    )


@pytest.mark.parametrize(("loss", "sampling"), [("deepmot", "pairs"), ("smoothl1", "clips")])
def test_resume_continues_exactly(tmp_path: Path, sequences, loss: str, sampling: str) -> None:
    config = TrackerTrainConfig(
        loss=loss,
        matcher="sinkhorn",
        iterations=6,
        batch_size=4,
        checkpoint_every=3,
        sampling=sampling,
        clip_length=4,
        augment=AugmentationConfig(drop=0.2, false_tracks=0.5, swap=0.2),
    )
    train_tracker(sequences, tmp_path / "straight", config, progress=False)
    train_tracker(
        sequences,
        tmp_path / "resumed",
        TrackerTrainConfig(**{**config.__dict__, "iterations": 3}),
        progress=False,
    )
    # resuming with a larger iteration count trains on to it (the new count is applied)
    train_tracker(sequences, tmp_path / "resumed", config, resume=True, progress=False)
    assert json.loads((tmp_path / "resumed" / "config.json").read_text())["iterations"] == 6
    a = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=False)
    assert a["iteration"] == b["iteration"] == 6
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    straight = [r[:-1] for r in csv.reader((tmp_path / "straight" / "log.csv").open())]
    resumed = [r[:-1] for r in csv.reader((tmp_path / "resumed" / "log.csv").open())]
    assert straight == resumed  # every logged value but the wall time


def test_resume_refuses_other_settings(tmp_path: Path, sequences) -> None:
    config = TrackerTrainConfig(matcher="sinkhorn", iterations=2, batch_size=2)
    train_tracker(sequences, tmp_path, config, progress=False)
    with pytest.raises(DeepMOTError, match="stored settings"):
        train_tracker(
            sequences, tmp_path, TrackerTrainConfig(matcher="sinkhorn", lr=1.0), resume=True
        )
    with pytest.raises(DeepMOTError, match="nothing to resume"):
        train_tracker(sequences, tmp_path / "new", resume=True)


def test_train_and_track_commands(tmp_path: Path) -> None:
    root = tmp_path / "data"
    assert (
        main(
            [
                "synth",
                str(root),
                "--sequences",
                "1",
                "--frames",
                "40",
                "--people",
                "6",
                "--no-images",
                "--no-progress",
                "--no-preview",
            ]
        )
        == 0
    )
    run = tmp_path / "run"
    args = ["train", str(root), "--out", str(run), "--matcher", "sinkhorn", "--iterations", "3"]
    assert main([*args, "--batch-size", "2", "--det-file", "det.txt", "--no-progress"]) == 0
    assert (run / "motion.safetensors").is_file() and (run / "config.json").is_file()
    by_name = ["train", str(root), "--out", str(tmp_path / "run2"), "--iterations", "1"]
    by_name += ["--batch-size", "2", "--det-file", "det.txt", "--no-progress"]
    assert main([*by_name, "--matcher", "dhn:bipartite_sk"]) == 0  # a shipped DHN by name
    assert main([*by_name, "--overwrite", "--matcher", "dhn:missing.safetensors"]) == 2
    results = tmp_path / "results"
    track = [
        "track",
        str(root),
        "--out",
        str(results),
        "--weights",
        str(run / "motion.safetensors"),
    ]
    assert main([*track, "--no-progress"]) == 0
    assert (results / "SYNTH-01.txt").is_file()
    assert main(["eval", str(root), str(results), "--metrics", "clear"]) == 0
    assert main(["track", str(root), "--out", str(results), "--tracker", "nope"]) == 2


def test_compare_variants_writes_the_table(tmp_path: Path, sequences) -> None:
    from deepmot.train.compare import compare_variants, paper_variants, validation_clips

    base = TrackerTrainConfig(matcher="sinkhorn", iterations=2, batch_size=2)
    variants = paper_variants(base)
    assert [v.name for v in variants] == [
        "Vanilla", "Smooth L1", "dMOTA+dMOTP", "dMOTA", "dMOTP", "dMOTA+dMOTP-IDS",
    ]  # fmt: skip
    assert variants[3].train.deepmot.lam == 0 and not variants[4].train.deepmot.use_dmota
    assert variants[5].train.deepmot.gamma == 0 and variants[2].train.deepmot.gamma == 2
    rows = compare_variants(
        sequences, validation_clips(sequences), variants[:3], tmp_path, progress=False
    )
    assert [r["variant"] for r in rows] == ["Vanilla", "Smooth L1", "dMOTA+dMOTP"]
    assert all(-100 <= r["MOTA"] <= 100 and r["FN"] >= 0 for r in rows)
    table = (tmp_path / "table.md").read_text().splitlines()
    assert table[0] == "| variant | MOTA ↑ | MOTP ↑ | IDF1 ↑ | MT ↑ | ML ↓ | FP ↓ | FN ↓ | IDS ↓ |"
    assert len(table) == 7  # header, rule, three rows, a blank line, the units


def test_demo_command_runs_end_to_end(tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    assert (
        main(
            [
                "demo",
                "--out",
                str(out),
                "--iterations",
                "2",
                "--matcher",
                "sinkhorn",
                "--no-progress",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "| Vanilla |" in printed and "| Kalman |" in printed and "| DeepMOT |" in printed
    for name in ("table.md", "table.json", "training_curves.png", "tracks.png"):
        assert (out / name).is_file(), name


def test_the_detections_switch_is_the_same_in_training_and_tracking(tmp_path, sequences):
    config = TrackerTrainConfig(
        matcher="sinkhorn", iterations=3, batch_size=2, model={"use_detections": False}
    )
    summary = train_tracker(sequences, tmp_path / "run", config, progress=False)
    tracker = create_tracker("motion", weights=summary["weights"])
    model = tracker.predictor.model
    assert not model.config.use_detections
    batch = TrackBatch.from_histories(
        [torch.tensor([[10.0, 10.0, 30.0, 60.0], [12.0, 10.0, 32.0, 60.0]])], 5
    )
    with torch.no_grad():
        with_dets = tracker.predictor.predict(
            None, batch, torch.tensor([[13.0, 9, 34, 62, 1]]), None
        )
        without = tracker.predictor.predict(None, batch, None, None)
    torch.testing.assert_close(with_dets.boxes, without.boxes)
    # a model that looks at detections cannot train on sequences without them
    bare = [s.clip(s.frames) for s in sequences]
    for seq in bare:
        seq.detections = None
    with pytest.raises(DeepMOTError, match="looks at detections"):
        train_tracker(bare, tmp_path / "other", replace(config, model={}), progress=False)


def test_cli_resume_trains_on_to_a_new_iteration_count(tmp_path: Path) -> None:
    root = tmp_path / "data"
    synth = ["synth", str(root), "--sequences", "1", "--frames", "40", "--people", "6"]
    assert main([*synth, "--no-images", "--no-progress", "--no-preview"]) == 0
    run = tmp_path / "run"
    args = ["train", str(root), "--out", str(run), "--matcher", "sinkhorn", "--batch-size", "2"]
    args += ["--det-file", "det.txt", "--sampling", "clips", "--clip-length", "4", "--no-progress"]
    assert main([*args, "--iterations", "2"]) == 0
    assert main([*args, "--iterations", "4", "--resume"]) == 0
    rows = list(csv.DictReader((run / "log.csv").open()))
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3, 4]
    stored = json.loads((run / "config.json").read_text())
    assert stored["iterations"] == 4 and stored["sampling"] == "clips"
    with pytest.raises(SystemExit) as listed:  # a listing flag exits, whatever else is given
        main(["train", str(root), "--out", str(run), "--list-trackers"])
    assert listed.value.code == 0


def test_track_and_eval_on_the_validation_frames_match_the_library(tmp_path: Path) -> None:
    from deepmot.data.sequence import Sequence
    from deepmot.metrics.evaluate import evaluate
    from deepmot.train.compare import evaluate_tracker, validation_clips

    root = tmp_path / "data"
    synth = ["synth", str(root), "--sequences", "2", "--frames", "60", "--people", "6"]
    assert main([*synth, "--no-images", "--no-progress", "--no-preview"]) == 0
    results = tmp_path / "results"
    track = ["track", str(root), "--out", str(results), "--tracker", "kalman", "--split", "val"]
    assert main([*track, "--no-progress"]) == 0
    rows = mot_results(results / "SYNTH-01.txt")
    assert rows.frames.min() >= 46 and rows.frames.max() <= 60  # the sequence's own numbers
    cli = evaluate(root, results, ("clear", "identity"), frames="val")
    sequences = [Sequence.from_dir(p) for p in sorted(root.iterdir())]
    library = evaluate_tracker(create_tracker("kalman"), validation_clips(sequences))
    for family, field in (("clear", "MOTA"), ("clear", "IDSW"), ("identity", "IDF1")):
        assert cli.combined[family][field] == library.combined[family][field]
    assert main(["eval", str(root), str(results), "--frames", "val"]) == 0


def test_a_dhn_file_as_the_matcher(tmp_path: Path, sequences) -> None:
    from deepmot.assign.dhn import DHNConfig, build_dhn, save_dhn
    from deepmot.assign.matcher import build_matcher

    path = tmp_path / "my_dhn.safetensors"
    save_dhn(build_dhn(DHNConfig(hidden=8, fc=(8,))), path)
    matcher = build_matcher(f"dhn:{path}")
    assert matcher.config.hidden == 8
    config = TrackerTrainConfig(matcher=f"dhn:{path}", iterations=1, batch_size=2)
    train_tracker(sequences, tmp_path / "run", config, progress=False)
    with pytest.raises(DeepMOTError, match="no such DHN weights file"):
        build_matcher(f"dhn:{tmp_path / 'missing.safetensors'}")


def test_a_shipped_dhn_by_name_as_the_matcher() -> None:
    from deepmot.assign.dhn import DEFAULT_DHN, create_dhn, default_dhn
    from deepmot.assign.matcher import build_matcher

    d = torch.rand(3, 4)
    by_name = build_matcher("dhn:seq_gru")
    torch.testing.assert_close(by_name(d), create_dhn("seq_gru", pretrained=True)(d))
    torch.testing.assert_close(build_matcher("dhn")(d), default_dhn()(d))
    assert default_dhn().config == create_dhn(DEFAULT_DHN, pretrained=True).config
    with pytest.raises(DeepMOTError, match="no shipped weights"):
        build_matcher("dhn:conv1d")
