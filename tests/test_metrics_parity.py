"""Parity with the reference evaluator (TrackEval 1.3, MOTChallenge settings), number by number.

Every field TrackEval reports for CLEAR, Identity and HOTA (per alpha) must equal ours to 1e-9,
counts exactly, per sequence and COMBINED. Inputs: synthetic random sequences, every real
sequence under ``../shared/data/mot`` with its public detections as tracker output (ids from a
simple tracker, or one id per detection), and the published fixtures.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _eval_helpers import (
    FIXTURES,
    MOT_ROOT,
    compare_with_reference,
    link_detections,
    one_id_per_detection,
    synthetic_sequence,
    trackeval_evaluate,
    write_synthetic,
)

from deepmot.io.mot import read_detections, read_seqinfo, write_results
from deepmot.metrics import detect_benchmark, evaluate

pytest.importorskip("trackeval")

needs_data = pytest.mark.skipif(
    not MOT_ROOT.is_dir(), reason=f"real MOTChallenge files not found at {MOT_ROOT}"
)


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.symlink_to(src.resolve())


# --------------------------------------------------------------------------- synthetic


@pytest.mark.parametrize("benchmark", ["MOT17", "MOT20", "MOT15"])
def test_parity_on_synthetic_sequences(tmp_path: Path, benchmark: str) -> None:
    rng = np.random.default_rng({"MOT17": 1, "MOT20": 2, "MOT15": 3}[benchmark])
    mot15 = benchmark == "MOT15"
    gt_root, res_dir = tmp_path / "gt", tmp_path / "res"
    res_dir.mkdir()
    names = []
    for k in range(4):
        frames = int(rng.integers(20, 80))
        gt, results = synthetic_sequence(
            rng, num_frames=frames, num_objects=int(rng.integers(3, 25)), mot15=mot15
        )
        name = f"SYN{k}"
        write_synthetic(gt_root, name, gt, results, frames, res_dir, mot15=mot15)
        names.append(name)
    ours = evaluate(gt_root, res_dir, benchmark=benchmark)
    reference = trackeval_evaluate(
        gt_root, {n: res_dir / f"{n}.txt" for n in names}, benchmark, workdir=tmp_path / "te"
    )
    assert compare_with_reference(ours, reference) == []
    assert ours.combined["clear"]["IDSW"] > 0 and ours.combined["clear"]["CLR_FP"] > 0


def test_parity_without_seqinfo(tmp_path: Path) -> None:
    """Without seqinfo.ini the length is the last frame with a box; the reference gets it too."""
    rng = np.random.default_rng(7)
    gt, results = synthetic_sequence(rng, num_frames=40)
    write_synthetic(tmp_path / "gt", "S", gt, results, None, tmp_path)
    length = int(max(gt.frames.max(), results.frames.max()))
    ours = evaluate(tmp_path / "gt", tmp_path, benchmark="MOT17")
    reference = trackeval_evaluate(
        tmp_path / "gt", {"S": tmp_path / "S.txt"}, "MOT17", {"S": length}, tmp_path / "te"
    )
    assert compare_with_reference(ours, reference) == []
    assert ours.sequences["S"]["clear"]["CLR_Frames"] == length


# --------------------------------------------------------------------------- real sequences


def _detection_file(seq_dir: Path) -> Path | None:
    """The public detections of a sequence; MOT16 has none here, so it borrows the MOT17
    detections of the same video (same frames and camera)."""
    for name in ("det.txt", "deepmot_clean_FRCNN.txt", "det_sort_frcnn.txt"):
        if (seq_dir / "det" / name).is_file():
            return seq_dir / "det" / name
    twin = (
        seq_dir.parent / seq_dir.name.replace("MOT16", "MOT17") / "det" / "deepmot_clean_FRCNN.txt"
    )
    return twin if twin.is_file() else None


def _real_parity(tmp_path: Path, sequences: list[str], tracker: str) -> None:
    by_benchmark: dict[str, list[str]] = {}
    for seq in sequences:
        by_benchmark.setdefault(detect_benchmark(seq, MOT_ROOT / seq / "gt" / "gt.txt"), []).append(
            seq
        )
    for benchmark, names in by_benchmark.items():
        gt_root, res_dir = tmp_path / benchmark / "gt", tmp_path / benchmark / "res"
        res_dir.mkdir(parents=True)
        for seq in names:
            _link(MOT_ROOT / seq, gt_root / seq)
            dets = read_detections(_detection_file(MOT_ROOT / seq))
            results = link_detections(dets) if tracker == "linked" else one_id_per_detection(dets)
            write_results(res_dir / f"{seq}.txt", results)
        ours = evaluate(gt_root, res_dir)
        assert set(ours.benchmarks.values()) == {benchmark}
        files = {seq: res_dir / f"{seq}.txt" for seq in names}
        reference = trackeval_evaluate(
            gt_root, files, benchmark, workdir=tmp_path / benchmark / "te"
        )
        assert compare_with_reference(ours, reference) == [], benchmark


@needs_data
@pytest.mark.data
@pytest.mark.parametrize(
    "tracker", ["linked", pytest.param("one_id_per_detection", marks=pytest.mark.slow)]
)
def test_parity_on_every_real_sequence(tmp_path: Path, tracker: str) -> None:
    sequences = sorted(p.name for p in MOT_ROOT.iterdir() if _detection_file(p) is not None)
    if tracker == "one_id_per_detection":
        # The reference builds dense (gt ids + tracker ids)^2 matrices: keep it to a few GB.
        sequences = [
            s for s in sequences if len(read_detections(_detection_file(MOT_ROOT / s))) < 6000
        ]
        assert len(sequences) >= 8
    else:
        assert len(sequences) == len(list(MOT_ROOT.iterdir()))
    _real_parity(tmp_path, sequences, tracker)


@needs_data
@pytest.mark.data
@pytest.mark.slow
@pytest.mark.parametrize("detector", ["DPM", "SDP"])
def test_parity_on_mot17_with_other_detectors(tmp_path: Path, detector: str) -> None:
    gt_root, res_dir = tmp_path / "gt", tmp_path / "res"
    res_dir.mkdir()
    names = [p.name for p in sorted(MOT_ROOT.glob("MOT17-*"))]
    for seq in names:
        _link(MOT_ROOT / seq, gt_root / seq)
        write_results(
            res_dir / f"{seq}.txt",
            link_detections(
                read_detections(MOT_ROOT / seq / "det" / f"deepmot_clean_{detector}.txt")
            ),
        )
    ours = evaluate(gt_root, res_dir)
    reference = trackeval_evaluate(
        gt_root, {s: res_dir / f"{s}.txt" for s in names}, "MOT17", workdir=tmp_path / "te"
    )
    assert compare_with_reference(ours, reference) == []


# --------------------------------------------------------------------------- fixtures


TUD_EXPECTED = {  # py-motmetrics' published numbers (the devkit's too)
    "TUD-Campus": {
        "MOTA": 0.5265,
        "IDF1": 0.5577,
        "IDSW": 7,
        "CLR_FP": 13,
        "CLR_FN": 150,
        "MT": 1,
        "ML": 1,
    },
    "TUD-Stadtmitte": {
        "MOTA": 0.5640,
        "IDF1": 0.6446,
        "IDSW": 7,
        "CLR_FP": 45,
        "CLR_FN": 452,
        "MT": 5,
        "ML": 1,
    },
}


def _tud(tmp_path: Path) -> tuple[Path, Path]:
    gt_root, res_dir = tmp_path / "gt", tmp_path / "res"
    for seq in TUD_EXPECTED:
        _link(MOT_ROOT / seq, gt_root / seq)
        _link(FIXTURES / "motmetrics_tud" / seq / "test.txt", res_dir / f"{seq}.txt")
    return gt_root, res_dir


@needs_data
@pytest.mark.data
def test_tud_fixtures_match_published_numbers(tmp_path: Path) -> None:
    gt_root, res_dir = _tud(tmp_path)
    ours = evaluate(gt_root, res_dir)
    assert ours.benchmarks == {"TUD-Campus": "MOT15", "TUD-Stadtmitte": "MOT15"}
    for seq, expected in TUD_EXPECTED.items():
        row = {**ours.sequences[seq]["clear"], **ours.sequences[seq]["identity"]}
        for field, value in expected.items():
            if isinstance(value, int):
                assert row[field] == value, (seq, field)
            else:
                assert round(row[field], 4) == value, (seq, field)
    # The other published values (py-motmetrics' JSON) that share the devkit's definitions.
    published = json.loads((FIXTURES / "motmetrics_tud" / "expected_motmetrics.json").read_text())
    columns = published["columns"]
    for seq in [*TUD_EXPECTED, "OVERALL"]:
        ref = dict(zip(columns, published[seq], strict=True))
        res = ours.combined if seq == "OVERALL" else ours.sequences[seq]
        assert res["identity"]["IDF1"] == pytest.approx(ref["idf1"], abs=1e-6)
        assert res["identity"]["IDP"] == pytest.approx(ref["idp"], abs=1e-6)
        assert res["identity"]["IDR"] == pytest.approx(ref["idr"], abs=1e-6)
        assert res["clear"]["CLR_Re"] == pytest.approx(ref["recall"], abs=1e-6)
        assert res["clear"]["CLR_Pr"] == pytest.approx(ref["precision"], abs=1e-6)
        assert res["clear"]["MOTA"] == pytest.approx(ref["mota"], abs=1e-6)
        assert res["clear"]["MOTP"] == pytest.approx(1 - ref["motp"], abs=1e-6)  # theirs: 1 - IoU
        for ours_f, theirs in (
            ("MT", "mostly_tracked"),
            ("PT", "partially_tracked"),
            ("ML", "mostly_lost"),
        ):
            assert res["clear"][ours_f] == ref[theirs]
        assert res["clear"]["CLR_FP"] == ref["num_false_positives"]
        assert res["clear"]["CLR_FN"] == ref["num_misses"]


@needs_data
@pytest.mark.data
def test_tud_fixtures_match_trackeval(tmp_path: Path) -> None:
    gt_root, res_dir = _tud(tmp_path)
    ours = evaluate(gt_root, res_dir)
    files = {seq: res_dir / f"{seq}.txt" for seq in TUD_EXPECTED}
    reference = trackeval_evaluate(gt_root, files, "MOT15", workdir=tmp_path / "te")
    assert compare_with_reference(ours, reference) == []


MOTT_EXPECTED = {  # SOURCES.md: TrackEval's published per-sequence output for the MoTT tracker
    "MOT17-02": (0.81072, 0.55124, 723, 2626, 168, 0.86074),
    "MOT17-04": (0.98579, 0.96794, 147, 497, 32, 0.92261),
    "MOT17-05": (0.85528, 0.82784, 409, 535, 57, 0.85915),
    "MOT17-09": (0.88038, 0.73969, 227, 378, 32, 0.87489),
    "MOT17-10": (0.78433, 0.63775, 626, 2006, 137, 0.81754),
}


@needs_data
@pytest.mark.data
def test_mott_fixtures_match_published_trackeval_output(tmp_path: Path) -> None:
    gt_root, res_dir = tmp_path / "gt", tmp_path / "res"
    for seq in MOTT_EXPECTED:
        _link(MOT_ROOT / seq, gt_root / seq)
        _link(FIXTURES / "mott_trackeval_mot17" / f"{seq}-FRCNN.txt", res_dir / f"{seq}.txt")
    ours = evaluate(gt_root, res_dir)
    for seq, (mota, idf1, fp, fn, idsw, motp) in MOTT_EXPECTED.items():
        clear, ident = ours.sequences[seq]["clear"], ours.sequences[seq]["identity"]
        assert (clear["CLR_FP"], clear["CLR_FN"], clear["IDSW"]) == (fp, fn, idsw), seq
        assert round(clear["MOTA"], 5) == mota and round(ident["IDF1"], 5) == idf1, seq
        assert round(clear["MOTP"], 5) == motp, seq
    # Every field of the full published rows (TrackEval's pedestrian_detailed.csv).
    import csv

    with open(FIXTURES / "mott_trackeval_mot17" / "pedestrian_detailed_shared_rows.csv") as handle:
        published = {row["seq"]: row for row in csv.DictReader(handle)}
    detailed = ours.detailed()
    checked = 0
    for seq in MOTT_EXPECTED:
        row = published[f"{seq}-FRCNN"]
        for field, text in row.items():
            if field == "seq" or field not in detailed[seq]:
                continue
            assert detailed[seq][field] == pytest.approx(float(text), abs=1e-9, rel=0), (seq, field)
            checked += 1
    assert checked > 5 * 250
    assert (
        read_seqinfo(MOT_ROOT / "MOT17-04" / "seqinfo.ini").seq_length
        == detailed["MOT17-04"]["CLR_Frames"]
    )


@pytest.mark.parametrize("seed", range(6))
def test_parity_with_ties_on_a_coarse_grid(tmp_path: Path, seed: int) -> None:
    """Boxes on a coarse grid: identical boxes, equal IoUs, pedestrians standing on
    distractors. Exact ties in an assignment are broken by row order in both evaluators (rows
    sorted by id within a frame, as MOTChallenge files are)."""
    from deepmot.io.mot import GroundTruth, Results

    rng = np.random.default_rng(100 + seed)
    frames, n_gt, n_tr = 25, 10, 12
    f, i = np.nonzero(rng.random((frames, n_gt)) < 0.7)
    gt_boxes = np.column_stack(
        (rng.integers(0, 4, size=(len(f), 2)) * 10.0, np.full((len(f), 2), 20.0))
    )
    gt = GroundTruth(
        frames=f + 1,
        ids=i + 1,
        boxes_xywh=gt_boxes,
        flags=(rng.random(len(f)) > 0.2).astype(np.int64),
        classes=rng.choice([1, 1, 1, 2, 7, 8, 12, 3, 6], size=len(f)),
        visibility=np.ones(len(f)),
    )
    tf, ti = np.nonzero(rng.random((frames, n_tr)) < 0.7)
    tr_boxes = np.column_stack(
        (rng.integers(0, 4, size=(len(tf), 2)) * 10.0, np.full((len(tf), 2), 20.0))
    )
    results = Results(frames=tf + 1, ids=ti + 1, boxes_xywh=tr_boxes, scores=np.ones(len(tf)))
    res_dir = tmp_path / "res"
    res_dir.mkdir()
    write_synthetic(tmp_path / "gt", "G", gt, results, frames, res_dir)
    for benchmark in ("MOT17", "MOT20", "MOT15"):
        ours = evaluate(tmp_path / "gt", res_dir, benchmark=benchmark)
        files = {"G": res_dir / "G.txt"}
        reference = trackeval_evaluate(
            tmp_path / "gt", files, benchmark, workdir=tmp_path / benchmark
        )
        assert compare_with_reference(ours, reference) == [], benchmark
