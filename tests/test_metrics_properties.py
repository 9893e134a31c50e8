"""Properties over random sequences: TrackEval's metric classes, run in-process on the same
preprocessed data, give every number ours give (including ties, duplicate and degenerate
boxes, empty frames and empty sequences)."""

from __future__ import annotations

import numpy as np
import pytest
from _eval_helpers import trackeval_data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepmot.metrics import CLEAR, HOTA, Identity, SequenceData

trackeval = pytest.importorskip("trackeval")

REFERENCE = {
    "clear": lambda: trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
    "identity": lambda: trackeval.metrics.Identity({"PRINT_CONFIG": False}),
    "hota": lambda: trackeval.metrics.HOTA(),
}
OURS = {"clear": CLEAR, "identity": Identity, "hota": HOTA}


@st.composite
def sequences(draw: st.DrawFn) -> SequenceData:
    """Boxes on a coarse integer grid, so that equal IoUs, identical boxes and exact 0.5
    overlaps are common; some zero-size boxes."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    frames = draw(st.integers(1, 12))
    n_gt_ids = draw(st.integers(0, 6))
    n_tr_ids = draw(st.integers(0, 8))
    grid = draw(st.sampled_from([2, 4, 8]))

    def rows(n_ids: int, density: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        present = rng.random((frames, n_ids)) < density
        f, i = np.nonzero(present)
        xy = rng.integers(0, grid, size=(len(f), 2)) * 5.0
        wh = rng.choice([0.0, 10.0, 10.0, 10.0, 20.0], size=(len(f), 2))
        return f, i * 3 + 1, np.column_stack((xy, wh))

    density = draw(st.floats(0.2, 1.0))
    return SequenceData.from_rows("h", frames, *rows(n_gt_ids, density), *rows(n_tr_ids, density))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequences())
def test_metric_classes_agree_with_trackeval(data: SequenceData) -> None:
    te_data = trackeval_data(data)
    for family, make in REFERENCE.items():
        ref = make().eval_sequence(te_data)
        ours = OURS[family]().eval_sequence(data)
        for field, value in ref.items():
            a, b = np.asarray(ours[field], float), np.asarray(value, float)
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-9, err_msg=f"{family} {field}")


@settings(max_examples=25, deadline=None)
@given(st.lists(sequences(), min_size=1, max_size=4))
def test_combination_agrees_with_trackeval(seqs: list[SequenceData]) -> None:
    for family, make in REFERENCE.items():
        ref_metric, ours_metric = make(), OURS[family]()
        ref = ref_metric.combine_sequences(
            {str(k): ref_metric.eval_sequence(trackeval_data(s)) for k, s in enumerate(seqs)}
        )
        ours = ours_metric.combine_sequences(
            {str(k): ours_metric.eval_sequence(s) for k, s in enumerate(seqs)}
        )
        for field, value in ref.items():
            np.testing.assert_allclose(
                np.asarray(ours[field], float),
                np.asarray(value, float),
                rtol=0,
                atol=1e-9,
                err_msg=f"{family} {field}",
            )


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_frame_block_is_the_dense_iou_matrix_of_the_frame(seed: int) -> None:
    """Each frame's matrix equals the IoU of the frame's boxes computed densely (pairs of IoU 0
    are not stored and read as 0), and ``index`` names the pair behind each nonzero entry."""
    from deepmot.metrics import box_iou_xywh

    rng = np.random.default_rng(seed)
    frames = 4

    def rows(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        xy = rng.integers(0, 4, size=(n, 2)) * 5.0
        wh = rng.choice([0.0, 10.0, 20.0], size=(n, 2))
        return rng.integers(0, frames, n), np.arange(n), np.column_stack((xy, wh))

    gt, tr = rows(int(rng.integers(0, 12))), rows(int(rng.integers(0, 12)))
    data = SequenceData.from_rows("f", frames, *gt, *tr)
    for frame in range(frames):
        # ids are the row numbers, so the frame's rows in id order are these, ascending
        g, t = np.flatnonzero(gt[0] == frame), np.flatnonzero(tr[0] == frame)
        expected = box_iou_xywh(gt[2][g], tr[2][t])
        matrix, index = data.frame_block(frame)
        np.testing.assert_array_equal(matrix, expected)
        np.testing.assert_array_equal(index >= 0, expected > 0)
        r, c = np.nonzero(index >= 0)
        np.testing.assert_array_equal(data.pair_gt[index[r, c]], data.gt_offsets[frame] + r)
        np.testing.assert_array_equal(
            data.pair_tracker[index[r, c]], data.tracker_offsets[frame] + c
        )
    # several frames at once, in batches of every size: the same matrices
    chosen = np.flatnonzero(rng.random(frames) < 0.7)
    for max_cells in (1, 5, 1 << 21):
        blocks = list(data.frame_blocks(chosen, max_cells=max_cells))
        assert [f for f, _, _ in blocks] == chosen.tolist()
        for frame, matrix, index in blocks:
            expected, expected_index = data.frame_block(frame)
            np.testing.assert_array_equal(matrix, expected)
            np.testing.assert_array_equal(index, expected_index)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(-(2**40), 2**40), max_size=30) | st.lists(st.integers(-5, 60), max_size=40)
)
def test_relabel_is_numpy_unique_with_inverse(values: list[int]) -> None:
    """Spread-out values (a sort) and dense ones (the table of flags) alike."""
    from deepmot.metrics._base import relabel

    array = np.array(values, dtype=np.int64)
    uniq, inverse = relabel(array)
    expected_uniq, expected_inverse = np.unique(array, return_inverse=True)
    np.testing.assert_array_equal(uniq, expected_uniq)
    np.testing.assert_array_equal(inverse, expected_inverse)
