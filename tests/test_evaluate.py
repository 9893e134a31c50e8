"""MOTChallenge preprocessing, folder evaluation, edge cases and clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from _eval_helpers import (
    compare_with_reference,
    synthetic_sequence,
    trackeval_evaluate,
    write_synthetic,
)

from deepmot.errors import DeepMOTError, MOTFormatError
from deepmot.io.mot import GroundTruth, Results, read_gt, read_results
from deepmot.metrics import EvaluationError, detect_benchmark, evaluate, evaluate_data, preprocess

A = [0.0, 0.0, 10.0, 10.0]
B = [50.0, 0.0, 10.0, 10.0]


def gt_rows(rows: list[tuple]) -> GroundTruth:
    """Rows ``(frame, id, box, flag, class)``, 1-based frames."""
    f, i, b, fl, c = zip(*rows, strict=True)
    return GroundTruth(
        np.array(f), np.array(i), np.array(b, float), np.array(fl), np.array(c), np.ones(len(f))
    )


def tr_rows(rows: list[tuple]) -> Results:
    if not rows:
        return Results(np.zeros(0, int), np.zeros(0, int), np.zeros((0, 4)), np.zeros(0))
    f, i, b = zip(*rows, strict=True)
    return Results(np.array(f), np.array(i), np.array(b, float), np.ones(len(f)))


def clear_counts(data) -> tuple[int, int, int]:
    from deepmot.metrics import CLEAR

    res = CLEAR().eval_sequence(data)
    return res["CLR_TP"], res["CLR_FP"], res["CLR_FN"]


# --------------------------------------------------------------------------- preprocessing


def test_tracker_boxes_on_distractors_are_removed() -> None:
    gt = gt_rows([(1, 1, A, 1, 1), (1, 2, B, 0, 7)])  # a pedestrian and a static person
    tracker = tr_rows([(1, 1, A), (1, 2, B)])
    data = preprocess(gt, tracker, benchmark="MOT17", num_frames=1, name="s")
    assert data.num_tracker_dets == 1 and data.num_gt_dets == 1
    assert clear_counts(data) == (1, 0, 0)


def test_tracker_boxes_on_other_classes_are_false_positives() -> None:
    gt = gt_rows([(1, 1, A, 1, 1), (1, 2, B, 0, 3)])  # a car: not a distractor
    data = preprocess(
        gt, tr_rows([(1, 1, A), (1, 2, B)]), benchmark="MOT17", num_frames=1, name="s"
    )
    assert clear_counts(data) == (1, 1, 0)


@pytest.mark.parametrize("x, removed", [(108.0, False), (102.0, True)])
def test_an_occluder_competes_with_a_distractor_for_a_tracker_box(x: float, removed: bool) -> None:
    """A tracker box with IoU >= 0.5 with a static person (distractor) and with an occluder
    goes to the closer one (IoU 0.96 against 0.85): removed only when that is the distractor.
    Frame 2 has an occluder and no distractor: its tracker box stays a false positive."""
    d, o = [100.0, 100.0, 100.0, 100.0], [110.0, 100.0, 100.0, 100.0]
    gt = gt_rows([(1, 1, A, 1, 1), (1, 2, d, 0, 7), (1, 3, o, 0, 9), (2, 3, o, 0, 9)])
    tracker = tr_rows([(1, 1, A), (1, 2, [x, 100.0, 100.0, 100.0]), (2, 2, o)])
    data = preprocess(gt, tracker, benchmark="MOT17", num_frames=2, name="s")
    assert clear_counts(data) == (1, 1 if removed else 2, 0)


def test_flag_zero_pedestrians_are_ignored_and_their_boxes_kept() -> None:
    gt = gt_rows([(1, 1, A, 1, 1), (1, 2, B, 0, 1)])
    data = preprocess(
        gt, tr_rows([(1, 1, A), (1, 2, B)]), benchmark="MOT17", num_frames=1, name="s"
    )
    assert clear_counts(data) == (1, 1, 0)  # as in the reference: only distractor matches go


def test_mot20_also_removes_non_motorised_vehicles() -> None:
    gt = gt_rows([(1, 1, A, 1, 1), (1, 2, B, 0, 6)])
    tracker = tr_rows([(1, 1, A), (1, 2, B)])
    assert clear_counts(preprocess(gt, tracker, benchmark="MOT20", num_frames=1, name="s")) == (
        1,
        0,
        0,
    )
    assert clear_counts(preprocess(gt, tracker, benchmark="MOT17", num_frames=1, name="s")) == (
        1,
        1,
        0,
    )


def test_mot15_keeps_every_flagged_box_and_removes_nothing() -> None:
    gt = gt_rows([(1, 1, A, 1, 1), (1, 2, B, 0, 1), (2, 1, A, -1, 1)])
    data = preprocess(
        gt, tr_rows([(1, 1, A), (1, 2, B)]), benchmark="MOT15", num_frames=2, name="s"
    )
    assert data.num_gt_dets == 2 and data.num_tracker_dets == 2
    assert clear_counts(data) == (1, 1, 1)


def test_invalid_gt_class_is_a_clear_error(tmp_path: Path) -> None:
    gt = gt_rows([(1, 1, A, 1, 1), (1, 2, B, 1, 42)])
    with pytest.raises(MOTFormatError, match="class 42"):
        preprocess(
            gt, tr_rows([]), benchmark="MOT17", num_frames=1, name="s", gt_path=tmp_path / "gt.txt"
        )


def test_boxes_after_the_last_frame_are_an_error() -> None:
    gt = gt_rows([(1, 1, A, 1, 1)])
    with pytest.raises(MOTFormatError, match="frame 3, after the sequence's last frame 2"):
        preprocess(
            gt,
            tr_rows([(3, 1, A)]),
            benchmark="MOT17",
            num_frames=2,
            name="s",
            results_path="r.txt",
        )


def test_detect_benchmark(tmp_path: Path) -> None:
    assert detect_benchmark("MOT17-02-FRCNN") == "MOT17"
    assert detect_benchmark("MOT20-05") == "MOT20"
    assert detect_benchmark("mot16-09") == "MOT16"
    ten = tmp_path / "ten.txt"
    ten.write_text("1,1,0,0,10,10,1,-1,-1,-1\n")
    nine = tmp_path / "nine.txt"
    nine.write_text("1,1,0,0,10,10,1,1,1\n")
    assert detect_benchmark("TUD-Campus", ten) == "MOT15"
    assert detect_benchmark("custom", nine) == "MOT17"


# --------------------------------------------------------------------------- edge cases


def _folder(
    tmp_path: Path, seed: int = 0, frames: int = 40
) -> tuple[Path, Path, GroundTruth, Results]:
    rng = np.random.default_rng(seed)
    gt, results = synthetic_sequence(rng, num_frames=frames)
    gt_root, res_dir = tmp_path / "gt", tmp_path / "res"
    res_dir.mkdir(parents=True)
    write_synthetic(gt_root, "S", gt, results, frames, res_dir)
    return gt_root, res_dir, gt, results


def _reference(tmp_path: Path, gt_root: Path, res_file: Path) -> dict:
    return trackeval_evaluate(gt_root, {"S": res_file}, "MOT17", workdir=tmp_path / "te")


def test_empty_result_file_matches_the_reference(tmp_path: Path) -> None:
    pytest.importorskip("trackeval")
    gt_root, res_dir, gt, _ = _folder(tmp_path)
    (res_dir / "S.txt").write_text("")
    ours = evaluate(gt_root, res_dir)
    assert compare_with_reference(ours, _reference(tmp_path, gt_root, res_dir / "S.txt")) == []
    assert ours.sequences["S"]["clear"]["CLR_TP"] == 0


def test_frames_without_gt_match_the_reference(tmp_path: Path) -> None:
    pytest.importorskip("trackeval")
    gt_root, res_dir, gt, _ = _folder(tmp_path, seed=3)
    keep = (gt.frames < 10) | (gt.frames > 20)
    text = (gt_root / "S" / "gt" / "gt.txt").read_text().splitlines(keepends=True)
    rows = read_gt(gt_root / "S" / "gt" / "gt.txt")
    assert len(text) == len(rows)  # written sorted by (frame, id)
    (gt_root / "S" / "gt" / "gt.txt").write_text(
        "".join(t for t, k in zip(text, keep, strict=True) if k)
    )
    ours = evaluate(gt_root, res_dir)
    assert compare_with_reference(ours, _reference(tmp_path, gt_root, res_dir / "S.txt")) == []
    assert ours.sequences["S"]["clear"]["CLR_FP"] > 0


def _with_ids(results: Results, ids: np.ndarray) -> Results:
    order = np.lexsort((ids, results.frames))
    return Results(
        results.frames[order], ids[order], results.boxes_xywh[order], results.scores[order]
    )


def test_non_contiguous_giant_and_negative_ids(tmp_path: Path) -> None:
    """Ids are only labels: remapping them changes nothing. The reference agrees for
    non-contiguous ids; it cannot take giant ids (it allocates an array as long as the largest
    id) and mislabels negative ones, so those are compared with the remapped run."""
    pytest.importorskip("trackeval")
    from deepmot.io.mot import write_results

    gt_root, res_dir, _, results = _folder(tmp_path, seed=5)
    base = evaluate(gt_root, res_dir)
    uniq, inverse = np.unique(results.ids, return_inverse=True)
    variants = {
        "sparse": inverse * 1000 + 7,
        "giant": inverse + 10**15,
        "negative": -(inverse + 1),
        "one giant id per box": np.arange(len(inverse)) + 10**12,
    }
    for name, ids in variants.items():
        write_results(res_dir / "S.txt", _with_ids(results, ids))
        ours = evaluate(gt_root, res_dir)
        if name == "sparse":
            assert (
                compare_with_reference(ours, _reference(tmp_path, gt_root, res_dir / "S.txt")) == []
            )
        if name != "one giant id per box":
            for family in ("clear", "identity", "hota"):
                for field, value in base.sequences["S"][family].items():
                    mine = ours.sequences["S"][family][field]  # ids order the sums: 1e-12
                    np.testing.assert_allclose(
                        mine, value, rtol=0, atol=1e-12, err_msg=f"{name} {field}"
                    )
        else:
            assert ours.sequences["S"]["identity"]["IDTP"] <= ours.sequences["S"]["clear"]["CLR_TP"]


def test_float_ids(tmp_path: Path) -> None:
    gt_root, res_dir, _, _ = _folder(tmp_path, seed=2)
    (res_dir / "S.txt").write_text("1,1.0,0,0,10,10,1,-1,-1,-1\n2,2.000,0,0,10,10,1,-1,-1,-1\n")
    assert evaluate(gt_root, res_dir).sequences["S"]["clear"]["CLR_FP"] >= 0
    (res_dir / "S.txt").write_text("1,1.0,0,0,10,10,1,-1,-1,-1\n2,2.5,0,0,10,10,1,-1,-1,-1\n")
    with pytest.raises(MOTFormatError, match=r"S\.txt:2: id must be an integer, found 2\.5"):
        evaluate(gt_root, res_dir)


def test_duplicate_id_in_a_frame_names_file_frame_and_id(tmp_path: Path) -> None:
    gt_root, res_dir, _, _ = _folder(tmp_path)
    (res_dir / "S.txt").write_text(
        "1,4,0,0,10,10,1,-1,-1,-1\n3,4,0,0,10,10,1,-1,-1,-1\n3,4,5,5,10,10,1,-1,-1,-1\n"
    )
    with pytest.raises(MOTFormatError) as info:
        evaluate(gt_root, res_dir)
    message = str(info.value)
    assert "S.txt:3" in message and "id 4" in message and "frame 3" in message


def test_malformed_row_names_file_and_line(tmp_path: Path) -> None:
    gt_root, res_dir, _, _ = _folder(tmp_path)
    (res_dir / "S.txt").write_text("1,4,0,0,10,10,1,-1,-1,-1\n2,5,0,zero,10,10,1,-1,-1,-1\n")
    with pytest.raises(MOTFormatError, match=r"S\.txt:2: column 4 is not a number"):
        evaluate(gt_root, res_dir)


def test_missing_result_file_unknown_and_stray_sequences(tmp_path: Path) -> None:
    gt_root, res_dir, _, _ = _folder(tmp_path)
    (res_dir / "S.txt").rename(res_dir / "T.txt")
    with pytest.raises(EvaluationError, match="result files? for unknown sequences? T"):
        evaluate(gt_root, res_dir)
    with pytest.raises(EvaluationError, match=r"no result file for sequence S .*S\.txt"):
        evaluate(gt_root, res_dir, sequences=["S"])
    with pytest.raises(EvaluationError, match="named or starts with T; sequences under .*: S"):
        evaluate(gt_root, res_dir, sequences=["T"])
    with pytest.raises(EvaluationError, match="does not exist"):
        evaluate(tmp_path / "nowhere", res_dir)
    assert issubclass(EvaluationError, DeepMOTError)


def test_seqinfo_is_optional(tmp_path: Path) -> None:
    gt_root, res_dir, gt, results = _folder(tmp_path)
    with_info = evaluate(gt_root, res_dir)
    (gt_root / "S" / "seqinfo.ini").unlink()
    without = evaluate(gt_root, res_dir)
    last = int(max(gt.frames.max(), results.frames.max()))
    assert without.sequences["S"]["clear"]["CLR_Frames"] == last
    for family in ("identity", "hota"):
        for field, value in with_info.sequences["S"][family].items():
            np.testing.assert_array_equal(without.sequences["S"][family][field], value)
    assert without.sequences["S"]["clear"]["MOTA"] == with_info.sequences["S"]["clear"]["MOTA"]


def test_evaluate_data_and_summaries(tmp_path: Path) -> None:
    gt_root, res_dir, _, _ = _folder(tmp_path)
    ours = evaluate(gt_root, res_dir, metrics=["identity", "clear"])
    assert [m.name for m in ours.metrics] == ["clear", "identity"]
    summary = ours.summary()
    assert set(summary) == {"S", "COMBINED"} and "MOTA" in summary["S"] and "IDF1" in summary["S"]
    with pytest.raises(ValueError, match="unknown metric 'mota'"):
        evaluate(gt_root, res_dir, metrics=["mota"])
    with pytest.raises(ValueError, match="unique"):
        from deepmot.metrics import load_sequence

        data, _ = load_sequence(gt_root / "S", res_dir / "S.txt")
        evaluate_data([data, data])
    assert read_results(res_dir / "S.txt") is not None


def test_sequences_by_name_or_prefix(tmp_path: Path) -> None:
    """``sequences`` chooses as every command's ``--sequences``: a name, or names' start."""
    gt_root, res_dir, _, _ = _folder(tmp_path)
    shutil.copytree(gt_root / "S", gt_root / "S2")
    shutil.copy(res_dir / "S.txt", res_dir / "S2.txt")
    assert list(evaluate(gt_root, res_dir, sequences=["S"]).sequences) == ["S"]
    assert list(evaluate(gt_root, res_dir, sequences=["S2"]).sequences) == ["S2"]
    shutil.move(gt_root / "S", gt_root / "SA")
    shutil.move(res_dir / "S.txt", res_dir / "SA.txt")
    assert list(evaluate(gt_root, res_dir, sequences=["S"]).sequences) == ["S2", "SA"]
