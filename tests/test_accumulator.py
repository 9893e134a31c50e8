"""The per-frame API: a hand-computed case, boxes against matrices, and every field equal to
the file evaluator (``deepmot eval``) on the shared MOT17 sequences with Lif_T's results."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import MOT_ROOT, SHARED_DATA

from deepmot.io.mot import read_gt, read_results, read_seqinfo
from deepmot.metrics import FrameAccumulator, box_iou_xywh, evaluate, evaluate_accumulators

LIF_T = SHARED_DATA / "fixtures" / "lif_t_mot17"
MOT17 = ["MOT17-02", "MOT17-04", "MOT17-05", "MOT17-09", "MOT17-10"]

# Four frames, gt 1 and 2 in each; the tracker follows gt 1 as id 7 (frames 1-2), then as id 9
# (frames 3-4), never finds gt 2, and puts id 8 far away in frame 3.
GT_BOXES = {1: [10, 10, 40, 100], 2: [300, 10, 40, 100]}
FAR = [600, 300, 40, 100]
TRACKS = [{7: GT_BOXES[1]}, {7: GT_BOXES[1]}, {9: GT_BOXES[1], 8: FAR}, {9: GT_BOXES[1]}]


def test_hand_computed_case() -> None:
    """TP 4, FN 4, FP 1, IDSW 1: MOTA = 1 - 6/8. IDTP 2 (gt 1 with 7, or with 9), IDFN 6,
    IDFP 3: IDF1 = 4/13. HOTA (IoU 1): DetA 4/9, AssA 2/4 for every TP: sqrt(2/9)."""
    acc = FrameAccumulator("hand")
    for tracks in TRACKS:
        acc.update(
            [1, 2],
            list(tracks),
            gt_boxes=np.array(list(GT_BOXES.values())),
            tracker_boxes=np.array(list(tracks.values())).reshape(-1, 4),
        )
    res = acc.evaluate().combined
    clear, identity, hota = res["clear"], res["identity"], res["hota"]
    assert (clear["CLR_TP"], clear["CLR_FN"], clear["CLR_FP"], clear["IDSW"]) == (4, 4, 1, 1)
    assert clear["MOTA"] == pytest.approx(0.25)
    assert (identity["IDTP"], identity["IDFN"], identity["IDFP"]) == (2, 6, 3)
    assert identity["IDF1"] == pytest.approx(4 / 13)
    np.testing.assert_allclose(hota["DetA"], 4 / 9)
    np.testing.assert_allclose(hota["AssA"], 0.5)
    np.testing.assert_allclose(hota["HOTA"], math.sqrt(2 / 9))


def _fields_equal(a: dict, b: dict) -> None:
    """Every field of every family equal (arrays element by element, NaN equal to NaN)."""
    assert a.keys() == b.keys()
    for family in a:
        assert a[family].keys() == b[family].keys(), family
        for name, value in a[family].items():
            np.testing.assert_array_equal(value, b[family][name], err_msg=f"{family}.{name}")


def test_boxes_similarity_and_distance_agree() -> None:
    """The same random frames given as boxes, as their IoU and as py-motmetrics' distances."""
    rng = np.random.default_rng(0)
    by_boxes, by_sim, by_dist = (FrameAccumulator("s") for _ in range(3))
    xyxy = FrameAccumulator("s", box_format="xyxy")
    for _ in range(30):
        n, m = rng.integers(0, 6, size=2)
        gt_ids = rng.permutation(8)[:n] + 1
        tr_ids = rng.permutation(8)[:m] + 1  # the same numbers as gt ids: ids are per side
        gt = np.column_stack([rng.uniform(0, 100, (n, 2)), rng.uniform(20, 60, (n, 2))])
        tr = gt[rng.integers(0, max(n, 1), m)] if n else np.zeros((m, 4))
        tr = tr + rng.normal(0, 8, (m, 4)) * [1, 1, 0.2, 0.2]
        iou = box_iou_xywh(gt, tr)
        by_boxes.update(gt_ids, tr_ids, gt_boxes=gt, tracker_boxes=tr)
        xyxy.update(gt_ids, tr_ids, gt_boxes=_xyxy(gt), tracker_boxes=_xyxy(tr))
        by_sim.update(gt_ids, tr_ids, similarity=iou)
        by_dist.update(gt_ids, tr_ids, distance=np.where(iou > 0, 1 - iou, np.nan))
    reference = by_boxes.evaluate().combined
    assert reference["clear"]["CLR_TP"] > 20 and reference["clear"]["IDSW"] > 0
    for other in (by_sim, by_dist, xyxy):
        _fields_equal(reference, other.evaluate().combined)


