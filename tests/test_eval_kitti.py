"""KITTI tracking (``--benchmark KITTI``): parity with TrackEval's ``Kitti2DBox``, hand-made
cases of its preprocessing, and clear errors naming file and line."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _eval_helpers import (
    compare_with_reference,
    kitti_rows,
    trackeval_dataset,
    write_kitti,
    write_kitti_layout,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepmot.cli import main
from deepmot.metrics import evaluate, evaluate_trackers

trackeval = pytest.importorskip("trackeval")


def _reference(gt_root: Path, trackers: Path) -> dict:
    return trackeval_dataset(
        "Kitti2DBox", {"GT_FOLDER": str(gt_root), "TRACKERS_FOLDER": str(trackers)}
    )


def _check_parity(gt_root: Path, trackers: Path, workers: int = 1) -> dict:
    ours = evaluate_trackers(gt_root, trackers, workers=workers)
    reference = _reference(gt_root, trackers)
    assert set(ours) == set(reference)
    for tracker, by_class in reference.items():
        assert set(ours[tracker]) == set(by_class) == {"car", "pedestrian"}
        for cls, rows in by_class.items():
            assert compare_with_reference(ours[tracker][cls], rows) == [], (tracker, cls)
    return ours


# --------------------------------------------------------------------------- parity


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32 - 1))
def test_parity_on_generated_sequences(tmp_path_factory: pytest.TempPathFactory, seed: int) -> None:
    rng = np.random.default_rng(seed)
    root = tmp_path_factory.mktemp("kitti")
    sequences = {}
    for k in range(int(rng.integers(1, 4))):
        frames = int(rng.integers(3, 30))
        gt, tracker = kitti_rows(rng, frames, int(rng.integers(1, 14)))
        _, other = kitti_rows(rng, frames, int(rng.integers(0, 6)))
        sequences[f"{k:04d}"] = (frames, gt, {"a": tracker, "b": other})
    gt_root, trackers = write_kitti_layout(root, sequences, rng)
    _check_parity(gt_root, trackers)


def test_parity_with_two_workers_and_ties(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Boxes on a coarse grid (identical boxes, equal IoUs), rows shuffled within frames:
    ties are broken by file order in both evaluators, whatever the number of processes."""
    rng = np.random.default_rng(5)
    sequences = {}
    for k in range(3):
        gt, tracker = [], []
        for f in range(12):
            for obj in range(6):
                if rng.random() < 0.8:
                    x, y = rng.integers(0, 3, size=2) * 40.0
                    kind = ["Car", "Van", "Pedestrian", "Person"][obj % 4]
                    gt.append((f, obj, kind, int(rng.integers(0, 2)), 1, x, y, x + 80, y + 80))
            for tid in range(7):
                if rng.random() < 0.8:
                    x, y = rng.integers(0, 3, size=2) * 40.0
                    kind = ["Car", "Pedestrian"][tid % 2]
                    tracker.append((f, tid, kind, 0, 0, x, y, x + 80, y + 80, 1.0))
        sequences[f"{k:04d}"] = (12, gt, {"grid": tracker})
    gt_root, trackers = write_kitti_layout(tmp_path, sequences, rng)
    one = _check_parity(gt_root, trackers, workers=1)
    module = importlib.import_module("deepmot.metrics.evaluate")

    monkeypatch.setattr(module, "MIN_BYTES_PER_WORKER", 1)  # processes even for tiny files
    two = evaluate_trackers(gt_root, trackers, workers=2)
    for cls in ("car", "pedestrian"):
        assert compare_with_reference(two["grid"][cls], _as_reference(one["grid"][cls])) == []


def _as_reference(evaluation) -> dict:
    return {row: dict(by_family) for row, by_family in evaluation.rows().items()}


# --------------------------------------------------------------------------- hand-made cases


def _one_frame(tmp_path: Path, gt: list[tuple], tracker: list[tuple], cls: str = "car"):
    gt_root, trackers = write_kitti_layout(tmp_path, {"0000": (1, gt, {"t": tracker})})
    ours = evaluate(gt_root, trackers / "t" / "data", cls=cls)
    reference = _reference(gt_root, trackers)["t"][cls]
    assert compare_with_reference(ours, reference) == []
    return ours.combined["clear"], ours.counts["COMBINED"]


BOX = (100.0, 100.0, 200.0, 200.0)


