"""TrackEval's folder layout, several trackers, TrackEval's summary/detailed files, DanceTrack and
SportsMOT, ``--workers`` and ``--plots``."""

from __future__ import annotations

import csv
import importlib
from pathlib import Path

import numpy as np
import pytest
from _eval_helpers import (
    compare_with_reference,
    synthetic_sequence,
    trackeval_dataset,
    write_synthetic,
)

from deepmot.cli import main
from deepmot.io.mot import GroundTruth
from deepmot.metrics import evaluate, evaluate_trackers

pytest.importorskip("trackeval")

SEQS = ("MOT17-02-FRCNN", "MOT17-04-FRCNN", "MOT17-09-FRCNN")


def _layout(
    root: Path,
    gt_set: str = "MOT17-train",
    names=SEQS,
    trackers=("A", "B"),
    seed: int = 0,
    pedestrians_only: bool = False,
) -> tuple[Path, Path]:
    """TrackEval's ``gt/mot_challenge/<set>/<seq>``, ``seqmaps/<set>.txt`` and
    ``trackers/mot_challenge/<set>/<tracker>/data/<seq>.txt``."""
    rng = np.random.default_rng(seed)
    gt_root = root / "gt" / "mot_challenge"
    tr_root = root / "trackers" / "mot_challenge"
    (gt_root / "seqmaps").mkdir(parents=True)
    (gt_root / "seqmaps" / f"{gt_set}.txt").write_text("name\n" + "\n".join(names) + "\n")
    for k, name in enumerate(names):
        frames = 20 + 7 * k
        gt, first = synthetic_sequence(rng, num_frames=frames, num_objects=10 + k)
        if pedestrians_only:  # DanceTrack/SportsMOT: every box a pedestrian, flag 1
            n = len(gt)
            gt = GroundTruth(
                gt.frames, gt.ids, gt.boxes_xywh, np.ones(n, int), np.ones(n, int), np.ones(n)
            )
        for t, tracker in enumerate(trackers):
            results = first if t == 0 else synthetic_sequence(rng, frames, 10 + k)[1]
            data = tr_root / gt_set / tracker / "data"
            data.mkdir(parents=True, exist_ok=True)
            write_synthetic(gt_root / gt_set, name, gt, results, frames, data)
    return gt_root, tr_root


def _reference(gt_root: Path, tr_root: Path, benchmark: str, split: str, **kw) -> dict:
    config = {
        "GT_FOLDER": str(gt_root),
        "TRACKERS_FOLDER": str(tr_root),
        "BENCHMARK": benchmark,
        "SPLIT_TO_EVAL": split,
    }
    return trackeval_dataset("MotChallenge2DBox", config, **kw)


