"""Exact assignment with a threshold: hand cases, brute force, batching, empty input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from deepmot.assign.hungarian import hungarian, hungarian_batch, linear_assignment


def brute_force(cost: np.ndarray, threshold: float | None) -> tuple[int, float]:
    """(most allowed matches, least total cost among those) by enumerating all matchings."""
    n, m = cost.shape
    allowed = np.ones_like(cost, bool) if threshold is None else cost <= threshold
    best = (0, 0.0)
    if n > m:
        return brute_force(cost.T, threshold)
    for cols in itertools.permutations(range(m), n):
        pairs = [(i, j) for i, j in enumerate(cols) if allowed[i, j]]
        key = (len(pairs), sum(cost[i, j] for i, j in pairs))
        if key[0] > best[0] or (key[0] == best[0] and key[1] < best[1] - 1e-12):
            best = key
    return best


def test_hand_case_square():
    cost = np.array([[0.1, 0.9], [0.2, 0.3]])
    matches, ur, uc = linear_assignment(cost)
    assert matches.tolist() == [[0, 0], [1, 1]]
    assert ur.size == 0 and uc.size == 0


def test_threshold_leaves_far_pairs_unassigned():
    cost = np.array([[0.1, 0.9], [0.8, 0.95]])
    matches, ur, uc = linear_assignment(cost, threshold=0.5)
    assert matches.tolist() == [[0, 0]]
    assert ur.tolist() == [1] and uc.tolist() == [1]
    # without a threshold the far pair is matched too (min(N, M) pairs)
    assert linear_assignment(cost)[0].tolist() == [[0, 0], [1, 1]]


def test_threshold_maximises_matches_before_cost():
    # Matching (0,0) alone costs 0.0; (0,1)+(1,0) costs 1.8 but gives two allowed matches.
    cost = np.array([[0.0, 0.9], [0.9, 5.0]])
    matches, _, _ = linear_assignment(cost, threshold=1.0)
    assert sorted(map(tuple, matches.tolist())) == [(0, 1), (1, 0)]


def test_rectangular_and_binary_matrix():
    cost = np.array([[0.5, 0.1, 0.7]])
    a = hungarian(cost)
    assert a.dtype == np.uint8
    assert a.tolist() == [[0, 1, 0]]
    t = hungarian(torch.tensor(cost))
    assert isinstance(t, torch.Tensor) and t.tolist() == [[0.0, 1.0, 0.0]]


@pytest.mark.parametrize("shape", [(0, 0), (0, 3), (4, 0)])
def test_empty_input_returns_early(shape):
    matches, ur, uc = linear_assignment(np.zeros(shape))
    assert matches.shape == (0, 2)
    assert ur.tolist() == list(range(shape[0]))
    assert uc.tolist() == list(range(shape[1]))
    assert hungarian(np.zeros(shape)).shape == shape


def test_everything_above_threshold():
    matches, ur, uc = linear_assignment(np.full((2, 3), 0.9), threshold=0.5)
    assert matches.shape == (0, 2) and ur.tolist() == [0, 1] and uc.tolist() == [0, 1, 2]


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        linear_assignment(np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        linear_assignment(np.array([[np.nan]]))


def test_batch_list_and_padded():
    rng = np.random.default_rng(0)
    costs = [rng.random((3, 4)), rng.random((2, 2)), rng.random((5, 1))]
    out = hungarian_batch(costs, thresholds=[None, 0.5, 0.3])
    for c, t, a in zip(costs, [None, 0.5, 0.3], out, strict=True):
        np.testing.assert_array_equal(a, hungarian(c, t))
    padded = torch.full((3, 5, 4), 9.0)
    mask = torch.zeros(3, 5, 4, dtype=torch.bool)
    for i, c in enumerate(costs):
        padded[i, : c.shape[0], : c.shape[1]] = torch.tensor(c)
        mask[i, : c.shape[0], : c.shape[1]] = True
    batch = hungarian_batch(padded, mask=mask)
    for i, c in enumerate(costs):
        np.testing.assert_array_equal(batch[i, : c.shape[0], : c.shape[1]].numpy(), hungarian(c))
    assert batch[~mask].sum() == 0
    with pytest.raises(ValueError, match="thresholds"):
        hungarian_batch(costs, thresholds=[0.1])


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 4)), elements=st.floats(0, 1)),
    st.one_of(st.none(), st.floats(0, 1)),
)
def test_matches_brute_force(cost, threshold):
    matches, ur, uc = linear_assignment(cost, threshold)
    count, total = brute_force(cost, threshold)
    assert len(matches) == count
    assert cost[matches[:, 0], matches[:, 1]].sum() == pytest.approx(total, abs=1e-9)
    if threshold is not None and len(matches):
        assert (cost[matches[:, 0], matches[:, 1]] <= threshold).all()
    assert len(set(matches[:, 0])) == len(matches) == len(set(matches[:, 1]))
    assert len(ur) + len(matches) == cost.shape[0] and len(uc) + len(matches) == cost.shape[1]
