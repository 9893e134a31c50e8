"""MOTChallenge readers and writers: round trips, validation errors, real files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from deepmot.errors import MOTFormatError
from deepmot.io import mot


def _write(tmp_path: Path, text: str, name: str = "f.txt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------- round trips


def _random_gt(rng: np.random.Generator, n: int = 50) -> mot.GroundTruth:
    frames = rng.integers(1, 20, n)
    ids = np.arange(n) + 7  # unique ids make (frame, id) unique
    order = np.lexsort((ids, frames))
    boxes = np.round(rng.uniform(0, 500, (n, 4)), 3)
    return mot.GroundTruth(
        frames=frames[order],
        ids=ids[order],
        boxes_xywh=boxes[order],
        flags=rng.integers(0, 2, n)[order],
        classes=rng.integers(1, 13, n)[order],
        visibility=rng.uniform(0, 1, n)[order],  # full float64 precision
    )


def test_gt_round_trip_is_exact(tmp_path: Path) -> None:
    gt = _random_gt(np.random.default_rng(0))
    path = tmp_path / "gt" / "gt.txt"
    mot.write_gt(path, gt)
    back = mot.read_gt(path)
    for name in ("frames", "ids", "boxes_xywh", "flags", "classes", "visibility"):
        np.testing.assert_array_equal(getattr(back, name), getattr(gt, name), err_msg=name)
    mot.write_gt(tmp_path / "again.txt", back)
    assert (tmp_path / "again.txt").read_text() == path.read_text()


def test_detections_round_trip_is_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n = 40
    dets = mot.Detections(
        frames=np.sort(rng.integers(1, 10, n)),
        boxes_xywh=rng.uniform(0, 300, (n, 4)),
        scores=np.where(rng.uniform(size=n) < 0.3, -1.0, rng.uniform(-2, 50, n)),
    )
    mot.write_detections(tmp_path / "det.txt", dets)
    back = mot.read_detections(tmp_path / "det.txt")
    np.testing.assert_array_equal(back.frames, dets.frames)
    np.testing.assert_array_equal(back.boxes_xywh, dets.boxes_xywh)
    np.testing.assert_array_equal(back.scores, dets.scores)


def test_results_round_trip_is_exact_and_sorted(tmp_path: Path) -> None:
    results = mot.Results(
        frames=np.array([3, 1, 1, 2]),
        ids=np.array([5, 9, 2, 5]),
        boxes_xywh=np.array([[1.5, 2, 3, 4], [0, 0, 1, 1], [10, 10, 5, 5], [1e-7, 2, 3.25, 4]]),
        scores=np.array([0.9, 1, 0.5, 0.125]),
    )
    mot.write_results(tmp_path / "r.txt", results)
    lines = (tmp_path / "r.txt").read_text().splitlines()
    assert lines[0] == "1,2,10,10,5,5,0.5,-1,-1,-1"
    back = mot.read_results(tmp_path / "r.txt")
    order = np.lexsort((results.ids, results.frames))
    np.testing.assert_array_equal(back.frames, results.frames[order])
    np.testing.assert_array_equal(back.ids, results.ids[order])
    np.testing.assert_array_equal(back.boxes_xywh, results.boxes_xywh[order])
    np.testing.assert_array_equal(back.scores, results.scores[order])


def test_write_results_rejects_duplicate_ids(tmp_path: Path) -> None:
    results = mot.Results(
        frames=np.array([1, 1]), ids=np.array([4, 4]), boxes_xywh=np.ones((2, 4)), scores=np.ones(2)
    )
    with pytest.raises(ValueError, match="id 4 appears twice in frame 1"):
        mot.write_results(tmp_path / "r.txt", results)
    assert not (tmp_path / "r.txt").exists()


def test_seqinfo_round_trip(tmp_path: Path) -> None:
    info = mot.SeqInfo("SEQ-01", 120, 640, 480, 14.0, "img1", ".jpg", {"extraKey": "x"})
    mot.write_seqinfo(tmp_path / "seqinfo.ini", info)
    assert mot.read_seqinfo(tmp_path / "seqinfo.ini") == info


def test_atomic_write_leaves_old_file_on_failure(tmp_path: Path) -> None:
    path = _write(tmp_path, "old\n")
    with pytest.raises(ValueError):
        mot.write_results(
            path,
            mot.Results(np.array([1]), np.array([1]), np.array([[0, 0, np.nan, 1.0]]), np.ones(1)),
        )
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]  # no temp file left behind


# ---------------------------------------------------------------- parsing details


def test_unsorted_file_is_sorted_by_frame_then_id(tmp_path: Path) -> None:
    path = _write(tmp_path, "2,1,0,0,1,1,1,1,1\n1,3,0,0,1,1,1,1,1\n1,2,0,0,1,1,1,1,1\n")
    gt = mot.read_gt(path)
    assert gt.frames.tolist() == [1, 1, 2]
    assert gt.ids.tolist() == [2, 3, 1]


def test_whitespace_separated_and_blank_lines_are_accepted(tmp_path: Path) -> None:
    path = _write(tmp_path, "1 -1 10 20 30 40 0.9\n\n2 -1 1 2 3 4 0.5\n")
    dets = mot.read_detections(path)
    assert dets.frames.tolist() == [1, 2]
    np.testing.assert_array_equal(dets.boxes_xywh[0], [10, 20, 30, 40])


def test_blank_lines_keep_the_line_numbers_of_errors(tmp_path: Path) -> None:
    """Blank lines (in the middle, at the start, doubled at the end) leave the fast parser;
    the rows are read all the same and an error names the file's own line."""
    rows = "\n1,1,0,0,1,1,1,1,1\n\n2,1,0,0,1,1,1,1,1\n\n"
    assert mot.read_gt(_write(tmp_path, rows)).frames.tolist() == [1, 2]
    bad = "1,1,0,0,1,1,1,1,1\n\n2,1,0,0,-5,1,1,1,1\n"
    with pytest.raises(MOTFormatError, match="width and height") as error:
        mot.read_gt(_write(tmp_path, bad))
    assert error.value.line == 3