def test_two_trackers_match_trackeval_and_its_files(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    gt_root, tr_root = _layout(tmp_path)
    reference = _reference(
        gt_root, tr_root, "MOT17", "train", OUTPUT_SUMMARY=True, OUTPUT_DETAILED=True
    )
    # TrackEval wrote its files next to the trackers; ours go to --output-folder.
    ours_out = tmp_path / "ours"
    rc = main(["eval", str(gt_root), str(tr_root), "--output-folder", str(ours_out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "== A (pedestrian) ==" in printed and "== B (pedestrian) ==" in printed
    table = printed[printed.index("Trackers (pedestrian)") :].splitlines()
    assert table[1].split()[0] == "A" and table[2].split()[0] == "B"

    ours = evaluate_trackers(gt_root, tr_root)
    assert list(ours) == ["A", "B"]
    for tracker in ("A", "B"):
        evaluation = ours[tracker]["pedestrian"]
        assert compare_with_reference(evaluation, reference[tracker]["pedestrian"]) == []
        assert set(evaluation.sequences) == set(SEQS)
        theirs_dir = tr_root / "MOT17-train" / tracker
        mine_dir = ours_out / tracker
        summary = (mine_dir / "pedestrian_summary.txt").read_bytes()
        assert summary == (theirs_dir / "pedestrian_summary.txt").read_bytes()
        _same_detailed(mine_dir / "pedestrian_detailed.csv", theirs_dir / "pedestrian_detailed.csv")


def _same_detailed(mine: Path, theirs: Path) -> None:
    """Same header, rows, integers; floats printed alike and equal to 1e-9 (the last digits
    can differ with the order of float sums)."""
    assert mine.read_bytes().count(b"\r\n") == theirs.read_bytes().count(b"\r\n")
    with open(mine, newline="") as a, open(theirs, newline="") as b:
        rows_a, rows_b = list(csv.reader(a)), list(csv.reader(b))
    assert rows_a[0] == rows_b[0]
    assert [r[0] for r in rows_a] == [r[0] for r in rows_b]
    for ra, rb in zip(rows_a[1:], rows_b[1:], strict=True):
        for field, x, y in zip(rows_a[0][1:], ra[1:], rb[1:], strict=True):
            assert ("." in x or "e" in x) == ("." in y or "e" in y), (field, x, y)
            assert float(x) == pytest.approx(float(y), abs=1e-9, rel=0), (field, x, y)


@pytest.mark.parametrize(
    "gt_sub, tr_sub, args, expected",
    [
        ("", "", [], ["A", "B"]),
        ("MOT17-train", "MOT17-train", [], ["A", "B"]),
        ("", "", ["--trackers", "B"], ["B"]),
        ("MOT17-train", "MOT17-train/A/data", [], ["A"]),
        ("", "", ["--benchmark", "MOT17", "--split", "train"], ["A", "B"]),
    ],
)
def test_every_entry_point_of_the_layout(
    tmp_path: Path, capsys: pytest.CaptureFixture, gt_sub: str, tr_sub: str, args, expected
) -> None:
    gt_root, tr_root = _layout(tmp_path, trackers=("A", "B"))
    out = tmp_path / "res.json"
    rc = main(["eval", str(gt_root / gt_sub), str(tr_root / tr_sub), "--out", str(out), *args])
    assert rc == 0, capsys.readouterr().err
    import json

    payload = json.loads(out.read_text())
    names = list(payload["trackers"]) if "trackers" in payload else expected[:1]
    assert names == expected
    if "trackers" not in payload:
        assert set(payload["results"]) == {*SEQS, "COMBINED"}


def test_seqmap_picks_the_sequences(tmp_path: Path) -> None:
    gt_root, tr_root = _layout(tmp_path, trackers=("A",))
    (gt_root / "seqmaps" / "MOT17-train.txt").write_text("name\nMOT17-09-FRCNN\nMOT17-02-FRCNN\n")
    ours = evaluate(gt_root, tr_root / "MOT17-train" / "A" / "data")
    assert list(ours.sequences) == ["MOT17-02-FRCNN", "MOT17-09-FRCNN"]  # TrackEval's order
    reference = _reference(gt_root, tr_root, "MOT17", "train")
    assert compare_with_reference(ours, reference["A"]["pedestrian"]) == []


@pytest.mark.parametrize(
    "benchmark, split, names",
    [
        ("DanceTrack", "val", ("dancetrack0004", "dancetrack0019")),
        ("SportsMOT", "val", ("v_-6Os86HzwCs_c001", "v_2j7kLB-vEEk_c010")),
    ],
)
def test_dancetrack_and_sportsmot_are_mot17_style(
    tmp_path: Path, benchmark: str, split: str, names
) -> None:
    gt_root, tr_root = _layout(
        tmp_path, f"{benchmark}-{split}", names, ("A",), seed=3, pedestrians_only=True
    )
    reference = _reference(gt_root, tr_root, benchmark, split)
    for bench in ("auto", benchmark):
        ours = evaluate_trackers(gt_root, tr_root, benchmark=bench, split=split)
        assert compare_with_reference(ours["A"]["pedestrian"], reference["A"]["pedestrian"]) == []
        assert set(ours["A"]["pedestrian"].benchmarks.values()) == {"MOT17"}


@pytest.fixture
def processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker processes even for tiny inputs (the command starts them only for large ones)."""
    module = importlib.import_module("deepmot.metrics.evaluate")

    monkeypatch.setattr(module, "MIN_BYTES_PER_WORKER", 1)


def test_workers_do_not_change_a_number(tmp_path: Path, processes: None) -> None:
    gt_root, tr_root = _layout(tmp_path, trackers=("A", "B"), seed=9)
    one = evaluate_trackers(gt_root, tr_root, workers=1, with_events=True)
    two = evaluate_trackers(gt_root, tr_root, workers=2, with_events=True)
    for tracker in ("A", "B"):
        a, b = one[tracker]["pedestrian"], two[tracker]["pedestrian"]
        assert a.counts == b.counts and list(a.sequences) == list(b.sequences)
        for row, by_family in a.rows().items():
            for family, res in by_family.items():
                for field, value in res.items():
                    assert np.array_equal(value, b.rows()[row][family][field]), (row, field)
        for seq, events in a.events.items():
            for key, column in events.items():
                nan = column.dtype.kind == "f"
                assert np.array_equal(column, b.events[seq][key], equal_nan=nan), (seq, key)


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda g, t: (g / "seqmaps" / "MOT17-train.txt").unlink(),
            "no seqmap seqmaps/MOT17-train",
        ),
        (
            lambda g, t: (g / "seqmaps" / "MOT17-train.txt").write_text("name\nMOT17-99-X\n"),
            "sequence MOT17-99-X has no ground truth",
        ),
        (
            lambda g, t: (t / "MOT17-train" / "B" / "data" / "MOT17-04-FRCNN.txt").unlink(),
            "no result file for sequence MOT17-04-FRCNN",
        ),
        (
            lambda g, t: (t / "MOT17-train" / "B" / "data" / "MOT17-04-FRCNN.txt").write_text(
                "1,2,3\n"
            ),
            "MOT17-04-FRCNN.txt:1: expected 6 to 10 columns",
        ),
    ],
)
def test_layout_errors_are_clear(
    tmp_path: Path, capsys: pytest.CaptureFixture, processes: None, damage, message: str
) -> None:
    gt_root, tr_root = _layout(tmp_path)
    damage(gt_root, tr_root)
    for workers in ("1", "2"):
        assert main(["eval", str(gt_root), str(tr_root), "--workers", workers]) == 2
        err = capsys.readouterr().err
        assert err.startswith("deepmot eval: error:") and message in err, err
        assert len(err.strip().splitlines()) == 1


def test_unknown_tracker_and_single_file_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    gt_root, tr_root = _layout(tmp_path)
    assert main(["eval", str(gt_root), str(tr_root), "--trackers", "C"]) == 2
    assert "no tracker C" in capsys.readouterr().err
    assert main(["eval", str(gt_root), str(tr_root), "--csv", str(tmp_path / "x.csv")]) == 2
    assert "--csv writes one tracker and one class" in capsys.readouterr().err


def test_plots(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("matplotlib")
    gt_root, tr_root = _layout(tmp_path)
    plots = tmp_path / "plots"
    assert main(["eval", str(gt_root), str(tr_root), "--plots", str(plots)]) == 0
    names = sorted(p.name for p in plots.iterdir())
    assert names == [
        "A_pedestrian_sequences.png",
        "B_pedestrian_sequences.png",
        "pedestrian_alpha_curves.png",
    ]
    for p in plots.iterdir():
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000


def test_detailed_file_of_empty_sequences(tmp_path: Path) -> None:
    """A sequence without tracker boxes and one without gt boxes: TrackEval returns early there
    and prints its zeros as integers; the files still match."""
    gt_root, tr_root = _layout(tmp_path, trackers=("A",), seed=4)
    (tr_root / "MOT17-train" / "A" / "data" / "MOT17-02-FRCNN.txt").write_text("")
    gt_file = gt_root / "MOT17-train" / "MOT17-09-FRCNN" / "gt" / "gt.txt"
    lines = gt_file.read_text().splitlines()
    gt_file.write_text(
        "".join(",".join([*ln.split(",")[:6], "0", *ln.split(",")[7:]]) + "\n" for ln in lines)
    )
    _reference(gt_root, tr_root, "MOT17", "train", OUTPUT_SUMMARY=True, OUTPUT_DETAILED=True)
    out = tmp_path / "ours"
    assert main(["eval", str(gt_root), str(tr_root), "--output-folder", str(out)]) == 0
    theirs = tr_root / "MOT17-train" / "A"
    assert (out / "A" / "pedestrian_summary.txt").read_bytes() == (
        theirs / "pedestrian_summary.txt"
    ).read_bytes()
    _same_detailed(out / "A" / "pedestrian_detailed.csv", theirs / "pedestrian_detailed.csv")
