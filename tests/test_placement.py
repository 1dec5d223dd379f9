"""Placement solvers: known OR-Library optima, brute-force agreement, fixed sites, bad inputs, distances."""

from __future__ import annotations

import itertools
import math
import time
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planners.distances import (
    EARTH_MEAN_RADIUS_KM,
    distance_matrix_km,
    great_circle_km,
    road_graph_distance_km,
)
from planners.orlib import read_orlib_optima, read_orlib_pmedian
from planners.placement import (
    PlacementProblem,
    PlacementResult,
    _lagrangian_bnb,
    _run_milp,
    solve_lscp,
    solve_mclp,
    solve_pcenter,
    solve_pmedian,
)
from twin.errors import TwinInputError

DATA = Path(__file__).parent / "data" / "or-library"
OPTIMA = read_orlib_optima(DATA / "pmedopt.txt")


def _pmed(k: int):
    inst = read_orlib_pmedian(DATA / f"pmed{k}.txt")
    return inst, PlacementProblem.from_cost_matrix(inst.distances)


# ------------------------------------------------------------------ OR-Library known optima


@pytest.mark.parametrize("k", range(1, 11))
def test_pmedian_reaches_published_optimum(k):
    inst, problem = _pmed(k)
    res = solve_pmedian(problem, inst.p, time_limit_s=120)
    assert res.model == "p-median"
    assert res.objective == OPTIMA[inst.name]
    assert res.optimal and res.gap == 0 and res.bound == res.objective
    assert len(res.sites) == inst.p and list(res.sites) == sorted(res.sites)
    assert problem.pmedian_cost(res.sites) == res.objective
    np.testing.assert_array_equal(res.assignment, problem.assignment(res.sites))


def test_pmedian_time_limit_reports_gap_honestly():
    inst, problem = _pmed(6)  # the Lagrangian bound alone leaves a gap on pmed6
    res = solve_pmedian(problem, inst.p, time_limit_s=0.0)
    assert not res.optimal
    assert res.gap > 0
    assert res.bound <= OPTIMA["pmed6"] <= res.objective
    assert "NOT proven optimal" in res.status


def test_pmedian_heuristic_bound_is_valid():
    for k in (2, 3, 6):
        inst, problem = _pmed(k)
        res = solve_pmedian(problem, inst.p, method="heuristic")
        assert res.bound <= OPTIMA[inst.name] <= res.objective
        assert res.optimal == (res.gap == 0)


def test_pmedian_fixed_sites_on_pmed1():
    inst, _ = _pmed(1)
    fixed = (0, 1)
    problem = PlacementProblem.from_cost_matrix(inst.distances, fixed_sites=fixed)
    res = solve_pmedian(problem, inst.p)
    exact = solve_pmedian(problem, inst.p, method="milp")
    assert set(fixed) <= set(res.sites) and set(fixed) <= set(exact.sites)
    assert res.optimal and exact.optimal and res.objective == exact.objective
    assert res.objective >= OPTIMA["pmed1"]


# ------------------------------------------------------------------ brute force on small instances


@st.composite
def small_instances(draw, float_costs: bool = False):
    n = draw(st.integers(1, 12))
    m = draw(st.integers(1, 8))
    if float_costs:
        cost = draw(st.lists(st.floats(0, 50, allow_nan=False, width=32), min_size=n * m, max_size=n * m))
        weights = draw(st.lists(st.floats(0, 5, allow_nan=False, width=32), min_size=n, max_size=n))
    else:
        cost = draw(st.lists(st.integers(0, 20), min_size=n * m, max_size=n * m))
        weights = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
    n_fixed = draw(st.integers(0, min(2, m)))
    fixed = draw(st.lists(st.integers(0, m - 1), min_size=n_fixed, max_size=n_fixed, unique=True))
    p = draw(st.integers(max(1, len(fixed)), m))
    problem = PlacementProblem.from_cost_matrix(np.reshape(cost, (n, m)), weights, fixed_sites=fixed)
    return problem, p


