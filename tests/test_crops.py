"""Crop geometry of the SOT trackers against numpy slicing and hand-computed regions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from deepmot.trackers.crops import context_regions, crop, siamese_regions, to_crop, to_image


@pytest.fixture
def image() -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(0).random((3, 20, 30), dtype=np.float32))


def _padded_slice(image: torch.Tensor, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """The oracle: image[y0:y1, x0:x1] with zeros outside the image."""
    c, h, w = image.shape
    pad = 50
    big = np.zeros((c, h + 2 * pad, w + 2 * pad), np.float32)
    big[:, pad : pad + h, pad : pad + w] = image.numpy()
    return big[:, y0 + pad : y1 + pad, x0 + pad : x1 + pad]


@pytest.mark.parametrize(
    "region",
    [(4, 3, 12, 11), (-5, -3, 5, 7), (24, 14, 34, 24), (-2, 5, 32, 9)],  # inside, corners, wide
)
def test_integer_regions_reproduce_pixels_with_zeros_outside(image, region):
    x0, y0, x1, y1 = region
    out = crop(image, torch.tensor([region], dtype=torch.float32), (y1 - y0, x1 - x0))
    np.testing.assert_allclose(out[0].numpy(), _padded_slice(image, *region), atol=1e-5)


def test_batched_crops_equal_one_at_a_time(image):
    regions = torch.tensor(
        [[1.5, 2.25, 9.0, 17.0], [-4.0, -4.0, 6.0, 6.0], [20.0, 10.0, 40.0, 30.0]]
    )
    batched = crop(image, regions, 16)
    assert batched.shape == (3, 3, 16, 16)
    for i in range(3):
        torch.testing.assert_close(batched[i : i + 1], crop(image, regions[i : i + 1], 16))


def test_downsampling_averages_two_by_two_blocks(image):
    # a 2x shrink samples each crop pixel at the shared corner of four image pixels
    out = crop(image, torch.tensor([[0.0, 0.0, 8.0, 8.0]]), 4)[0]
    blocks = image[:, :8, :8].reshape(3, 4, 2, 4, 2).mean(dim=(2, 4))
    torch.testing.assert_close(out, blocks)


def test_box_round_trip_and_hand_mapping():
    regions = torch.tensor([[-10.0, -20.0, 30.0, 60.0], [100.0, 50.0, 164.0, 114.0]])
    boxes = torch.tensor([[0.0, 0.0, 5.0, 10.0], [90.0, 40.0, 170.0, 120.0]])  # 2nd beyond it
    in_crop = to_crop(boxes, regions, 64)
    # region 1: 40 x 80 pixels onto 64 x 64 -> x scale 1.6, y scale 0.8
    torch.testing.assert_close(in_crop[0], torch.tensor([16.0, 16.0, 24.0, 24.0]))
    torch.testing.assert_close(in_crop[1], torch.tensor([-10.0, -10.0, 70.0, 70.0]))
    torch.testing.assert_close(to_image(in_crop, regions, 64), boxes)
    torch.testing.assert_close(to_image(in_crop, regions, (64, 64)), boxes)


def test_context_and_siamese_regions_hand_computed():
    boxes = torch.tensor([[10.0, 20.0, 20.0, 40.0]])  # w 10, h 20, centre (15, 30)
    torch.testing.assert_close(context_regions(boxes), torch.tensor([[5.0, 10.0, 25.0, 50.0]]))
    side = math.sqrt((10 + 15) * (20 + 15))  # p = (w + h) / 2 = 15
    expected = torch.tensor([[15 - side / 2, 30 - side / 2, 15 + side / 2, 30 + side / 2]])
    torch.testing.assert_close(siamese_regions(boxes), expected)
    search = siamese_regions(boxes, scale=2.0)
    torch.testing.assert_close(search[:, 2:] - search[:, :2], torch.full((1, 2), 2 * side))


def test_crop_validates_shapes(image):
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        crop(image[0], torch.zeros((1, 4)), 8)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        crop(image, torch.zeros(4), 8)