def test_mot15_ten_column_gt_is_pedestrians_fully_visible(tmp_path: Path) -> None:
    path = _write(tmp_path, "1,1,10,20,30,40,1,-1,-1,-1\n1,2,10,20,30,40,0,-1,-1,-1\n")
    gt = mot.read_gt(path)
    assert gt.classes.tolist() == [1, 1]
    assert gt.visibility.tolist() == [1.0, 1.0]
    assert gt.flags.tolist() == [1, 0]


def test_empty_file_gives_empty_tables(tmp_path: Path) -> None:
    path = _write(tmp_path, "")
    assert len(mot.read_results(path)) == 0
    assert mot.read_gt(path).boxes_xywh.shape == (0, 4)


# ---------------------------------------------------------------- malformed input

BAD_CASES = [
    # (reader, text, expected line, message fragment)
    (mot.read_gt, "1,1,0,0,1,1,1,1,1\n1,2,0,0,1,1,1\n", 2, "expected 9 to 10 columns"),
    (mot.read_gt, "1,1,0,0,1,1,1,1,1\n\n1,2,0,zero,1,1,1,1,1\n", 3, "column 4 is not a number"),
    (mot.read_gt, "0,1,0,0,1,1,1,1,1\n", 1, "frame must be an integer >= 1"),
    (mot.read_gt, "1.5,1,0,0,1,1,1,1,1\n", 1, "frame must be an integer >= 1"),
    (mot.read_gt, "1,1,0,0,-3,1,1,1,1\n", 1, "width and height must be >= 0"),
    (mot.read_gt, "1,1,0,0,1,nan,1,1,1\n", 1, "width and height must be >= 0 and not NaN"),
    (mot.read_gt, "1,1,0,0,1,inf,1,1,1\n", 1, "must be finite"),
    (mot.read_gt, "1,1,nan,0,1,1,1,1,1\n", 1, "x and y must be finite"),
    (
        mot.read_gt,
        "1,2,0,0,1,1,1,1,1\n2,2,0,0,1,1,1,1,1\n1,2,5,5,1,1,1,1,1\n",
        3,
        "id 2 appears twice in frame 1",
    ),
    (mot.read_gt, "1,2.5,0,0,1,1,1,1,1\n", 1, "id must be an integer"),
    (mot.read_results, "1,1,0,0,1,1\n1,18014398509481984,0,0,1,1\n", 2, "is too large"),
    (mot.read_detections, "1,-1,0,0,1,1\n", 1, "expected 7 to 10 columns"),
    (mot.read_detections, "1,-1,0,0,1,1,high\n", 1, "column 7 is not a number"),
    (mot.read_detections, "-2,-1,0,0,1,1,0.5\n", 1, "frame must be an integer >= 1"),
    (mot.read_detections, "1,-1,0,0,1,-1,0.5\n", 1, "width and height must be >= 0"),
    (mot.read_results, "1,1,0,0,1,1,1,-1,-1,-1,7\n", 1, "expected 6 to 10 columns"),
    (mot.read_results, "1,1,0,0,1,1\n1,x,0,0,1,1\n", 2, "column 2 is not a number"),
    (mot.read_results, "3,1,0,0,1,1,1\n3,1,0,0,2,2,1\n", 2, "id 1 appears twice in frame 3"),
    (mot.read_results, "1,1,0,0,1,nan,1\n", 1, "width and height"),
    (mot.read_results, "0,1,0,0,1,1,1\n", 1, "frame must be an integer >= 1"),
]