def _subsets(problem: PlacementProblem, size: int):
    fixed = set(problem.fixed_sites)
    for s in itertools.combinations(range(problem.n_candidates), size):
        if fixed <= set(s):
            yield s


def _check_common(res: PlacementResult, problem: PlacementProblem):
    assert set(problem.fixed_sites) <= set(res.sites)
    assert list(res.sites) == sorted(set(res.sites))
    assert res.assignment.shape == (problem.n_demand,)
    assert set(res.assignment.tolist()) <= (set(res.sites) if res.sites else {-1})
    assert res.gap >= 0


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(small_instances(), st.sampled_from(["auto", "milp", "heuristic"]))
def test_pmedian_matches_brute_force(inst, method):
    problem, p = inst
    best = min(problem.pmedian_cost(s) for s in _subsets(problem, p))
    res = solve_pmedian(problem, p, method=method)
    _check_common(res, problem)
    assert len(res.sites) == p
    assert res.objective == pytest.approx(problem.pmedian_cost(res.sites))
    assert res.bound <= best + 1e-9 <= res.objective + 2e-9
    if method != "heuristic":
        assert res.optimal
    if res.optimal:
        assert res.objective == pytest.approx(best)


@FAST
@given(st.integers(0, 2**32 - 1), st.integers(2, 5), st.booleans())
def test_lagrangian_branch_and_bound_matches_brute_force(seed, p, with_forced):
    """The branch-and-bound alone (no root tests), from an incumbent one unit above the optimum: it must
    find the optimum and finish; from the optimum itself it finishes without a better solution."""
    rng = np.random.default_rng(seed)
    n = 12
    D = rng.integers(1, 60, size=(n, n)).astype(float)
    forced = np.zeros(n, dtype=bool)
    forced[rng.integers(0, n)] = with_forced
    subsets = [s for s in itertools.combinations(range(n), p) if forced[list(s)].sum() == forced.sum()]
    best = min(D[:, list(s)].min(axis=1).sum() for s in subsets)
    far = time.perf_counter() + 60
    bb = _lagrangian_bnb(D, p, forced, D.min(axis=1), 0.0, best + 1, True, far)
    assert bb.complete and bb.best_cost == best
    assert bb.best_sites.size == p and forced[bb.best_sites].sum() == forced.sum()
    assert D[:, bb.best_sites].min(axis=1).sum() == best
    again = _lagrangian_bnb(D, p, forced, D.min(axis=1), 0.0, best, True, far)
    assert again.complete and again.best_sites is None


def test_milp_option_unknown_to_highs_is_dropped():
    """The radius MILP passes HiGHS options by name; one this HiGHS lacks must not make the solve fail."""
    from scipy.optimize import Bounds, LinearConstraint

    out = _run_milp(np.array([1.0, 2.0]), [LinearConstraint(np.ones((1, 2)), 1, 1)], np.ones(2), Bounds(0, 1),
                    10.0, 1e-9, {"no_such_highs_option": 1, "mip_allow_restart": False})
    assert out.proven and out.objective == pytest.approx(1.0)


@FAST
@given(small_instances(float_costs=True))
def test_pmedian_float_costs_match_brute_force(inst):
    problem, p = inst
    best = min(problem.pmedian_cost(s) for s in _subsets(problem, p))
    res = solve_pmedian(problem, p)
    assert res.optimal
    assert res.objective == pytest.approx(best, rel=1e-6, abs=1e-6)


@FAST
@given(small_instances(), st.integers(0, 20))
def test_mclp_matches_brute_force(inst, radius_km):
    problem, p = inst
    best = max(problem.coverage(s, radius_km) for s in _subsets(problem, p))
    res = solve_mclp(problem, p, radius_km)
    _check_common(res, problem)
    assert len(res.sites) == p
    assert res.optimal and res.objective == pytest.approx(best)
    assert res.bound >= res.objective  # upper bound for a maximisation