def _xyxy(xywh: np.ndarray) -> np.ndarray:
    return np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "give the boxes"),
        ({"similarity": np.ones((2, 1)), "distance": np.ones((2, 1))}, "give the boxes"),
        ({"similarity": np.full((2, 1), 1.5)}, "must lie in [0, 1]"),
        ({"gt_boxes": np.zeros((3, 4)), "tracker_boxes": np.zeros((1, 4))}, "must be (2, 4)"),
    ],
)
def test_bad_updates(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        FrameAccumulator().update([1, 2], [5], **kwargs)


def test_mixed_inputs_and_repeated_ids_are_refused() -> None:
    acc = FrameAccumulator()
    acc.update([1], [1], similarity=[[0.7]])
    with pytest.raises(ValueError, match="given matrix, not boxes"):
        acc.update([1], [1], gt_boxes=np.zeros((1, 4)), tracker_boxes=np.zeros((1, 4)))
    with pytest.raises(ValueError, match="distinct"):
        acc.update([1, 1], [], similarity=np.zeros((2, 0)))
    with pytest.raises(ValueError, match="needs boxes"):
        FrameAccumulator(benchmark="MOT17").update([1], [1], similarity=[[1.0]])
    with pytest.raises(ValueError, match="unknown benchmark"):
        FrameAccumulator(benchmark="MOT18")


@pytest.mark.data
def test_equal_to_the_file_evaluator_on_mot17(tmp_path: Path) -> None:
    """Lif_T's results on the shared MOT17 sequences, fed frame by frame with the gt files'
    classes and flags: every field of every sequence and of COMBINED equals ``evaluate``'s."""
    if not (MOT_ROOT.is_dir() and LIF_T.is_dir()):
        pytest.skip(f"shared MOT17 files or Lif_T's results not found under {SHARED_DATA}")
    gt_root, res_dir = tmp_path / "gt", tmp_path / "res"
    res_dir.mkdir()
    accumulators = []
    for seq in MOT17:
        name = f"{seq}-FRCNN"
        (gt_root / name).parent.mkdir(exist_ok=True)
        (gt_root / name).symlink_to(MOT_ROOT / seq)
        (res_dir / f"{name}.txt").symlink_to(LIF_T / f"{name}.txt")
        gt = read_gt(MOT_ROOT / seq / "gt" / "gt.txt")
        res = read_results(LIF_T / f"{name}.txt")
        acc = FrameAccumulator(name, benchmark="MOT17")
        for frame in range(1, read_seqinfo(MOT_ROOT / seq / "seqinfo.ini").seq_length + 1):
            g = gt.frames == frame
            t = res.frames == frame
            acc.update(
                gt.ids[g],
                res.ids[t],
                gt_boxes=gt.boxes_xywh[g],
                tracker_boxes=res.boxes_xywh[t],
                gt_classes=gt.classes[g],
                gt_flags=gt.flags[g],
            )
        accumulators.append(acc)
    ours = evaluate_accumulators(accumulators)
    files = evaluate(gt_root, res_dir)
    assert list(ours.sequences) == list(files.sequences) == [f"{s}-FRCNN" for s in MOT17]
    for name in files.sequences:
        _fields_equal(ours.sequences[name], files.sequences[name])
    _fields_equal(ours.combined, files.combined)
    assert ours.counts == files.counts
    assert 0.5 < files.combined["clear"]["MOTA"] < 0.8  # a real tracker's numbers, not zeros


def test_the_documented_example_runs() -> None:
    """docs/evaluation.md's "Frame by frame" block, as written: MOTA 1 - 3/6 (one of two
    people tracked in 3 frames)."""
    text = (Path(__file__).parents[1] / "docs" / "evaluation.md").read_text()
    block = text.split("### Frame by frame", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict = {}
    exec(compile(block, "docs/evaluation.md", "exec"), scope)
    assert scope["ev"].combined["clear"]["MOTA"] == pytest.approx(0.5)
    assert scope["matrices"].num_frames == 1
