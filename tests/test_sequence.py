"""Sequence: per-frame access, loading with and without seqinfo.ini, the paper's split."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from deepmot.data.sequence import Sequence, paper_split
from deepmot.errors import DeepMOTError, MOTFormatError
from deepmot.io import mot


def _make_sequence_dir(root: Path, with_seqinfo: bool = True, with_images: bool = False) -> Path:
    seq = root / "SEQ-01"
    gt = mot.GroundTruth(
        frames=np.array([1, 1, 2, 4]),
        ids=np.array([1, 2, 1, 3]),
        boxes_xywh=np.array(
            [[10, 20, 30, 40], [0, 0, 5, 5], [12, 20, 30, 40], [1, 1, 1, 1]], float
        ),
        flags=np.array([1, 0, 1, 1]),
        classes=np.array([1, 1, 1, 7]),
        visibility=np.array([1.0, 0.5, 0.9, 0.1]),
    )
    mot.write_gt(seq / "gt" / "gt.txt", gt)
    dets = mot.Detections(
        frames=np.array([2, 4]),
        boxes_xywh=np.array([[1, 2, 3, 4], [5, 6, 7, 8]], float),
        scores=np.array([0.9, -1]),
    )
    mot.write_detections(seq / "det" / "det.txt", dets)
    mot.write_detections(seq / "det" / "other.txt", dets)
    if with_seqinfo:
        mot.write_seqinfo(seq / "seqinfo.ini", mot.SeqInfo("SEQ-01", 5, 64, 48, 10.0))
    if with_images:
        (seq / "img1").mkdir()
        for f in range(1, 6):
            cv2.imwrite(str(seq / "img1" / f"{f:06d}.jpg"), np.full((48, 64, 3), f * 40, np.uint8))
    return seq


def test_per_frame_access(tmp_path: Path) -> None:
    seq = Sequence.from_dir(_make_sequence_dir(tmp_path))
    assert (seq.name, len(seq), seq.im_width, seq.im_height, seq.frame_rate) == (
        "SEQ-01",
        5,
        64,
        48,
        10.0,
    )
    frame1 = seq.gt_at(1)
    assert frame1.ids.tolist() == [1, 2]
    np.testing.assert_array_equal(frame1.boxes[0], [10, 20, 40, 60])
    assert frame1.boxes.dtype == np.float32
    assert frame1.active_pedestrians().ids.tolist() == [1]
    assert seq.gt_at(3).ids.shape == (0,) and seq.gt_at(3).boxes.shape == (0, 4)
    assert seq.gt_at(4).active_pedestrians().ids.shape == (0,)  # class 7 is not a pedestrian
    assert seq.detections_at(1).shape == (0, 5)
    np.testing.assert_array_equal(seq.detections_at(2), np.float32([[1, 2, 4, 6, 0.9]]))
    with pytest.raises(IndexError, match="outside 1..5"):
        seq.gt_at(6)


def test_choose_detection_file(tmp_path: Path) -> None:
    path = _make_sequence_dir(tmp_path)
    assert Sequence.detection_files(path) == ["det.txt", "other.txt"]
    assert Sequence.from_dir(path, det_file="other.txt").detections_at(4).shape == (1, 5)
    with pytest.raises(DeepMOTError, match=r"available: det.txt, other.txt"):
        Sequence.from_dir(path, det_file="missing.txt")


def test_without_seqinfo_length_and_size_come_from_files(tmp_path: Path) -> None:
    path = _make_sequence_dir(tmp_path, with_seqinfo=False, with_images=True)
    seq = Sequence.from_dir(path)
    assert (len(seq), seq.im_width, seq.im_height) == (4, 64, 48)
    image = seq.read_image(2)
    assert image.shape == (48, 64, 3) and image.dtype == np.uint8
    assert seq.image_path(3).name == "000003.jpg"


def test_rows_beyond_seq_length_are_an_error(tmp_path: Path) -> None:
    path = _make_sequence_dir(tmp_path)
    mot.write_seqinfo(path / "seqinfo.ini", mot.SeqInfo("SEQ-01", 3, 64, 48))
    with pytest.raises(MOTFormatError, match="beyond seqLength=3"):
        Sequence.from_dir(path)


def test_not_a_sequence_folder(tmp_path: Path) -> None:
    with pytest.raises(DeepMOTError, match="not a sequence folder"):
        Sequence.from_dir(tmp_path)


@pytest.mark.parametrize(
    ("length", "train", "val"), [(600, (1, 300), (451, 600)), (5, (1, 2), (5, 5))]
)
def test_paper_split(length: int, train: tuple[int, int], val: tuple[int, int]) -> None:
    t, v = paper_split(length)
    assert (t[0], t[-1]) == train and (v[0], v[-1]) == val
    assert set(t).isdisjoint(v)
    with pytest.raises(ValueError):
        paper_split(10, 0.8, 0.5)


def test_real_sequence_detections(mot_root: Path) -> None:
    seq = Sequence.from_dir(mot_root / "MOT17-09", det_file="deepmot_clean_SDP.txt")
    dets = seq.detections_at(1)
    assert dets.shape[1] == 5 and len(dets) > 0
    assert (dets[:, 4] == -1).all()  # cleaned detections carry no score
    assert (dets[:, 2] > dets[:, 0]).all()


def test_clip_renumbers_frames_and_keeps_images(tmp_path: Path) -> None:
    seq = Sequence.from_dir(_make_sequence_dir(tmp_path, with_images=True))
    clip = seq.clip(range(2, 5))
    assert (len(clip), clip.name) == (3, "SEQ-01[2:4]")
    np.testing.assert_array_equal(clip.gt_at(1).boxes, seq.gt_at(2).boxes)
    np.testing.assert_array_equal(clip.gt_at(3).ids, seq.gt_at(4).ids)
    np.testing.assert_array_equal(clip.detections_at(3), seq.detections_at(4))
    np.testing.assert_array_equal(clip.read_image(1), seq.read_image(2))
    assert clip.clip(range(2, 3)).image_path(1) == seq.image_path(3)
    with pytest.raises(ValueError, match="within 1..5"):
        seq.clip(range(4, 7))