@FAST
@given(small_instances(), st.integers(0, 20))
def test_lscp_matches_brute_force(inst, radius_km):
    problem, _ = inst
    required = problem.weights > 0
    feasible = bool(np.all((problem.cost[required] <= radius_km).any(axis=1)))
    if not feasible:
        with pytest.raises(TwinInputError, match="LSCP infeasible"):
            solve_lscp(problem, radius_km)
        return
    best = next(
        size
        for size in range(len(problem.fixed_sites), problem.n_candidates + 1)
        if any(
            np.all((problem.cost[required][:, list(s)] <= radius_km).any(axis=1)) if s else not required.any()
            for s in _subsets(problem, size)
        )
    )
    res = solve_lscp(problem, radius_km)
    _check_common(res, problem)
    assert res.optimal and res.objective == best == len(res.sites)
    assert np.all((problem.cost[required][:, list(res.sites)] <= radius_km).any(axis=1))


@FAST
@given(small_instances())
def test_pcenter_matches_brute_force(inst):
    problem, p = inst
    best = min(problem.max_cost(s) for s in _subsets(problem, p))
    res = solve_pcenter(problem, p)
    _check_common(res, problem)
    assert len(res.sites) == p
    assert res.optimal and res.objective == best and res.bound == best


# ------------------------------------------------------------------ fixed sites and bad inputs


def test_fixed_site_forced_even_if_useless():
    cost = np.array([[1.0, 100.0, 2.0], [1.0, 100.0, 2.0]])
    problem = PlacementProblem.from_cost_matrix(cost, fixed_sites=[1])
    for res in (
        solve_pmedian(problem, 2),
        solve_mclp(problem, 2, radius_km=1.5),
        solve_lscp(problem, radius_km=1.5),
        solve_pcenter(problem, 2),
    ):
        assert 1 in res.sites
    assert solve_pmedian(problem, 2).sites == (0, 1)
    assert solve_lscp(problem, radius_km=1.5).sites == (0, 1)


@pytest.mark.parametrize(
    "cost, weights, fixed, match",
    [
        ([[1.0, np.nan]], None, (), "finite"),
        ([[1.0, np.inf]], None, (), "finite"),
        ([[1.0, -2.0]], None, (), r"cost\[0, 1\] = -2.0: entries must be >= 0"),
        ([1.0, 2.0], None, (), "2-D"),
        (np.zeros((0, 3)), None, (), "2-D"),
        ([[1.0, 2.0]], [1.0, 2.0], (), r"weights must have shape \(1,\)"),
        ([[1.0, 2.0]], [-1.0], (), "weights"),
        ([[1.0, 2.0]], [np.nan], (), "weights"),
        ([[1.0, 2.0]], None, (2,), "fixed site 2 out of range"),
        ([[1.0, 2.0]], None, (0, 0), "listed twice"),
        ([["a", 2.0]], None, (), "not numeric"),
    ],
)
def test_problem_validation(cost, weights, fixed, match):
    with pytest.raises(TwinInputError, match=match):
        PlacementProblem.from_cost_matrix(cost, weights, fixed_sites=fixed)


def test_bad_p_and_radius():
    problem = PlacementProblem.from_cost_matrix(np.ones((3, 3)), fixed_sites=(0, 1))
    for solve in (solve_pmedian, solve_pcenter, lambda pr, p: solve_mclp(pr, p, 1.0)):
        with pytest.raises(TwinInputError, match="exceeds the number of candidate sites"):
            solve(problem, 4)
        with pytest.raises(TwinInputError, match="smaller than the number of fixed"):
            solve(problem, 1)
        with pytest.raises(TwinInputError, match="p must be >= 1"):
            solve(PlacementProblem.from_cost_matrix(np.ones((3, 3))), 0)
    with pytest.raises(TwinInputError, match="radius_km"):
        solve_mclp(problem, 2, float("nan"))
    with pytest.raises(TwinInputError, match="radius_km"):
        solve_lscp(problem, -1.0)
    with pytest.raises(TwinInputError, match="unknown p-median method"):
        solve_pmedian(problem, 2, method="magic")


