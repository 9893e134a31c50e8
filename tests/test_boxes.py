"""Box conversions, IoU and the DeepMOT distance matrix (eqs. 3–4)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.ops import box_iou as tv_box_iou

from deepmot import boxes


def test_conversions_invert_each_other() -> None:
    xyxy = torch.tensor([[10.0, 20.0, 40.0, 60.0], [0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(boxes.xyxy_to_xywh(xyxy), [[10, 20, 30, 40], [0, 0, 0, 0]])
    np.testing.assert_array_equal(boxes.xyxy_to_cxcywh(xyxy), [[25, 40, 30, 40], [0, 0, 0, 0]])
    torch.testing.assert_close(boxes.xywh_to_xyxy(boxes.xyxy_to_xywh(xyxy)), xyxy)
    torch.testing.assert_close(boxes.cxcywh_to_xyxy(boxes.xyxy_to_cxcywh(xyxy)), xyxy)


def test_numpy_in_numpy_out() -> None:
    a = np.array([[0, 0, 2, 2]], dtype=np.float32)
    out = boxes.box_iou(a, a)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    assert isinstance(boxes.xywh_to_xyxy(a), np.ndarray)


def test_iou_hand_computed() -> None:
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor(
        [[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0], [5.0, 5.0, 6.0, 6.0], [0.0, 0.0, 1.0, 2.0]]
    )
    # overlap 1, union 4 + 4 - 1 = 7; identical; disjoint; half contained
    torch.testing.assert_close(boxes.box_iou(a, b), torch.tensor([[1 / 7, 1.0, 0.0, 0.5]]))


def test_iou_matches_torchvision_on_random_boxes() -> None:
    g = torch.Generator().manual_seed(0)
    a = boxes.cxcywh_to_xyxy(torch.rand(30, 4, generator=g, dtype=torch.float64) * 100)
    b = boxes.cxcywh_to_xyxy(torch.rand(20, 4, generator=g, dtype=torch.float64) * 100)
    torch.testing.assert_close(boxes.box_iou(a, b), tv_box_iou(a, b), rtol=1e-12, atol=1e-12)


def test_iou_batched_equals_per_frame() -> None:
    g = torch.Generator().manual_seed(1)
    a = boxes.cxcywh_to_xyxy(torch.rand(3, 5, 4, generator=g) * 50)
    b = boxes.cxcywh_to_xyxy(torch.rand(3, 7, 4, generator=g) * 50)
    batched = boxes.box_iou(a, b)
    assert batched.shape == (3, 5, 7)
    for i in range(3):
        torch.testing.assert_close(batched[i], tv_box_iou(a[i], b[i]))


def test_iou_of_empty_boxes_is_zero_with_zero_gradient() -> None:
    a = torch.tensor([[1.0, 1.0, 1.0, 1.0]], requires_grad=True)  # zero area
    b = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 2.0, 2.0]])
    iou = boxes.box_iou(a, b)
    assert iou.tolist() == [[0.0, 0.0]]
    iou.sum().backward()
    assert torch.isfinite(a.grad).all()


def test_denormal_union_gives_finite_gradients() -> None:
    """Found by hypothesis: a union of 1.4e-45 px² used to give an infinite gradient (NaN)."""
    a = torch.tensor([[0.0, 0.0, 0.0, 1.0]], requires_grad=True)
    b = torch.tensor([[0.0, 0.0, 1.0, 1.401298464324817e-45]], requires_grad=True)
    (boxes.box_iou(a, b).sum() + boxes.distance_matrix(a, b, 100.0, 100.0).sum()).backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()


def test_empty_sets_give_empty_matrices() -> None:
    a = torch.zeros(0, 4)
    b = torch.rand(3, 4)
    assert boxes.box_iou(a, b).shape == (0, 3)
    assert boxes.distance_matrix(b, a, 10, 10).shape == (3, 0)


def test_distance_matrix_hand_computed() -> None:
    # image 30x40 → diagonal 50; the track's centre is (5, 5)
    tracks = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    objects = torch.tensor(
        [[0.0, 0.0, 10.0, 10.0], [30.0, 40.0, 40.0, 50.0], [5.0, 0.0, 15.0, 10.0]]
    )
    d = boxes.distance_matrix(tracks, objects, im_width=30, im_height=40)
    # identical: (0 + 0) / 2; far: centre distance sqrt(30²+40²)=50 → f=1, J=1 → 1;
    # shifted by 5 px: f = 5/50 = 0.1, IoU = 50/150 → J = 2/3 → (0.1 + 2/3) / 2
    torch.testing.assert_close(d, torch.tensor([[0.0, 1.0, (0.1 + 2 / 3) / 2]]))


def test_distance_matrix_per_batch_image_size() -> None:
    tracks = torch.tensor([[[0.0, 0.0, 10.0, 10.0]], [[0.0, 0.0, 10.0, 10.0]]])
    objects = torch.tensor([[[30.0, 40.0, 40.0, 50.0]], [[30.0, 40.0, 40.0, 50.0]]])
    d = boxes.distance_matrix(
        tracks, objects, torch.tensor([30.0, 60.0]), torch.tensor([40.0, 80.0])
    )
    torch.testing.assert_close(d.flatten(), torch.tensor([1.0, (0.5 + 1) / 2]))


def test_distance_matrix_with_embeddings() -> None:
    tracks = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    objects = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0]])
    e_t = torch.tensor([[1.0, 0.0]])
    e_o = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    d = boxes.distance_matrix(tracks, objects, 100, 100, e_t, e_o)
    torch.testing.assert_close(d, torch.tensor([[0.0, 1 / 3]]))
    with pytest.raises(ValueError, match="both"):
        boxes.distance_matrix(tracks, objects, 100, 100, e_t, None)


def test_bad_arguments_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"\(\.\.\., K, 4\)"):
        boxes.box_iou(torch.zeros(3, 5), torch.zeros(2, 4))
    with pytest.raises(TypeError, match="floating-point"):
        boxes.box_iou(torch.zeros(3, 4, dtype=torch.int64), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="> 0"):
        boxes.distance_matrix(torch.zeros(1, 4), torch.zeros(1, 4), 0, 10)


def test_gradcheck_distance_matrix() -> None:
    g = torch.Generator().manual_seed(3)
    a = boxes.cxcywh_to_xyxy(torch.rand(3, 4, generator=g, dtype=torch.float64) * 10 + 1)
    b = boxes.cxcywh_to_xyxy(torch.rand(2, 4, generator=g, dtype=torch.float64) * 10 + 1)
    a.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: boxes.distance_matrix(x, b, 20.0, 15.0), (a,))


coordinate = st.floats(min_value=-50, max_value=50, allow_nan=False, width=32)
box = st.tuples(coordinate, coordinate, coordinate, coordinate)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(box, min_size=1, max_size=4),
    st.lists(box, min_size=1, max_size=4),
    st.booleans(),
)
def test_gradients_are_finite_for_any_boxes(raw_a, raw_b, degenerate: bool) -> None:
    """Zero-area, inverted, coinciding and identical boxes: no NaN/inf in value or gradient."""
    a = torch.tensor(raw_a, dtype=torch.float32)
    b = torch.tensor(raw_b, dtype=torch.float32)
    if degenerate:  # collapse boxes to points or lines, and make one pair identical
        a[:, 2] = a[:, 0]
        b[0] = a[0]
    a.requires_grad_(True)
    b.requires_grad_(True)
    d = boxes.distance_matrix(a, b, 100.0, 100.0)
    iou = boxes.box_iou(a, b)
    assert torch.isfinite(d).all() and torch.isfinite(iou).all()
    assert ((iou >= 0) & (iou <= 1 + 1e-6)).all()
    (d.sum() + iou.sum()).backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()


@settings(max_examples=100, deadline=None)
@given(st.lists(box, min_size=1, max_size=5), st.lists(box, min_size=1, max_size=5))
def test_iou_property_matches_torchvision_for_valid_boxes(raw_a, raw_b) -> None:
    a = torch.tensor(raw_a, dtype=torch.float64)
    b = torch.tensor(raw_b, dtype=torch.float64)
    # make valid xyxy boxes with positive area
    a = torch.cat([a[:, :2], a[:, :2] + a[:, 2:].abs() + 0.5], dim=1)
    b = torch.cat([b[:, :2], b[:, :2] + b[:, 2:].abs() + 0.5], dim=1)
    torch.testing.assert_close(boxes.box_iou(a, b), tv_box_iou(a, b))
    d = boxes.distance_matrix(a, b, 100.0, 100.0)
    centre = torch.cdist((a[:, :2] + a[:, 2:]) / 2, (b[:, :2] + b[:, 2:]) / 2) / math.hypot(
        100, 100
    )
    torch.testing.assert_close(d, (centre + 1 - tv_box_iou(a, b)) / 2)
