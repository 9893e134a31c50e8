"""The Sinkhorn matcher: batched plans against each matrix alone, and against SciPy's Hungarian."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from deepmot.assign.sinkhorn import Sinkhorn, SinkhornConfig


def test_a_padded_batch_equals_each_matrix_solved_alone() -> None:
    generator = torch.Generator().manual_seed(0)
    sizes = [(7, 9), (3, 4), (1, 6), (5, 1), (0, 3), (2, 2)]
    distance = torch.rand(len(sizes), 7, 9, generator=generator)
    mask = torch.zeros_like(distance, dtype=torch.bool)
    for b, (n, m) in enumerate(sizes):
        mask[b, :n, :m] = True
    matcher = Sinkhorn(SinkhornConfig(epsilon=0.05, iterations=50))
    batch = matcher(distance, mask)
    assert (batch[~mask] == 0).all()
    for b, (n, m) in enumerate(sizes):
        alone = matcher(distance[b, :n, :m])
        assert alone.shape == (n, m)
        torch.testing.assert_close(batch[b, :n, :m], alone, atol=1e-6, rtol=0)


@pytest.mark.parametrize("seed", range(5))
def test_a_cold_plan_rounds_to_the_hungarian_solution(seed: int) -> None:
    """Every distance below twice the dustbin cost: the optimum matches min(N, M) pairs, the
    same as SciPy's; a small temperature puts the plan's mass on them."""
    rng = np.random.default_rng(seed)
    n, m = rng.integers(1, 12, size=2)
    distance = rng.uniform(0.0, 0.9, size=(n, m))
    plan = Sinkhorn(SinkhornConfig(dustbin_cost=0.5, epsilon=0.002, iterations=500))(
        torch.tensor(distance, dtype=torch.float64)
    )
    rows, cols = linear_sum_assignment(distance)
    expected = np.zeros((n, m), dtype=bool)
    expected[rows, cols] = True
    np.testing.assert_array_equal(plan.numpy() > 0.5, expected)


def test_empty_and_wrong_shapes() -> None:
    assert Sinkhorn()(torch.zeros(0, 4)).shape == (0, 4)
    assert Sinkhorn()(torch.zeros(2, 0, 3)).shape == (2, 0, 3)
    with pytest.raises(ValueError, match="D must have shape"):
        Sinkhorn()(torch.zeros(3))
