"""HOTA on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
from _eval_helpers import seq

from deepmot.metrics import HOTA
from deepmot.metrics.hota import ALPHAS

A = [0.0, 0.0, 10.0, 10.0]
B = [50.0, 0.0, 10.0, 10.0]


def test_alphas() -> None:
    assert len(ALPHAS) == 19
    assert ALPHAS[0] == pytest.approx(0.05) and ALPHAS[-1] == pytest.approx(0.95)


def test_perfect_tracking_scores_one() -> None:
    gt = [(f, 1, A) for f in range(4)] + [(f, 2, B) for f in range(4)]
    res = HOTA().eval_sequence(seq(4, gt, [(f, i + 5, b) for f, i, b in gt]))
    for field in ("HOTA", "DetA", "AssA", "LocA", "DetRe", "DetPr", "AssRe", "AssPr"):
        np.testing.assert_allclose(res[field], 1.0)
    np.testing.assert_array_equal(res["HOTA_TP"], 8)


def test_one_switch() -> None:
    # Two frames, tracker ids 10 then 11: DetA 1; each TP's pair of trajectories has Jaccard
    # 1 / (2 + 1 - 1) = 1/2, so AssA = 1/2 and HOTA = sqrt(1/2). AssRe = 1/2, AssPr = 1.
    res = HOTA().eval_sequence(seq(2, [(0, 1, A), (1, 1, A)], [(0, 10, A), (1, 11, A)]))
    np.testing.assert_allclose(res["DetA"], 1.0)
    np.testing.assert_allclose(res["AssA"], 0.5)
    np.testing.assert_allclose(res["AssRe"], 0.5)
    np.testing.assert_allclose(res["AssPr"], 1.0)
    np.testing.assert_allclose(res["HOTA"], np.sqrt(0.5))


def test_localisation_threshold() -> None:
    # IoU 0.6: a TP for alpha <= 0.6, a FN + FP above.
    box = [2.5, 0.0, 10.0, 10.0]  # IoU 7.5 / 12.5 = 0.6
    res = HOTA().eval_sequence(seq(1, [(0, 1, A)], [(0, 1, box)]))
    tp = (ALPHAS <= 0.6 + 1e-12).astype(float)
    np.testing.assert_array_equal(res["HOTA_TP"], tp)
    np.testing.assert_array_equal(res["HOTA_FN"], 1 - tp)
    np.testing.assert_allclose(res["DetA"], tp)
    np.testing.assert_allclose(res["LocA"][tp == 1], 0.6)
    assert res["HOTA(0)"] == pytest.approx(1.0) and res["LocA(0)"] == pytest.approx(0.6)


def test_matching_prefers_the_better_associated_id() -> None:
    # gt 1 is tracked by 10 in frames 0-2; in frame 3 trackers 10 and 20 overlap it equally
    # well: the id with the higher alignment (10) is matched.
    gt = [(f, 1, A) for f in range(4)]
    tracker = [(f, 10, A) for f in range(4)] + [(3, 20, A)]
    res = HOTA().eval_sequence(seq(4, gt, tracker))
    np.testing.assert_allclose(res["AssA"], 1.0)
    np.testing.assert_array_equal(res["HOTA_FP"], 1)


def test_empty_sides_follow_the_reference() -> None:
    res = HOTA().eval_sequence(seq(2, [(0, 1, A)], []))
    np.testing.assert_array_equal(res["HOTA_FN"], 1)
    np.testing.assert_array_equal(res["LocA"], 1.0)
    assert res["HOTA(0)"] == 0.0


def test_combine_weights_association_by_true_positives() -> None:
    hota = HOTA()
    a = hota.eval_sequence(
        seq(2, [(0, 1, A), (1, 1, A)], [(0, 10, A), (1, 11, A)])
    )  # AssA 1/2, 2 TP
    b = hota.eval_sequence(seq(1, [(0, 1, A)], [(0, 1, A)]))  # AssA 1, 1 TP
    both = hota.combine_sequences({"a": a, "b": b})
    np.testing.assert_allclose(both["AssA"], (0.5 * 2 + 1 * 1) / 3)
    np.testing.assert_allclose(both["DetA"], 1.0)
    np.testing.assert_allclose(both["HOTA"], np.sqrt(2 / 3))
