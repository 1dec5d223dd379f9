"""National-scale p-median (sparse neighbourhoods, Lagrangian bound): the bound holds, the answer is near
the exact optimum on instances small enough to solve exactly."""

from __future__ import annotations

import numpy as np
import pytest

from planners.distances import distance_matrix_km
from planners.national import SparsePMedian, solve_pmedian_sparse
from planners.placement import PlacementProblem, solve_pmedian
from twin.errors import TwinInputError


def _towns(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    latlon = np.column_stack([rng.uniform(44.0, 46.0, n), rng.uniform(2.0, 4.5, n)])
    return latlon, rng.integers(100, 5000, n).astype(float)


@pytest.mark.parametrize("seed, p, k_nearest", [(1, 10, 8), (2, 25, 5), (3, 40, 150)])
def test_bound_is_valid_and_answer_near_exact(seed, p, k_nearest):
    latlon, weights = _towns(150, seed)
    sparse = SparsePMedian.from_coordinates(latlon, weights, latlon, circuity=1.3, k_nearest=k_nearest)
    res = solve_pmedian_sparse(sparse, p, time_limit_s=60)
    exact = solve_pmedian(PlacementProblem.from_cost_matrix(distance_matrix_km(latlon, latlon), weights), p)
    assert exact.optimal
    assert len(res.sites) == p and res.model == "p-median"
    assert res.objective == pytest.approx(sparse.cost(np.array(res.sites)))
    # the Lagrangian bound is valid for the full problem even with small neighbourhoods
    assert res.bound <= exact.objective * (1 + 1e-9)
    assert exact.objective * (1 - 1e-9) <= res.objective <= 1.05 * exact.objective
    assert res.gap == pytest.approx((res.objective - res.bound) / res.objective)
    assert res.optimal == (res.gap <= 1e-9)
    assert res.solve_time_s > 0 and "Lagrangian bound" in res.status


def test_assignment_is_nearest_over_all_sites():
    latlon, weights = _towns(80, 4)
    sparse = SparsePMedian.from_coordinates(latlon, weights, latlon[:40], k_nearest=3)
    res = solve_pmedian_sparse(sparse, 6, time_limit_s=30)
    full = distance_matrix_km(latlon, latlon[:40])[:, list(res.sites)]
    np.testing.assert_array_equal(res.assignment, np.array(res.sites)[np.argmin(full, axis=1)])


def test_bad_inputs():
    latlon, weights = _towns(10, 5)
    with pytest.raises(TwinInputError, match="weights"):
        SparsePMedian.from_coordinates(latlon, weights[:5], latlon)
    with pytest.raises(TwinInputError, match="circuity"):
        SparsePMedian.from_coordinates(latlon, weights, latlon, circuity=0.5)
    sparse = SparsePMedian.from_coordinates(latlon, weights, latlon)
    with pytest.raises(TwinInputError, match=r"p must be an integer in 1..10"):
        solve_pmedian_sparse(sparse, 11)