def test_tracker_box_on_a_van_is_neither_tp_nor_fp(tmp_path: Path) -> None:
    clear, counts = _one_frame(
        tmp_path, [(0, 1, "Van", 0, 0, *BOX)], [(0, 7, "Car", 0, 0, *BOX, 0.9)]
    )
    assert (clear["CLR_TP"], clear["CLR_FP"], clear["CLR_FN"]) == (0, 0, 0)
    assert counts == {"Dets": 0, "GT_Dets": 0, "IDs": 0, "GT_IDs": 0}


@pytest.mark.parametrize("trunc, occ", [(1, 0), (2, 0), (0, 3)])
def test_truncated_or_occluded_gt_is_ignored_with_its_match(
    tmp_path: Path, trunc: int, occ: int
) -> None:
    clear, _ = _one_frame(
        tmp_path, [(0, 1, "Car", trunc, occ, *BOX)], [(0, 7, "Car", 0, 0, *BOX, 0.9)]
    )
    assert (clear["CLR_TP"], clear["CLR_FP"], clear["CLR_FN"]) == (0, 0, 0)


def test_occlusion_two_and_no_truncation_count(tmp_path: Path) -> None:
    clear, _ = _one_frame(tmp_path, [(0, 1, "Car", 0, 2, *BOX)], [(0, 7, "Car", 0, 0, *BOX, 0.9)])
    assert (clear["CLR_TP"], clear["CLR_FP"], clear["CLR_FN"]) == (1, 0, 0)


@pytest.mark.parametrize("height, fp", [(25.0, 0), (26.0, 1)])
def test_small_unmatched_tracker_boxes_are_removed(tmp_path: Path, height: float, fp: int) -> None:
    clear, _ = _one_frame(tmp_path, [], [(0, 3, "Car", 0, 0, 10.0, 10.0, 90.0, 10.0 + height)])
    assert clear["CLR_FP"] == fp


def test_unmatched_tracker_box_in_dontcare_region_is_removed(tmp_path: Path) -> None:
    gt = [(0, -1, "DontCare", -1, -1, 0.0, 0.0, 300.0, 300.0), (0, 1, "Car", 0, 0, *BOX)]
    tracker = [
        (0, 7, "Car", 0, 0, *BOX, 0.9),  # matched: kept (a TP) although inside the region
        (0, 8, "Car", 0, 0, 0.0, 0.0, 60.0, 60.0, 0.9),  # unmatched, inside: removed
        (0, 9, "Car", 0, 0, 250.0, 250.0, 450.0, 450.0, 0.9),  # 1/16 inside: a FP
    ]
    clear, counts = _one_frame(tmp_path, gt, tracker)
    assert (clear["CLR_TP"], clear["CLR_FP"]) == (1, 1)
    assert counts["Dets"] == 2


def test_pedestrian_class_and_person_distractor(tmp_path: Path) -> None:
    gt = [(0, 1, "Person", 0, 0, *BOX), (0, 2, "Pedestrian", 0, 0, 300.0, 100.0, 340.0, 200.0)]
    tracker = [
        (0, 7, "Pedestrian", 0, 0, *BOX, 0.9),  # on a person sitting: removed
        (0, 8, "Pedestrian", 0, 0, 300.0, 100.0, 340.0, 200.0, 0.9),  # TP
        (0, 9, "Car", 0, 0, 600.0, 100.0, 700.0, 200.0, 0.9),  # another class: not seen
        (0, -1, "Pedestrian", 0, 0, 800.0, 100.0, 840.0, 200.0, 0.9),  # negative id: dropped
    ]
    clear, _ = _one_frame(tmp_path, gt, tracker, cls="pedestrian")
    assert (clear["CLR_TP"], clear["CLR_FP"], clear["CLR_FN"]) == (1, 0, 0)


