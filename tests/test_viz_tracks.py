"""Pictures a researcher can read: tracks over the ground truth with misses and false positives,
a video of a tracked sequence, tables with ↑/↓, fixed decimals, the best in bold and a caption."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from deepmot.data.synthetic import SceneConfig, generate_scene
from deepmot.io.mot import Results
from deepmot.train.compare import format_table
from deepmot.viz.tracks import (
    draw_tracking_frame,
    match_frame,
    render_tracking_video,
    write_tracking_png,
)


def test_match_frame_by_hand() -> None:
    gt = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [50, 50, 60, 60]], float)
    tracks = np.array([[1, 0, 11, 10], [21, 1, 31, 11], [100, 100, 110, 110]], float)
    m = match_frame(tracks, gt)
    assert m.pairs.tolist() == [[0, 0], [1, 1]]
    assert m.fp.tolist() == [2] and m.fn.tolist() == [2]
    empty = match_frame(np.zeros((0, 4)), gt)
    assert len(empty.pairs) == 0 and empty.fn.tolist() == [0, 1, 2]


def test_the_frame_shows_misses_false_positives_and_a_header() -> None:
    canvas = np.full((120, 160, 3), 238, np.uint8)
    gt = np.array([[10, 10, 40, 80], [90, 10, 120, 80]], float)
    tracks = np.array([[11, 10, 41, 80], [130, 90, 150, 115]], float)
    out = draw_tracking_frame(canvas, tracks, np.array([3, 4]), gt, {3: [(20, 40), (26, 45)]})
    assert out.shape[1] == 160 and out.shape[0] > 120  # the header band above the frame
    frame = out[out.shape[0] - 120 :]
    red = (frame[..., 0] > 200) & (frame[..., 1] < 60) & (frame[..., 2] < 60)
    assert red[10:81, 88:123].any()  # the missed object
    assert red[92:113, 132:148].any()  # the cross on the false positive
    assert (canvas == 238).all()  # drawn on a copy


@pytest.mark.parametrize(("width", "height"), [(320, 240), (640, 480), (1920, 1080)])
def test_the_header_is_a_small_band_at_any_size(width: int, height: int) -> None:
    canvas = np.full((height, width, 3), 238, np.uint8)
    gt = np.array([[10, 10, 40, 80], [90, 10, 120, 80]], float) * width / 320
    tracks = gt[:1] + 2
    title = "constant_velocity (motion.safetensors), split val; PETS09-S2L1, frame 1234"
    out = draw_tracking_frame(canvas, tracks, np.array([7]), gt, title=title)
    band = out.shape[0] - height
    assert 0 < band <= 0.12 * height, (band, height)
    assert out.shape[1] == width and (out[band:] != 238).any()  # the frame under it, drawn on
    text = (out[:band] < 128).any(axis=2)
    assert text.any() and not text[:, -3:].any()  # a line too long is cut short, not clipped


def test_without_ground_truth_the_tracks_alone() -> None:
    canvas = np.full((120, 160, 3), 238, np.uint8)
    tracks = np.array([[11, 10, 41, 80], [130, 90, 150, 115]], float)
    out = draw_tracking_frame(canvas, tracks, np.array([3, 4]), None, title="t")
    frame = out[out.shape[0] - 120 :]
    red = (frame[..., 0] > 200) & (frame[..., 1] < 60) & (frame[..., 2] < 60)
    assert not red.any()  # no misses, no false-positive crosses
    assert (frame[10:81, 11:42] != 238).any() and (frame[90:116, 130:151] != 238).any()


@pytest.fixture(scope="module")
def tracked():
    seq = generate_scene(SceneConfig(frames=12, people=4, width=160, height=120)).to_sequence()
    gt = seq.gt
    boxes = gt.boxes_xywh + np.where(gt.ids[:, None] == gt.ids.min(), 40.0, 0.0)  # one astray
    return seq, Results(gt.frames, gt.ids, boxes, np.ones(len(gt)))


def test_png_over_the_frame(tracked, tmp_path: Path) -> None:
    seq, results = tracked
    path = write_tracking_png(seq, results, 6, tmp_path / "t.png", "a title")
    image = cv2.imread(str(path))
    assert image.shape[1] == 160 and image.shape[0] > 120
    with pytest.raises(ValueError, match="not a frame"):
        write_tracking_png(seq, results, 99, tmp_path / "u.png")


def test_video_of_a_sequence(tracked, tmp_path: Path) -> None:
    seq, results = tracked
    path = render_tracking_video(seq, results, tmp_path / "v" / "seq.mp4", "title")
    capture = cv2.VideoCapture(str(path))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    assert [p.name for p in path.parent.iterdir()] == ["seq.mp4"]  # no partial file left
    with pytest.raises(ValueError, match=".mp4 or .avi"):
        render_tracking_video(seq, results, tmp_path / "seq.gif")


def test_table_has_arrows_fixed_decimals_bold_best_and_a_caption() -> None:
    rows = [
        {"variant": "A", "MOTA": 60.1, "MOTP": 80.0, "IDF1": 70.25, "MT": 3, "ML": 2,
         "FP": 10, "FN": 5, "IDS": 1},
        {"variant": "B", "MOTA": -5.0, "MOTP": 81.5, "IDF1": 70.25, "MT": 2, "ML": 1,
         "FP": 12, "FN": 4, "IDS": 1},
    ]  # fmt: skip
    lines = format_table(rows, "Data: x; split val; 2 steps; seed 0.").splitlines()
    assert lines[0] == "| variant | MOTA ↑ | MOTP ↑ | IDF1 ↑ | MT ↑ | ML ↓ | FP ↓ | FN ↓ | IDS ↓ |"
    assert lines[2] == "| A | **60.10** | 80.00 | **70.25** | **3** | 2 | **10** | 5 | **1** |"
    assert lines[3] == "| B | -5.00 | **81.50** | **70.25** | 2 | **1** | 12 | **4** | **1** |"
    assert "percent" in lines[5] and lines[6] == "Data: x; split val; 2 steps; seed 0."


def test_track_command_renders_videos(tmp_path: Path) -> None:
    from deepmot.cli import main

    data = tmp_path / "data"
    synth = ["synth", str(data), "--sequences", "1", "--frames", "12", "--width", "96"]
    assert main([*synth, "--height", "96", "--people", "3", "--no-progress", "--no-preview"]) == 0
    track = ["track", str(data), "--out", str(tmp_path / "r"), "--tracker", "kalman"]
    assert main([*track, "--video", str(tmp_path / "v"), "--no-progress"]) == 0
    capture = cv2.VideoCapture(str(tmp_path / "v" / "SYNTH-01.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 12


def test_plots_are_written_with_titles(tmp_path: Path) -> None:
    from deepmot.viz.dhn import plot_size_study, plot_training_log
    from deepmot.viz.training import plot_training_curves

    log = tmp_path / "log.csv"
    rows = [f"{i},{1 / i},{-0.4 + i / 100},0.8" for i in range(1, 31)]
    log.write_text("iteration,loss,true_mota,true_motp\n" + "\n".join(rows) + "\n")
    dhn_log = tmp_path / "dhn_log.csv"
    dhn_log.write_text("iteration,loss,wa\n" + "\n".join(f"{i},{1 / i},0.9" for i in range(1, 9)))
    curves = {"DHN": {2: {"row": 95.0, "col": 94.0}, 10: {"row": 90.0, "col": 91.0}}}
    for path in (
        plot_training_curves({"run": log}, tmp_path / "a.png", title="motion on synthetic"),
        plot_training_log(dhn_log, tmp_path / "b.png", smooth=2),
        plot_size_study(curves, tmp_path / "c.png"),
    ):
        assert cv2.imread(str(path)) is not None
