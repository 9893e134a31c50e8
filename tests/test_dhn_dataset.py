"""DHN data: augmentation, A* against SciPy, storage, batching, building from real files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from deepmot.data.dhn_dataset import (
    LARGE_VALUE,
    DHNDataConfig,
    DHNDataset,
    augment,
    build_dhn_data,
    collate,
    size_grouped_batches,
    uniform_matrices,
    uniform_training_matrices,
    video_key,
)


def test_video_key_joins_mot16_and_mot17():
    assert video_key("MOT16-10") == video_key("MOT17-10") == video_key("MOT17-10-FRCNN")
    assert video_key("MOT17-10") != video_key("MOT17-11")
    assert video_key("KITTI-13") == "KITTI-13"


def test_augment_sets_entries_above_threshold():
    rng = np.random.default_rng(0)
    d = rng.random((6, 7)).astype(np.float32)
    out, t = augment(d, np.random.default_rng(1), prob=1.0)
    assert 0 <= t < 1
    np.testing.assert_array_equal(out[d > t], LARGE_VALUE)
    np.testing.assert_array_equal(out[d <= t], d[d <= t])
    same, t_none = augment(d, np.random.default_rng(1), prob=0.0)
    assert np.isinf(t_none)
    np.testing.assert_array_equal(same, d)


def test_uniform_matrices_match_scipy():
    ds, As = uniform_matrices([2, 5, 9], per_size=3, seed=0)
    assert [d.shape for d in ds] == [(2, 2)] * 3 + [(5, 5)] * 3 + [(9, 9)] * 3
    for d, a in zip(ds, As, strict=True):
        rows, cols = linear_sum_assignment(d)
        expected = np.zeros_like(a)
        expected[rows, cols] = 1
        np.testing.assert_array_equal(a, expected)
        assert (d >= 0).all() and (d < 1).all()


def test_augmented_a_star_matches_scipy_on_random_matrices():
    """A* with the threshold equals SciPy on the matrix with gated entries made prohibitive."""
    from deepmot.assign.hungarian import hungarian

    rng = np.random.default_rng(5)
    for _ in range(200):
        n, m = rng.integers(1, 9, size=2)
        d = rng.random((n, m)).astype(np.float32)
        d_aug, t = augment(d, rng)
        a = hungarian(d_aug, t)
        # oracle: SciPy with gated entries at a cost no allowed set of matches can reach
        big = np.where(d_aug > t, 1e6, d_aug.astype(np.float64))
        rows, cols = linear_sum_assignment(big)
        keep = big[rows, cols] < 1e6
        expected = np.zeros((n, m), np.uint8)
        expected[rows[keep], cols[keep]] = 1
        assert a.sum() == expected.sum()
        assert d_aug[a > 0].sum() == pytest.approx(d_aug[expected > 0].sum(), abs=1e-5)


def test_dataset_round_trip_and_subset(tmp_path):
    rng = np.random.default_rng(0)
    ds = [rng.random((2, 3)).astype(np.float32), rng.random((4, 1)).astype(np.float32)]
    As = [np.eye(2, 3, dtype=np.uint8), np.eye(4, 1, dtype=np.uint8)]
    data = DHNDataset.from_matrices(ds, As, [0.5, np.inf], [0, 1], [3, 4], ["a", "b"])
    path = tmp_path / "x.safetensors"
    data.save(path)
    back = DHNDataset.load(path)
    assert len(back) == 2 and back.sources == ["a", "b"]
    for i in range(2):
        d, a = back[i]
        np.testing.assert_array_equal(d.numpy(), ds[i])
        np.testing.assert_array_equal(a.numpy(), As[i])
    sub = back.subset([1])
    np.testing.assert_array_equal(sub[0][0].numpy(), ds[1])
    assert sub.frame.tolist() == [4]


def test_collate_pads_with_mask():
    items = [(torch.ones(2, 3), torch.eye(2, 3)), (torch.ones(4, 1), torch.eye(4, 1))]
    d, a, mask = collate(items)
    assert d.shape == a.shape == mask.shape == (2, 4, 3)
    assert mask[0].sum() == 6 and mask[1].sum() == 4
    assert d[~mask].sum() == 0


def test_size_grouped_batches_cover_everything_once():
    rng = np.random.default_rng(0)
    shapes = rng.integers(1, 30, size=(101, 2))
    batches = size_grouped_batches(shapes, 8, np.random.default_rng(1))
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(101))
    assert all(len(b) <= 8 for b in batches)
    # within a batch the sizes are neighbours in the sorted order
    sizes = shapes.prod(1)
    order = np.sort(sizes)
    for b in batches:
        lo, hi = sizes[b].min(), sizes[b].max()
        assert np.searchsorted(order, hi, "right") - np.searchsorted(order, lo, "left") <= 8 + (
            (order == lo).sum() + (order == hi).sum()
        )
    again = size_grouped_batches(shapes, 8, np.random.default_rng(1))
    assert all(np.array_equal(x, y) for x, y in zip(batches, again, strict=True))


def test_entry_capped_batches_respect_the_cap_and_keep_their_count():
    shapes = np.random.default_rng(2).integers(1, 40, size=(150, 2))
    cap = 2000
    counts = set()
    for seed in range(3):
        batches = size_grouped_batches(shapes, 8, np.random.default_rng(seed), cap)
        assert sorted(np.concatenate(batches).tolist()) == list(range(150))
        for b in batches:
            assert len(b) <= 8
            # a batch passes the cap only as a single matrix
            assert len(b) == 1 or len(b) * shapes[b].prod(1).max() <= cap
        counts.add(len(batches))
    assert len(counts) == 1  # same batches per epoch whatever the shuffle
    assert counts.pop() > len(size_grouped_batches(shapes, 8))  # the cap did cut


def test_uniform_training_matrices_mix_sizes_and_match_scipy():
    data = uniform_training_matrices(60, 40, seed=3, augment_prob=0.5)
    assert len(data) == 60 and data.shapes.min() >= 1 and data.shapes.max() <= 40
    assert data.shapes.max() > 15 and data.shapes.min() < 5  # small and large alike
    augmented = np.isfinite(data.thresholds)
    assert 0 < augmented.sum() < 60
    for i in range(len(data)):
        d, a = (t.numpy() for t in data[i])
        t = data.thresholds[i]
        big = np.where(d > t, 1e6, d.astype(np.float64))
        rows, cols = linear_sum_assignment(big)
        keep = big[rows, cols] < 1e6
        assert a.sum() == keep.sum()
        assert d[a > 0].sum() == pytest.approx(d[rows[keep], cols[keep]].sum(), abs=1e-4)
    again = uniform_training_matrices(60, 40, seed=3, augment_prob=0.5)
    np.testing.assert_array_equal(again.d, data.d)


@pytest.mark.data
def test_build_from_real_sequences(mot_root, tmp_path):
    root = tmp_path / "mot"
    root.mkdir()
    for name in ("TUD-Campus", "KITTI-13", "MOT16-05"):
        (root / name).symlink_to(mot_root / name)
    config = DHNDataConfig(test_sequences=("KITTI-13",), uniform_sizes=(2, 3), uniform_per_size=2)
    manifest = build_dhn_data(root, tmp_path / "out", config, progress=False)
    on_disk = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert on_disk["files"] == manifest["files"]
    assert any("MOT16-05" in s for s in manifest["skipped"])  # gt only
    splits = {v["split"] for k, v in manifest["sources"].items() if k.startswith("KITTI-13")}
    assert splits == {"test"}
    assert {v["split"] for k, v in manifest["sources"].items() if k.startswith("TUD")} == {"train"}
    test = DHNDataset.load(tmp_path / "out" / "test.safetensors")
    train = DHNDataset.load(tmp_path / "out" / "train.safetensors")
    assert len(test) == manifest["files"]["test"]["matrices"] > 0
    assert len(train) == manifest["files"]["train"]["matrices"] > 0
    assert all(test.sources[s].startswith("KITTI-13") for s in set(test.source.tolist()))
    # every stored A* is the thresholded Hungarian of its stored D
    from deepmot.assign.hungarian import hungarian

    for i in range(0, len(train), 7):
        d, a = train[i]
        t = float(train.thresholds[i])
        expected = hungarian(d.numpy(), None if np.isinf(t) else t)
        assert a.sum() == expected.sum()
        assert d.numpy()[a.numpy() > 0].sum() == pytest.approx(
            d.numpy()[expected > 0].sum(), abs=1e-5
        )
        assert (d.numpy()[a.numpy() > 0] <= t).all()
    assert len(DHNDataset.load(tmp_path / "out" / "uniform.safetensors")) == 4