def test_cli_evaluates_car_and_pedestrian(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(3)
    gt, tracker = kitti_rows(rng, 10, 8)
    gt_root, trackers = write_kitti_layout(tmp_path, {"0000": (10, gt, {"t": tracker})})
    out = tmp_path / "out"
    assert main(["eval", str(gt_root), str(trackers), "--output-folder", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "== t (car) ==" in printed and "== t (pedestrian) ==" in printed
    assert {p.name for p in (out / "t").iterdir()} == {
        "car_summary.txt",
        "car_detailed.csv",
        "pedestrian_summary.txt",
        "pedestrian_detailed.csv",
    }
    assert main(["eval", str(gt_root), str(trackers / "t" / "data"), "--classes", "car"]) == 0
    assert "pedestrian" not in capsys.readouterr().out


def test_kitti_eval_does_not_import_numpy_ma(tmp_path: Path) -> None:
    """NumPy 2's plain np.unique / np.setdiff1d import numpy.ma on their first call (about
    15 ms of start-up): the KITTI preprocessing and the events avoid them. Two tracker boxes
    on one gt box make the frame's matching contested, so the assignment path runs."""
    rng = np.random.default_rng(4)
    gt, tracker = kitti_rows(rng, 12, 10)
    gt.append((3, 77, "Car", 0, 0, 500.0, 500.0, 600.0, 600.0))
    tracker += [(3, 901, "Car", 0, 0, 501.0, 500.0, 601.0, 600.0, 0.9)]
    tracker += [(3, 902, "Car", 0, 0, 499.0, 500.0, 599.0, 600.0, 0.8)]
    gt_root, trackers = write_kitti_layout(tmp_path, {"0000": (12, gt, {"t": tracker})})
    code = (
        "import sys\n"
        "from deepmot.cli import main\n"
        f"rc = main(['eval', {str(gt_root)!r}, {str(trackers / 't' / 'data')!r}, '--workers', "
        f"'1', '--classes', 'car', '--events', {str(tmp_path / 'events.csv')!r}])\n"
        "print('MA', 'numpy.ma' in sys.modules)\n"
        "sys.exit(rc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "MA False" in done.stdout
    assert "FP" in (tmp_path / "events.csv").read_text()


# --------------------------------------------------------------------------- errors


def _layout_with(
    tmp_path: Path, tracker_text: str, gt_text: str | None = None
) -> tuple[Path, Path]:
    gt_root, trackers = write_kitti_layout(
        tmp_path, {"0000": (5, [(0, 1, "Car", 0, 0, *BOX)], {"t": []})}
    )
    (trackers / "t" / "data" / "0000.txt").write_text(tracker_text)
    if gt_text is not None:
        (gt_root / "label_02" / "0000.txt").write_text(gt_text)
    return gt_root, trackers


ROW = "0 1 Car 0 0 -10 100 100 200 200 -1 -1 -1 -1000 -1000 -1000 -10 0.9\n"


@pytest.mark.parametrize(
    "tracker_text, gt_text, message",
    [
        (ROW + "1 2 Car 0 0 -10 1 2 3\n", None, "0000.txt:2: expected 17 or 18 columns"),
        (ROW.replace("Car", "Person_sitting"), None, "0000.txt:1: unknown type 'person_sitting'"),
        (ROW, ROW + ROW.replace("0 1 Car", "7 1 Car"), "0000.txt:2: frame 7 is outside"),
        (ROW.replace("0 1 Car", "5 1 Car"), None, "frames 0..4"),
        (ROW + ROW, None, "0000.txt:2: id 1 appears twice in frame 0"),
        (ROW.replace("100 100", "100 abc"), None, "0000.txt:1: column 8 is not a number"),
        (ROW.replace("0 1 Car", "-1 1 Car"), None, "0000.txt:1: frame must be an integer >= 0"),
    ],
)
def test_bad_kitti_input_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture, tracker_text: str, gt_text, message: str
) -> None:
    gt_root, trackers = _layout_with(tmp_path, tracker_text, gt_text)
    assert main(["eval", str(gt_root), str(trackers), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deepmot eval: error:") and message in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_missing_seqmap_names_the_split(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    gt_root, trackers = _layout_with(tmp_path, ROW)
    assert main(["eval", str(gt_root), str(trackers), "--split", "val"]) == 2
    err = capsys.readouterr().err
    assert "evaluate_tracking.seqmap.val" in err and "evaluate_tracking.seqmap.training" in err


def test_reader_keeps_file_order_and_reads_scores(tmp_path: Path) -> None:
    from deepmot.io.kitti import read_kitti_tracking

    path = tmp_path / "x.txt"
    write_kitti(path, [(1, 4, "Car", 0, 0, *BOX, 0.25), (0, 9, "dontcare", -1, -1, *BOX)])
    table = read_kitti_tracking(path)
    assert table.frames.tolist() == [0, 1] and table.classes.tolist() == [9, 1]
    assert table.scores.tolist() == [1.0, 0.25] and table.boxes[1].tolist() == list(BOX)
