"""The supplementary's GT perturbation and the simulated tracker errors."""

from __future__ import annotations

import numpy as np

from deepmot.data.samplers import TrackErrors, corrupt_tracks, perturb_boxes

GT = np.array([[10, 20, 50, 100], [200, 40, 260, 160], [300, 10, 320, 50]], np.float32)


def test_perturbation_stays_within_the_supplementary_ranges() -> None:
    rng = np.random.default_rng(0)
    boxes = np.repeat(GT, 500, axis=0)
    out = perturb_boxes(boxes, rng)
    size, new_size = boxes[:, 2:] - boxes[:, :2], out[:, 2:] - out[:, :2]
    scale = new_size / size
    np.testing.assert_allclose(scale[:, 0], scale[:, 1], rtol=1e-5)  # one factor per box
    assert scale.min() >= 0.8 - 1e-5 and scale.max() <= 1.2 + 1e-5
    shift = ((out[:, :2] + out[:, 2:]) - (boxes[:, :2] + boxes[:, 2:])) / 2 / size
    assert np.abs(shift).max() <= 0.25 + 1e-5
    assert np.abs(shift).max() > 0.2 and scale.min() < 0.85  # the ranges are used, not just bounded


def test_corrupt_tracks_errors_do_what_they_say() -> None:
    ids = np.array([4, 7, 9])
    boxes, out_ids = corrupt_tracks(
        GT, ids, np.random.default_rng(0), TrackErrors(noise=0.0), (640, 480)
    )
    np.testing.assert_array_equal(boxes, GT)
    np.testing.assert_array_equal(out_ids, ids)

    _, dropped = corrupt_tracks(
        GT, ids, np.random.default_rng(0), TrackErrors(drop=1.0), (640, 480)
    )
    assert len(dropped) == 0

    _, swapped = corrupt_tracks(
        GT, ids, np.random.default_rng(3), TrackErrors(swap=1.0), (640, 480)
    )
    assert sorted(swapped) == sorted(ids)

    fp_boxes, fp_ids = corrupt_tracks(
        GT, ids, np.random.default_rng(0), TrackErrors(drop=1.0, false_positives=20), (640, 480)
    )
    assert len(fp_ids) > 5 and fp_ids.min() > ids.max() and len(set(fp_ids)) == len(fp_ids)
    assert (fp_boxes[:, 2:] > fp_boxes[:, :2]).all()