@pytest.mark.parametrize(("reader", "text", "line", "fragment"), BAD_CASES)
def test_malformed_input_names_file_and_line(tmp_path: Path, reader, text, line, fragment) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(MOTFormatError) as info:
        reader(path)
    assert info.value.line == line
    assert info.value.path == path
    assert fragment in str(info.value)
    assert str(info.value).startswith(f"{path}:{line}: ")


def test_duplicate_error_points_at_both_lines(tmp_path: Path) -> None:
    path = _write(tmp_path, "1,2,0,0,1,1,1,1,1\n2,2,0,0,1,1,1,1,1\n1,2,5,5,1,1,1,1,1\n")
    with pytest.raises(MOTFormatError, match="also on line 1"):
        mot.read_gt(path)


def test_missing_file_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(MOTFormatError, match="file not found"):
        mot.read_results(tmp_path / "nope.txt")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[Other]\nx=1\n", "no [Sequence] section"),
        ("[Sequence]\nimWidth=10\nimHeight=10\n", "missing key 'seqLength'"),
        ("[Sequence]\nseqLength=ten\nimWidth=10\nimHeight=10\n", "seqLength is not a valid int"),
        ("[Sequence]\nseqLength=0\nimWidth=10\nimHeight=10\n", "seqLength must be > 0"),
        ("not an ini", "not an ini file"),
    ],
)
def test_malformed_seqinfo(tmp_path: Path, text: str, fragment: str) -> None:
    path = _write(tmp_path, text, "seqinfo.ini")
    with pytest.raises(MOTFormatError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        mot.read_seqinfo(path)


# ---------------------------------------------------------------- discovery


def test_find_sequences_in_motchallenge_layout(tmp_path: Path) -> None:
    for name in ("MOT17-04-FRCNN", "MOT17-02-FRCNN"):
        mot.write_seqinfo(
            tmp_path / "MOT17" / "train" / name / "seqinfo.ini", mot.SeqInfo(name, 5, 10, 10)
        )
    (tmp_path / "MOT17" / "train" / "notes").mkdir()
    found = mot.find_sequences(tmp_path)
    assert [p.name for p in found] == ["MOT17-02-FRCNN", "MOT17-04-FRCNN"]
    assert mot.find_sequences(found[0]) == [found[0]]
    with pytest.raises(FileNotFoundError):
        mot.find_sequences(tmp_path / "absent")


# ---------------------------------------------------------------- real files


def test_real_files_load_with_expected_counts(mot_root: Path) -> None:
    """Every shared sequence loads; active pedestrian counts match sequences.csv."""
    index = {row["seq"]: row for row in csv.DictReader((mot_root.parent / "sequences.csv").open())}
    found = {p.name: p for p in mot.find_sequences(mot_root)}
    assert set(index) <= set(found)
    for name, row in index.items():
        gt = mot.read_gt(found[name] / "gt" / "gt.txt")
        assert len(gt) == int(row["gt_lines"]), name
        active = gt.flags == 1
        if row["benchmark"] != "MOT15":
            active &= gt.classes == 1
        assert int(active.sum()) == int(row["gt_active_pedestrian_boxes"]), name
        info = mot.read_seqinfo(found[name] / "seqinfo.ini")
        assert (info.im_width, info.im_height, info.seq_length) == (
            int(row["imWidth"]),
            int(row["imHeight"]),
            int(row["seqLength"]),
        )
        for det_name in filter(None, row["det_files"].split(";")):
            dets = mot.read_detections(found[name] / "det" / det_name)
            assert len(dets) > 0 and dets.frames.max() <= info.seq_length


def test_written_files_have_a_normal_mode(tmp_path: Path) -> None:
    import os
    import stat

    mot.write_seqinfo(tmp_path / "seqinfo.ini", mot.SeqInfo("S", 1, 1, 1))
    mask = os.umask(0)
    os.umask(mask)
    mode = stat.S_IMODE((tmp_path / "seqinfo.ini").stat().st_mode)
    assert mode == 0o666 & ~mask
