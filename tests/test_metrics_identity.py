"""Identity measures (IDF1, IDP, IDR) on hand-computed cases, and the sparse matching."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from _eval_helpers import seq
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from deepmot.metrics import Identity, SequenceData
from deepmot.metrics.identity import max_weight_matching

A = [0.0, 0.0, 10.0, 10.0]
B = [50.0, 0.0, 10.0, 10.0]


def test_one_switch_halves_idf1() -> None:
    data = seq(4, [(f, 1, A) for f in range(4)], [(0, 10, A), (1, 10, A), (2, 11, A), (3, 11, A)])
    res = Identity().eval_sequence(data)
    assert (res["IDTP"], res["IDFN"], res["IDFP"]) == (2, 2, 2)
    assert res["IDF1"] == res["IDP"] == res["IDR"] == 0.5


def test_one_tracker_id_cannot_serve_two_objects() -> None:
    # Tracker 7 follows gt 1 for 3 frames, then gt 2 for 2 frames: it is assigned to gt 1.
    gt = [(f, 1, A) for f in range(5)] + [(f, 2, B) for f in range(5)]
    tracker = [(f, 7, A) for f in range(3)] + [(f, 7, B) for f in range(3, 5)]
    res = Identity().eval_sequence(seq(5, gt, tracker))
    assert (res["IDTP"], res["IDFN"], res["IDFP"]) == (3, 7, 2)
    assert res["IDF1"] == pytest.approx(3 / (3 + 0.5 * 7 + 0.5 * 2))


def test_empty_sides() -> None:
    assert Identity().eval_sequence(seq(3, [(0, 1, A)], []))["IDFN"] == 1
    res = Identity().eval_sequence(seq(3, [], [(0, 1, A), (1, 1, A)]))
    assert (res["IDFP"], res["IDF1"]) == (2, 0.0)


def test_combine_sums_counts() -> None:
    ident = Identity()
    a = ident.eval_sequence(seq(2, [(0, 1, A), (1, 1, A)], [(0, 1, A), (1, 2, A)]))
    b = ident.eval_sequence(seq(1, [(0, 1, A)], [(0, 1, A)]))
    both = ident.combine_sequences({"a": a, "b": b})
    assert (both["IDTP"], both["IDFN"], both["IDFP"]) == (2, 1, 1)
    assert both["IDF1"] == pytest.approx(2 / 3)


def _brute_force(matrix: np.ndarray) -> float:
    n, m = matrix.shape
    best = 0.0
    for perm in itertools.permutations(range(max(n, m)), n):
        best = max(best, sum(matrix[i, j] for i, j in enumerate(perm) if j < m))
    return best


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 5), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_sparse_matching_is_optimal(n: int, m: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    matrix = rng.integers(0, 5, size=(n, m)) * (rng.random((n, m)) < 0.5)
    rows, cols = np.nonzero(matrix)
    ours = max_weight_matching(rows * 7 + 3, cols * 5, matrix[rows, cols].astype(float))
    assert ours == _brute_force(matrix)
    r, c = linear_sum_assignment(matrix, maximize=True)
    assert ours == matrix[r, c].sum()


def test_one_id_per_box_is_fast() -> None:
    """20,000 tracker ids (a new id per box): the reference would build a 4e8-entry matrix."""
    rng = np.random.default_rng(0)
    frames = np.repeat(np.arange(1000), 20)
    gt_ids = np.tile(np.arange(20), 1000)
    boxes = np.column_stack((gt_ids * 30.0, np.zeros(len(gt_ids)), np.full((len(gt_ids), 2), 20.0)))
    data = SequenceData.from_rows(
        "t",
        1000,
        frames,
        gt_ids,
        boxes,
        frames,
        np.arange(len(frames)) + 10**9,
        boxes + rng.normal(0, 0.5, boxes.shape),
    )
    res = Identity().eval_sequence(data)
    assert res["IDTP"] == 20 and res["IDFP"] == len(frames) - 20
