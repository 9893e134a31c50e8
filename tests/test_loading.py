"""The one sequence loader (deepmot.data.loading): what each need chooses, and its errors."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from deepmot.data.loading import clip_part, load_sequences, part_frames, usable_sequence_dirs
from deepmot.data.synthetic import SceneConfig, write_dataset
from deepmot.errors import DeepMOTError


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three sequences of 20 frames: SYNTH-01 with frames, gt and det.txt; SYNTH-02 with gt and
    det/other.txt only; SYNTH-03 with det.txt but no gt and no frames."""
    root = tmp_path_factory.mktemp("loading")
    config = SceneConfig(frames=20, width=160, height=120, people=3)
    one, two, three = write_dataset(root, 3, config, seed=0, render=False, progress=False)
    write_dataset(root / "rendered", 1, config, seed=0, progress=False)
    shutil.rmtree(one)
    (root / "rendered" / one.name).rename(one)
    (two / "det" / "det.txt").rename(two / "det" / "other.txt")
    shutil.rmtree(three / "gt")
    return root


def test_detections_skip_the_sequences_without_and_say_so(root, caplog):
    usable, skipped = usable_sequence_dirs(root)
    chosen = [(p.name, f) for p, f in usable]  # SYNTH-02's only file is its detection file
    assert chosen == [("SYNTH-01", "det.txt"), ("SYNTH-02", "other.txt"), ("SYNTH-03", "det.txt")]
    assert skipped == []
    usable, skipped = usable_sequence_dirs(root, "other.txt")
    assert [p.name for p, _ in usable] == ["SYNTH-02"] and skipped == ["SYNTH-01", "SYNTH-03"]
    with caplog.at_level(logging.WARNING):
        found = load_sequences(root, "other.txt")
    assert [s.name for s in found] == ["SYNTH-02"]
    assert "skipped 2 sequence(s) without det/other.txt: SYNTH-01, SYNTH-03" in caplog.text
    assert [s.name for s in load_sequences(root, sequences=["SYNTH-03"])] == ["SYNTH-03"]
    with pytest.raises(DeepMOTError, match=r"^--det-file x.txt: no sequence under .* has det/x"):
        load_sequences(root, "x.txt")
    with pytest.raises(DeepMOTError, match="--sequences MOT17: no sequence under"):
        load_sequences(root, sequences=["MOT17"])


def test_gt_keeps_the_sequences_with_ground_truth_and_their_detections(root, caplog):
    with caplog.at_level(logging.WARNING):
        found = load_sequences(root, "det.txt", need="gt")
    assert [(s.name, s.detections is not None) for s in found] == [
        ("SYNTH-01", True),
        ("SYNTH-02", False),
    ]
    assert "1 of 3 sequences have no det/det.txt and train without detections: SYNTH-02" in (
        caplog.text
    )
    with pytest.raises(DeepMOTError, match="^--det-file x.txt: no sequence under"):
        load_sequences(root, "x.txt", need="gt")
    assert len(load_sequences(root, "x.txt", need="gt", explicit=False)) == 2
    with pytest.raises(DeepMOTError, match="no sequence with ground truth"):
        load_sequences(root, sequences=["SYNTH-03"], need="gt")
    with pytest.raises(DeepMOTError, match="no such folder of sequences"):
        load_sequences(root / "nosuch", need="gt")


def test_frames_need_images_and_gt_and_take_a_part(root):
    assert [s.name for s in load_sequences(root, need="frames")] == ["SYNTH-01"]
    assert load_sequences(root, sequences=["SYNTH-0", "KITTI"], need="frames")[0].name == "SYNTH-01"
    with pytest.raises(DeepMOTError, match="with img1/ and gt/gt.txt whose name starts with X"):
        load_sequences(root, sequences=["X"], need="frames")
    (val,) = load_sequences(root, need="frames", part="val")
    assert len(val) == 5  # the last quarter of 20 frames
    assert part_frames(20, "train") == range(1, 11) and part_frames(20, "0.1:0.2") == range(3, 5)
    with pytest.raises(DeepMOTError, match="--part 0:0.01: no frame of SYNTH-01"):
        clip_part(val, "0:0.01")
