"""OR-Library p-median reader: format, the duplicated-edge convention, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from planners import placement
from planners.orlib import generate_orlib_like, read_orlib_optima, read_orlib_pmedian
from planners.placement import PlacementProblem, solve_pmedian
from twin.errors import TwinInputError

DATA = Path(__file__).parent / "data" / "or-library"


def _write(tmp_path: Path, text: str, name: str = "inst.txt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_pmed1_shape_and_metric():
    inst = read_orlib_pmedian(DATA / "pmed1.txt")
    assert (inst.n_vertices, inst.p, inst.name) == (100, 5, "pmed1")
    d = inst.distances
    assert d.shape == (100, 100)
    assert np.all(np.isfinite(d))
    np.testing.assert_array_equal(d, d.T)
    np.testing.assert_array_equal(np.diag(d), 0)
    # shortest paths satisfy the triangle inequality
    k = 7
    assert np.all(d <= d[:, [k]] + d[[k], :] + 1e-9)


def test_optima_file():
    optima = read_orlib_optima(DATA / "pmedopt.txt")
    assert optima["pmed1"] == 5819 and optima["pmed2"] == 4093
    assert optima["pmed5"] == 1355 and optima["pmed10"] == 1255
    assert len(optima) == 10


def test_last_duplicated_edge_wins_tiny(tmp_path):
    path = _write(tmp_path, "3 3 1\n1 2 5\n2 3 4\n2 1 9\n")
    d = read_orlib_pmedian(path).distances
    assert d[0, 1] == 9 and d[1, 0] == 9  # the last occurrence (reversed orientation) holds
    assert d[0, 2] == 13


def _pmed1_with_min_duplicates(tmp_path) -> Path:
    """pmed1 rewritten so that every duplicated edge keeps its MINIMUM cost (the wrong convention)."""
    lines = (DATA / "pmed1.txt").read_text().split("\n")
    header, body = lines[0], [s for s in lines[1:] if s.strip()]
    best: dict[tuple[int, int], int] = {}
    for s in body:
        i, j, c = (int(f) for f in s.split())
        key = (min(i, j), max(i, j))
        best[key] = min(c, best.get(key, c))
    n, _, p = header.split()
    text = f"{n} {len(best)} {p}\n" + "".join(f"{i} {j} {c}\n" for (i, j), c in best.items())
    return _write(tmp_path, text, "pmed1_min.txt")


def test_pmed1_duplicated_edge_trap(tmp_path):
    """docs/facts.md: last-wins gives the published optimum 5819; keeping the minimum gives 5718."""
    body = [s.split() for s in (DATA / "pmed1.txt").read_text().split("\n")[1:] if s.strip()]
    keys = [tuple(sorted((int(a), int(b)))) for a, b, _ in body]
    assert len(keys) != len(set(keys)), "pmed1 is expected to contain duplicated edges"

    last = read_orlib_pmedian(DATA / "pmed1.txt")
    res = solve_pmedian(PlacementProblem.from_cost_matrix(last.distances), last.p)
    assert res.optimal and res.objective == 5819

    wrong = read_orlib_pmedian(_pmed1_with_min_duplicates(tmp_path))
    res_min = solve_pmedian(PlacementProblem.from_cost_matrix(wrong.distances), wrong.p)
    assert res_min.optimal and res_min.objective == 5718


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "empty file"),
        ("3 2\n1 2 3\n2 3 4\n", "line 1"),
        ("3 2 1\n1 2 3\n2 x 4\n", "line 3"),
        ("3 2 1\n1 2 3\n2 4 4\n", "line 3: vertex 4 out of range 1..3"),
        ("3 2 1\n0 2 3\n2 3 4\n", "line 2: vertex 0 out of range"),
        ("3 2 1\n1 2 -3\n2 3 4\n", "line 2: negative edge cost -3"),
        ("3 3 1\n1 2 3\n2 3 4\n", "announces 3 edges"),
        ("3 1 1\n1 2 3\n2 3 4\n", "line 3: unexpected line"),
        ("3 2 4\n1 2 3\n2 3 4\n", "p must be in 1..3, got 4"),
    ],
)
def test_parser_errors_name_file_line_value(tmp_path, text, fragment):
    path = _write(tmp_path, text)
    with pytest.raises(TwinInputError) as err:
        read_orlib_pmedian(path)
    assert fragment in str(err.value)
    assert str(path) in str(err.value)


def test_missing_files(tmp_path):
    with pytest.raises(TwinInputError, match="file not found"):
        read_orlib_pmedian(tmp_path / "nope.txt")
    with pytest.raises(TwinInputError, match="file not found"):
        read_orlib_optima(tmp_path / "nope.txt")


def test_optima_errors(tmp_path):
    path = _write(tmp_path, "Data file   Optimal solution value\npmed1 5819\npmed2 40x3\n")
    with pytest.raises(TwinInputError, match=r"line 3: optimal value '40x3'"):
        read_orlib_optima(path)
    path = _write(tmp_path, "header words here\npmed1 5819 extra\n", "o2.txt")
    with pytest.raises(TwinInputError, match="line 2"):
        read_orlib_optima(path)


def test_disconnected_graph_is_reported(tmp_path):
    """A p-median instance needs every vertex reachable: a disconnected graph names the pair."""
    with pytest.raises(TwinInputError, match="not connected: vertex 3 cannot be reached from vertex 1"):
        read_orlib_pmedian(_write(tmp_path, "4 2 2\n1 2 3\n3 4 0\n"))


def test_generated_instance_deterministic_connected_metric():
    a = generate_orlib_like(60, 5, seed=3)
    b = generate_orlib_like(60, 5, seed=3)
    assert (a.n_vertices, a.p, a.name) == (60, 5, "gen60-p5-s3")
    np.testing.assert_array_equal(a.distances, b.distances)
    assert np.all(np.isfinite(a.distances))
    np.testing.assert_array_equal(a.distances, a.distances.T)
    np.testing.assert_array_equal(np.diag(a.distances), 0)
    assert not np.array_equal(a.distances, generate_orlib_like(60, 5, seed=4).distances)
    with pytest.raises(TwinInputError, match="p must be in 1..60"):
        generate_orlib_like(60, 61)


@pytest.fixture(params=["branch-and-bound", "radius"])
def exact_path(request, monkeypatch):
    """Force the step of the exact method that follows the root Lagrangian: the Lagrangian branch-and-bound
    to the end, or the radius MILP (HiGHS) straight away."""
    if request.param == "branch-and-bound":
        monkeypatch.setattr(placement, "BNB_MAX_FREE", 10**9)
        monkeypatch.setattr(placement, "BNB_TIME_SHARE", 1.0)
    else:
        monkeypatch.setattr(placement, "BNB_MAX_FREE", -1)
    return request.param


@pytest.mark.parametrize("n, p", [(80, 5), (80, 20), (120, 40)])
def test_exact_method_matches_full_milp_on_generated(n, p, exact_path):
    """Both ways of closing the root gap ("auto": Lagrangian branch-and-bound, radius MILP) agree with the
    full MILP on generated instances, also with weights and fixed sites."""
    inst = generate_orlib_like(n, p, seed=n + p)
    weights = np.random.default_rng(p).integers(1, 10, n)
    for problem in (PlacementProblem.from_cost_matrix(inst.distances),
                    PlacementProblem.from_cost_matrix(inst.distances, weights, fixed_sites=(0, 7))):
        fast = solve_pmedian(problem, p)
        full = solve_pmedian(problem, p, method="milp")
        assert fast.optimal and full.optimal and fast.objective == full.objective
        assert fast.bound == fast.objective and fast.gap == 0
        assert set(problem.fixed_sites) <= set(fast.sites) and len(fast.sites) == p
        assert problem.pmedian_cost(fast.sites) == fast.objective


@pytest.mark.parametrize("n, p", [(400, 5), (400, 133), (900, 5), (900, 150)])
def test_exact_on_orlib_sized_generated(n, p):
    """OR-Library-sized instances (pmed16-40 sizes) are solved to proven optimality (bound = objective); the
    heuristic's Lagrangian bound, computed apart, stays below the optimum and its local optimum above."""
    inst = generate_orlib_like(n, p, seed=1)
    problem = PlacementProblem.from_cost_matrix(inst.distances)
    res = solve_pmedian(problem, p, time_limit_s=300)
    assert res.optimal and res.gap == 0 and res.bound == res.objective
    assert len(res.sites) == p and problem.pmedian_cost(res.sites) == res.objective
    heuristic = solve_pmedian(problem, p, method="heuristic", n_starts=1)
    assert heuristic.bound <= res.objective <= heuristic.objective


def test_branch_and_bound_stopped_reports_gap_honestly(monkeypatch):
    """A time limit inside the branch-and-bound (or before it) leaves a valid bound and an honest gap."""
    monkeypatch.setattr(placement, "BNB_MAX_FREE", 10**9)
    inst = generate_orlib_like(400, 10, seed=1)
    problem = PlacementProblem.from_cost_matrix(inst.distances)
    exact = solve_pmedian(problem, 10)
    assert exact.optimal
    cut = solve_pmedian(problem, 10, time_limit_s=0.05)
    assert cut.bound <= exact.objective <= cut.objective
    assert cut.optimal == (cut.gap == 0)
    if not cut.optimal:
        assert "NOT proven optimal" in cut.status
