"""CLEAR MOT on tiny sequences whose numbers are worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _eval_helpers import seq

from deepmot.metrics import CLEAR, box_iou_xywh

A = [0.0, 0.0, 10.0, 10.0]  # a 10 x 10 box
FAR = [100.0, 100.0, 10.0, 10.0]


def shifted(dx: float) -> list[float]:
    return [dx, 0.0, 10.0, 10.0]  # IoU with A: (10 - dx) / (10 + dx)


def test_iou_helper_matches_the_formula() -> None:
    assert box_iou_xywh(np.array([A]), np.array([shifted(2.0)]))[0, 0] == pytest.approx(8 / 12)
    assert box_iou_xywh(np.array([A]), np.array([FAR]))[0, 0] == 0.0
    zero = box_iou_xywh(np.array([[0, 0, 0, 5.0]]), np.array([[0, 0, 0, 5.0]]))
    assert zero[0, 0] == 0.0  # zero-area boxes never match
    pairs = box_iou_xywh(np.array([A, A]), np.array([A, FAR]), pairwise=False)
    assert pairs.tolist() == [1.0, 0.0]


def test_perfect_tracking() -> None:
    data = seq(3, [(f, 1, A) for f in range(3)], [(f, 7, A) for f in range(3)])
    res = CLEAR().eval_sequence(data)
    assert (res["CLR_TP"], res["CLR_FN"], res["CLR_FP"], res["IDSW"]) == (3, 0, 0, 0)
    assert res["MOTA"] == 1.0 and res["MOTP"] == 1.0 and res["MT"] == 1 and res["Frag"] == 0


def test_switch_between_consecutive_frames() -> None:
    data = seq(4, [(f, 1, A) for f in range(4)], [(0, 10, A), (1, 10, A), (2, 11, A), (3, 11, A)])
    res = CLEAR().eval_sequence(data)
    assert res["IDSW"] == 1 and res["CLR_TP"] == 4
    assert res["MOTA"] == pytest.approx(1 - 1 / 4)
    assert res["MOTAL"] == pytest.approx(1 - math.log10(1) / 4)


def test_switch_after_a_gap_counts_as_the_devkit_does() -> None:
    # Matched to 10, then missed for a frame (the tracker box is elsewhere), then matched to 11:
    # one IDSW (the last match, any frames back, had another id) and one fragmentation.
    gt = [(f, 1, A) for f in range(3)]
    tracker = [(0, 10, A), (1, 10, FAR), (2, 11, A)]
    res = CLEAR().eval_sequence(seq(3, gt, tracker))
    assert (res["CLR_TP"], res["CLR_FN"], res["CLR_FP"]) == (2, 1, 1)
    assert res["IDSW"] == 1 and res["Frag"] == 1
    assert res["MOTA"] == pytest.approx((2 - 1 - 1) / 3)


def test_returning_to_the_same_id_after_a_gap_is_no_switch() -> None:
    gt = [(f, 1, A) for f in range(3)]
    res = CLEAR().eval_sequence(seq(3, gt, [(0, 10, A), (2, 10, A)]))
    assert res["IDSW"] == 0 and res["Frag"] == 0  # frame 1 has no tracker box: no interruption
    res = CLEAR().eval_sequence(seq(3, gt, [(0, 10, A), (1, 3, FAR), (2, 10, A)]))
    assert res["IDSW"] == 0 and res["Frag"] == 1  # frame 1 has one elsewhere: interrupted


def test_previous_match_is_kept_over_a_better_iou() -> None:
    # Frame 0: gt matched to tracker 1. Frame 1: tracker 1 has IoU 0.6, tracker 2 IoU 1.0;
    # the assignment keeps tracker 1 (no switch), tracker 2 is a false positive.
    gt = [(0, 1, A), (1, 1, A)]
    tracker = [(0, 1, A), (1, 1, shifted(2.5)), (1, 2, A)]
    res = CLEAR().eval_sequence(seq(2, gt, tracker))
    assert (res["IDSW"], res["CLR_FP"], res["CLR_TP"]) == (0, 1, 2)
    assert res["MOTP_sum"] == pytest.approx(1.0 + 7.5 / 12.5)


def test_exact_assignment_beats_greedy() -> None:
    # gt 1 overlaps trackers 1 (0.9) and 2 (0.6); gt 2 overlaps only tracker 1 (0.55).
    # Greedy matches gt1-tr1 and leaves gt 2 unmatched; the exact assignment makes two matches.
    g1, g2 = [0.0, 0, 10, 10], [1.5, 0, 10, 10]
    t1, t2 = [0.5, 0, 10, 10], [-2.5, 0, 10, 10]
    iou = box_iou_xywh(np.array([g1, g2]), np.array([t1, t2]))
    assert iou[0, 0] > iou[0, 1] >= 0.5 and iou[1, 0] >= 0.5 and iou[1, 1] < 0.5
    res = CLEAR().eval_sequence(seq(1, [(0, 1, g1), (0, 2, g2)], [(0, 1, t1), (0, 2, t2)]))
    assert res["CLR_TP"] == 2


def test_threshold_is_inclusive() -> None:
    half = [10 / 3, 0.0, 10.0, 10.0]  # IoU exactly 0.5 up to rounding
    assert box_iou_xywh(np.array([A]), np.array([half]))[0, 0] == pytest.approx(0.5)
    assert CLEAR().eval_sequence(seq(1, [(0, 1, A)], [(0, 1, half)]))["CLR_TP"] == 1
    below = [3.4, 0.0, 10.0, 10.0]
    assert CLEAR().eval_sequence(seq(1, [(0, 1, A)], [(0, 1, below)]))["CLR_TP"] == 0


def test_mostly_tracked_partly_tracked_mostly_lost() -> None:
    gt = [(f, 1, A) for f in range(10)] + [(f, 2, FAR) for f in range(10)] + [(0, 3, shifted(50))]
    tracker = [(f, 1, A) for f in range(9)] + [(f, 2, FAR) for f in range(2)]
    res = CLEAR().eval_sequence(seq(10, gt, tracker))
    # gt 1: 9/10 > 0.8 -> MT; gt 2: 2/10 >= 0.2 -> PT; gt 3: 0/1 -> ML.
    assert (res["MT"], res["PT"], res["ML"]) == (1, 1, 1)
    assert res["MTR"] == pytest.approx(1 / 3)


def test_empty_tracker_and_empty_gt_follow_the_reference() -> None:
    res = CLEAR().eval_sequence(seq(5, [(0, 1, A), (1, 1, A), (1, 2, FAR)], []))
    assert (res["CLR_FN"], res["ML"], res["MLR"], res["MOTA"], res["CLR_Frames"]) == (
        3,
        2,
        1.0,
        0.0,
        0,
    )
    res = CLEAR().eval_sequence(seq(5, [], [(0, 1, A)]))
    assert (res["CLR_FP"], res["MLR"], res["MOTA"]) == (1, 1.0, 0.0)  # the reference's early exit


def test_combine_sums_counts_and_recomputes_ratios() -> None:
    clear = CLEAR()
    a = clear.eval_sequence(seq(2, [(0, 1, A), (1, 1, A)], [(0, 1, A), (1, 2, A)]))
    b = clear.eval_sequence(seq(3, [(0, 1, A)], [(0, 1, FAR), (2, 1, A)]))
    both = clear.combine_sequences({"a": a, "b": b})
    assert (both["CLR_TP"], both["CLR_FN"], both["CLR_FP"], both["IDSW"]) == (2, 1, 2, 1)
    assert both["MOTA"] == pytest.approx((2 - 2 - 1) / 3)
    assert both["CLR_Frames"] == 5 and both["FP_per_frame"] == pytest.approx(2 / 5)
    assert both["MOTA"] != pytest.approx((a["MOTA"] + b["MOTA"]) / 2)


def test_events_name_frames_and_ids() -> None:
    gt = [(f, 1, A) for f in range(3)] + [(2, 2, FAR)]
    tracker = [(0, 10, A), (1, 10, FAR), (2, 11, A)]
    res, events = CLEAR().eval_sequence_with_events(seq(3, gt, tracker))
    rows = list(
        zip(
            events["frame"].tolist(),
            events["type"].tolist(),
            events["gt_id"].tolist(),
            events["tracker_id"].tolist(),
            events["prev_tracker_id"].tolist(),
            strict=True,
        )
    )
    assert sorted(rows) == sorted(
        [(2, "FN", 1, -1, -1), (2, "FP", -1, 10, -1), (3, "FN", 2, -1, -1), (3, "IDSW", 1, 11, 10)]
    )
    assert res["IDSW"] == 1 and res["CLR_FN"] == 2 and res["CLR_FP"] == 1


def test_contested_frames_agree_with_a_full_assignment_every_frame() -> None:
    """The shortcut (no solver where IoU >= 0.5 pairs do not compete) changes nothing: compare
    with a plain frame-by-frame implementation of the definition on crowded random frames."""
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(0)
    frames, n_ids = 30, 6
    gt, tracker = [], []
    for f in range(frames):
        for i in range(n_ids):
            box = [rng.uniform(0, 20), rng.uniform(0, 20), 10.0, 10.0]
            gt.append((f, i, box))
            if rng.random() < 0.9:
                tracker.append(
                    (
                        f,
                        int(rng.integers(0, 8)) * 10 + i % 2,
                        [box[0] + rng.normal(0, 2), box[1], 10.0, 10.0],
                    )
                )
    tracker = list({(f, i): (f, i, b) for f, i, b in tracker}.values())
    data = seq(frames, gt, tracker)
    res = CLEAR().eval_sequence(data)

    prev_of_gt: dict[int, int] = {}
    last_of_gt: dict[int, int] = {}
    tp = idsw = 0
    for f in range(frames):
        g = [(i, b) for ff, i, b in gt if ff == f]
        t = sorted((i, b) for ff, i, b in tracker if ff == f)
        sim = box_iou_xywh(np.array([b for _, b in g]), np.array([b for _, b in t]).reshape(-1, 4))
        bonus = np.array([[prev_of_gt.get(gi) == ti for ti, _ in t] for gi, _ in g]).reshape(
            sim.shape
        )
        score = 1000 * bonus + sim
        score[sim < 0.5 - np.finfo(float).eps] = 0
        rows, cols = linear_sum_assignment(-score)
        prev_of_gt = {}
        for r, c in zip(rows, cols, strict=True):
            if score[r, c] > np.finfo(float).eps:
                gi, ti = g[r][0], t[c][0]
                tp += 1
                idsw += gi in last_of_gt and last_of_gt[gi] != ti
                last_of_gt[gi] = prev_of_gt[gi] = ti
    assert (res["CLR_TP"], res["IDSW"]) == (tp, idsw)