def test_lscp_uncoverable_message():
    cost = np.array([[1.0, 2.0], [9.0, 7.0], [3.0, 1.0]])
    problem = PlacementProblem.from_cost_matrix(cost)
    with pytest.raises(TwinInputError, match=r"demand indices 1\).*smallest radius .* is 7"):
        solve_lscp(problem, radius_km=5.0)
    # a zero-weight point imposes nothing
    res = solve_lscp(PlacementProblem.from_cost_matrix(cost, [1, 0, 1]), radius_km=5.0)
    assert res.objective == 1 and res.optimal


def test_result_is_frozen():
    res = solve_pmedian(PlacementProblem.from_cost_matrix(np.eye(3)), 2)
    with pytest.raises(AttributeError):
        res.objective = 0.0  # type: ignore[misc]


# ------------------------------------------------------------------ distances


def test_great_circle_known_values():
    one_degree_km = EARTH_MEAN_RADIUS_KM * math.pi / 180
    assert great_circle_km(45.0, 3.0, 46.0, 3.0) == pytest.approx(one_degree_km)
    assert great_circle_km(0.0, 0.0, 0.0, 180.0) == pytest.approx(math.pi * EARTH_MEAN_RADIUS_KM)
    assert great_circle_km(10.0, 20.0, 10.0, 20.0) == 0.0


def test_distance_matrix_shape_symmetry_and_circuity():
    demand = np.array([[45.78, 3.09], [45.04, 3.88], [46.34, 2.60]])
    sites = np.array([[45.78, 3.09], [44.93, 2.44]])
    crow = distance_matrix_km(demand, sites, circuity=1.0)
    assert crow.shape == (3, 2)
    assert crow[0, 0] == 0.0
    np.testing.assert_allclose(distance_matrix_km(demand, sites), 1.3 * crow)
    np.testing.assert_allclose(distance_matrix_km(sites, demand, circuity=1.0), crow.T)
    with pytest.raises(TwinInputError, match="finite"):
        distance_matrix_km([[np.nan, 3.0]], sites)
    with pytest.raises(TwinInputError, match="latitude"):
        distance_matrix_km([[95.0, 3.0]], sites)
    with pytest.raises(TwinInputError, match="circuity"):
        distance_matrix_km(demand, sites, circuity=0.9)
    with pytest.raises(TwinInputError, match="shape"):
        distance_matrix_km(np.zeros(3), sites)


def test_road_graph_distances():
    g = nx.Graph()
    g.add_edge("a", "b", length_km=2.0)
    g.add_edge("b", "c", length_km=3.0)
    g.add_edge("a", "c", length_km=10.0)
    g.add_node("island")
    d = road_graph_distance_km(g, ["a", "b", "c", "island"], ["c", "a"])
    np.testing.assert_allclose(d[:3], [[5.0, 0.0], [3.0, 2.0], [0.0, 5.0]])
    assert np.all(np.isinf(d[3]))
    dg = nx.DiGraph()
    dg.add_edge("a", "b", length_km=1.0)
    dg.add_edge("b", "a", length_km=4.0)
    np.testing.assert_allclose(road_graph_distance_km(dg, ["a"], ["b"]), [[1.0]])  # path a -> b
    bad = nx.Graph()
    bad.add_edge("a", "b", length_km=-1.0)
    with pytest.raises(TwinInputError, match="must be >= 0"):
        road_graph_distance_km(bad, ["a"], ["b"])
    bad["a"]["b"]["length_km"] = float("nan")
    with pytest.raises(TwinInputError, match="must be >= 0"):
        road_graph_distance_km(bad, ["a"], ["b"])
    with pytest.raises(TwinInputError, match="not in the road graph"):
        road_graph_distance_km(g, ["zz"], ["a"])
    with pytest.raises(TwinInputError, match="no 'length_km'"):
        road_graph_distance_km(nx.path_graph(2), [0], [1])
