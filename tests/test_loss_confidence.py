"""The presence-weighted DeepMOT loss: each track's part weighted by its confidence."""

from __future__ import annotations

import math

import pytest
import torch

from deepmot import boxes
from deepmot.assign.hungarian import hungarian_batch
from deepmot.loss.deepmot import DeepMOTLoss, DeepMOTLossConfig, deepmot_terms

IMAGE = (400.0, 300.0)


def exact_matcher(distance: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Binary A* by SciPy's Hungarian; gated pairs (large value) never match."""
    return hungarian_batch(distance, 0.99, mask)


def _terms(assignment, distance, confidence, previous_ok=None, has_previous=None, scale=1.0):
    a = torch.tensor([assignment], dtype=torch.float64)
    d = torch.tensor([distance], dtype=torch.float64)
    n, m = a.shape[1:]
    prev = torch.ones((1, n, m), dtype=torch.bool) if previous_ok is None else previous_ok
    has = torch.zeros((1, m), dtype=torch.bool) if has_previous is None else has_previous
    c = None if confidence is None else torch.tensor([confidence], dtype=torch.float64)
    config = DeepMOTLossConfig(scale=scale)
    out, b_tp = deepmot_terms(
        d,
        a,
        torch.zeros((1, n, m), dtype=torch.bool),
        torch.ones((1, n), dtype=torch.bool),
        torch.ones((1, m), dtype=torch.bool),
        prev,
        has,
        config,
        c,
    )
    return out.squeeze(), b_tp[0]


def test_hand_computed_small_frame() -> None:
    """Two tracks, two objects, scale 1 (nothing saturates), by hand from the formulas:
    FP~ = Σ c_n C^r[n, dustbin], FN~ = Σ_m (C^c[dustbin, m] + Σ_n (1 − c_n) C^c[n, m]),
    IDS~ = Σ c_n C^c[n, m] over pairs the memory forbids, dMOTP weighted by c."""
    a = [[0.9, 0.1], [0.2, 0.7]]
    d = [[0.1, 0.8], [0.7, 0.2]]
    c = [0.8, 0.6]
    delta = 0.5
    e = math.exp
    # row softmaxes over [a_n1, a_n2, δ]
    rows = [[e(x) for x in (*r, delta)] for r in a]
    cr = [[v / sum(r) for v in r] for r in rows]
    # column softmaxes over [a_1m, a_2m, δ]
    cols = [[e(a[0][j]), e(a[1][j]), e(delta)] for j in range(2)]
    cc = [[v / sum(col) for v in col] for col in cols]  # cc[m][n]
    fp = c[0] * cr[0][2] + c[1] * cr[1][2]
    fn = sum(cc[j][2] + (1 - c[0]) * cc[j][0] + (1 - c[1]) * cc[j][1] for j in range(2))
    # object 0 was last matched to track 2 (row 1): its row 0 is a switch; object 1 is new,
    # its column copies B^TP (row 1 allowed), so its row 0 counts too (eq. 6)
    ids = c[0] * cc[0][0] + c[0] * cc[1][0]
    dmota = 1 - (fp + fn + 2.0 * ids) / 2
    # both diagonal pairs are mutual best and reported (c >= 0.5)
    dmotp = 1 - (c[0] * d[0][0] + c[1] * d[1][1]) / (c[0] + c[1])
    previous_ok = torch.tensor([[[False, True], [True, True]]])
    has_previous = torch.tensor([[True, False]])
    out, b_tp = _terms(a, d, c, previous_ok, has_previous)
    assert b_tp.tolist() == [[True, False], [False, True]]
    assert float(out.fp) == pytest.approx(fp, rel=1e-12)
    assert float(out.fn) == pytest.approx(fn, rel=1e-12)
    assert float(out.ids) == pytest.approx(ids, rel=1e-12)
    assert float(out.dmota) == pytest.approx(dmota, rel=1e-12)
    assert float(out.dmotp) == pytest.approx(dmotp, rel=1e-12)
    assert float(out.loss) == pytest.approx((1 - dmota) + 5.0 * (1 - dmotp), rel=1e-12)


def _frame(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    objects = torch.rand((5, 2), generator=g) * 300
    objects = torch.cat([objects, objects + torch.tensor([40.0, 90.0])], 1)
    tracks = objects[[0, 1, 2, 4]] + 8 * torch.randn((4, 4), generator=g)
    tracks = torch.cat([tracks, torch.tensor([[10.0, 10.0, 50.0, 100.0]])])  # a false track
    return tracks, objects, boxes.box_iou(tracks, objects)


@pytest.mark.parametrize("matcher", ["exact", "dhn"])
def test_confidence_one_is_the_papers_loss_exactly(matcher: str) -> None:
    loss_fn = DeepMOTLoss(exact_matcher if matcher == "exact" else None)
    for seed in range(3):
        tracks, objects, iou = _frame(seed)
        dist = boxes.distance_matrix(tracks, objects, *IMAGE)
        ids, gts = [1, 2, 3, 4, 5], [10, 11, 12, 13, 14]
        memory = {10: 1, 11: 3}
        plain, mem_plain = loss_fn.forward_batch([dist], [ids], [gts], [memory], [iou])
        ones, mem_ones = loss_fn.forward_batch(
            [dist], [ids], [gts], [memory], [iou], confidences=[torch.ones(5)]
        )
        for name in ("loss", "dmota", "dmotp", "fp", "fn", "ids", "true_positives"):
            assert torch.equal(getattr(plain, name), getattr(ones, name)), name
        assert mem_plain == mem_ones


def test_confidence_zero_removes_the_track() -> None:
    """With an exact matcher and a sharp softmax, a track of confidence 0 scores as if its
    row were not in D: no FP, no switch, no part in dMOTP, its object missed."""
    loss_fn = DeepMOTLoss(exact_matcher, gate="hard", scale=1e4)
    for seed in range(3):
        tracks, objects, iou = _frame(seed)
        ids, gts = [1, 2, 3, 4, 5], [10, 11, 12, 13, 14]
        for gone in range(5):
            keep = [i for i in range(5) if i != gone]
            conf = torch.ones(5)
            conf[gone] = 0.0
            dist = boxes.distance_matrix(tracks, objects, *IMAGE)
            weighted, mem_w = loss_fn.forward_batch(
                [dist], [ids], [gts], [{10: 1}], [iou], confidences=[conf]
            )
            removed, mem_r = loss_fn.forward_batch(
                [dist[keep]], [[ids[i] for i in keep]], [gts], [{10: 1}], [iou[keep]]
            )
            for name in ("loss", "dmota", "dmotp", "fp", "fn", "ids", "true_positives"):
                a, b = float(getattr(weighted, name)), float(getattr(removed, name))
                assert a == pytest.approx(b, abs=1e-5), (seed, gone, name)
            assert mem_w == mem_r


def test_gradient_reaches_the_confidence() -> None:
    """dMOTA's gradient raises the confidence of a track on its object (it removes a miss) and
    lowers that of a false track (it removes a false positive), through the default DHN."""
    tracks, objects, iou = _frame(0)
    dist = boxes.distance_matrix(tracks, objects, *IMAGE)
    conf = torch.full((5,), 0.7, requires_grad=True)
    out, _ = DeepMOTLoss(lam=0.0).forward_batch(
        [dist], [[1, 2, 3, 4, 5]], [[10, 11, 12, 13, 14]], [{}], [iou], confidences=[conf]
    )
    out.loss.sum().backward()
    grad = conf.grad
    assert grad is not None and torch.isfinite(grad).all()
    matched = iou.max(1).values >= 0.5
    assert matched[:4].all() and not matched[4]
    assert (grad[:4] < 0).all()  # more presence, fewer misses
    assert grad[4] > 0  # the false track: more presence, more false positives
    # each is the dustbin/column mass it moves, / M: about 1/5 in the hard limit
    assert grad[4] == pytest.approx(1 / 5, rel=0.05)


def test_bad_confidence_shapes() -> None:
    tracks, objects, iou = _frame(0)
    dist = boxes.distance_matrix(tracks, objects, *IMAGE)
    loss_fn = DeepMOTLoss(exact_matcher)
    with pytest.raises(ValueError, match="one per row"):
        loss_fn.forward_batch([dist], [[1, 2, 3, 4, 5]], [[1, 2, 3, 4, 5]], confidences=[conf3()])
    with pytest.raises(ValueError, match="confidence vectors"):
        loss_fn.forward_batch([dist], [[1, 2, 3, 4, 5]], [[1, 2, 3, 4, 5]], confidences=[])


def conf3() -> torch.Tensor:
    return torch.ones(3)
