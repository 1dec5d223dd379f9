"""p-median at national scale: tens of thousands of demand points and candidate sites, no dense matrix.

A country's communes (about 35,000 in France; the GeoNames extract used by the scenarios holds about
15,000 places) against as many candidate sites is a 10^8-10^9 entry cost matrix: too large to hold, and
far too large for a MILP. :func:`solve_pmedian_sparse` works on coordinates instead:

* **Sparse candidate neighbourhoods.** Each demand point i keeps its ``k_nearest`` nearest candidates
  N_i (a k-d tree on unit vectors; great-circle distance times the circuity factor, as in
  :mod:`twin.region`) and R_i, the distance to its nearest candidate outside N_i.
* **Lagrangian lower bound** (Beasley 1993) on a relaxation valid for the full problem: i is served
  either by an open site of N_i at c_ij or by a dummy at R_i (every site outside N_i is at least that
  far). Relaxing the assignment constraints with multipliers lambda_i gives
  L(lambda) = sum_i lambda_i + sum_i min(0, w_i R_i - lambda_i) + (sum of the p smallest rho_j),
  rho_j = sum_{i: j in N_i} min(0, w_i c_ij - lambda_i), a lower bound for every lambda, improved by
  subgradient steps (Held, Wolfe & Crowder 1974 step size).
* **Primal solutions**: each relaxed solution S is evaluated exactly (every demand point to its nearest
  open site, a k-d tree over S, not only N_i), and the best is improved by locate-allocate iterations
  (Cooper 1964; Maranzana 1964): assign every point to its nearest open site, move each site to the
  candidate that minimises its cluster's weighted distance among the candidates near its members, repeat
  while the cost falls.

The result is a :class:`planners.placement.PlacementResult` with the exact objective of the returned
sites, the Lagrangian bound and the relative gap, and the wall time: never presented as optimal unless
the bound meets the objective.

References:
    J.E. Beasley, "Lagrangean heuristics for location problems", EJOR 65 (1993) 383-399.
    M. Held, P. Wolfe, H.P. Crowder, "Validation of subgradient optimization", Mathematical
    Programming 6 (1974) 62-88.
    L. Cooper, "Heuristic methods for location-allocation problems", SIAM Review 6 (1964) 37-53.
    F.E. Maranzana, "On the location of supply points to minimize transport costs", Operational
    Research Quarterly 15 (1964) 261-270.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from planners.placement import PlacementResult
from twin.errors import TwinInputError
from twin.region import EARTH_RADIUS_KM, great_circle_km

__all__ = ["SparsePMedian", "solve_pmedian_sparse"]


def _unit_vectors(latlon_deg: np.ndarray) -> np.ndarray:
    lat, lon = np.radians(latlon_deg[:, 0]), np.radians(latlon_deg[:, 1])
    return np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


def _chord_to_km(chord: np.ndarray) -> np.ndarray:
    """Great-circle km from the chord length between two unit vectors (same sphere as twin.region)."""
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0))


@dataclass(frozen=True, eq=False)
class SparsePMedian:
    """A p-median instance on coordinates with sparse candidate neighbourhoods.

    Build it with :meth:`from_coordinates` (validates). Attributes (read-only arrays):
        demand_latlon: (n, 2) demand points, degrees.
        weights: (n,) demand weights (residents), >= 0.
        site_latlon: (m, 2) candidate sites, degrees.
        circuity: road km / great-circle km.
        rows, cols, cost_km: the neighbourhood pairs (i, j in N_i) and their road km, sorted by row.
        outside_km: (n,) R_i, road km to the nearest candidate outside N_i (inf when N_i holds them all).
    """

    demand_latlon: np.ndarray
    weights: np.ndarray
    site_latlon: np.ndarray
    circuity: float
    rows: np.ndarray
    cols: np.ndarray
    cost_km: np.ndarray
    outside_km: np.ndarray

    @classmethod
    def from_coordinates(cls, demand_latlon, weights, site_latlon, circuity: float = 1.3,
                         k_nearest: int = 50) -> SparsePMedian:
        """Validate and build the neighbourhoods (k-d tree, O((n + m) log m)).

        Args:
            demand_latlon: (n, 2) (lat, lon) degrees.
            weights: (n,) finite weights >= 0.
            site_latlon: (m, 2) (lat, lon) degrees of the candidate sites.
            circuity: road / great-circle distance, >= 1.
            k_nearest: neighbourhood size (capped at m).

        Raises:
            TwinInputError: bad shapes, non-finite or out-of-range coordinates or weights, circuity < 1,
                k_nearest < 1.
        """
        d = np.array(demand_latlon, dtype=float)
        s = np.array(site_latlon, dtype=float)
        w = np.array(weights, dtype=float)
        for name, a in (("demand_latlon", d), ("site_latlon", s)):
            if a.ndim != 2 or a.shape[1] != 2 or a.shape[0] == 0:
                raise TwinInputError(f"{name}: expected a non-empty (n, 2) array of (lat, lon), got {a.shape}")
            if not np.all(np.isfinite(a)) or np.any(np.abs(a[:, 0]) > 90):
                raise TwinInputError(f"{name}: coordinates must be finite with latitudes in [-90, 90]")
        if w.shape != (d.shape[0],) or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise TwinInputError(f"weights: expected {d.shape[0]} finite values >= 0")
        if not math.isfinite(circuity) or circuity < 1:
            raise TwinInputError(f"circuity must be a finite number >= 1, got {circuity}")
        if k_nearest < 1:
            raise TwinInputError(f"k_nearest must be >= 1, got {k_nearest}")
        m = s.shape[0]
        k = min(int(k_nearest), m)
        tree = cKDTree(_unit_vectors(s))
        chord, idx = tree.query(_unit_vectors(d), k=min(k + 1, m))
        chord, idx = chord.reshape(d.shape[0], -1), idx.reshape(d.shape[0], -1)
        km = circuity * _chord_to_km(chord)
        outside = km[:, k] if k < m else np.full(d.shape[0], np.inf)
        rows = np.repeat(np.arange(d.shape[0]), k)
        arrays = (d, w, s, rows, idx[:, :k].ravel().astype(np.int64), km[:, :k].ravel(), outside)
        for a in arrays:
            a.setflags(write=False)
        return cls(d, w, s, float(circuity), *arrays[3:])

    @property
    def n_demand(self) -> int:
        return self.demand_latlon.shape[0]

    @property
    def n_candidates(self) -> int:
        return self.site_latlon.shape[0]

    def nearest(self, sites: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact assignment: for each demand point, the nearest of ``sites`` (candidate indices) and its
        road km (haversine, the twin's formula), over all of ``sites``, not only the neighbourhood."""
        sites = np.asarray(sites, dtype=np.int64)
        tree = cKDTree(_unit_vectors(self.site_latlon[sites]))
        _, pos = tree.query(_unit_vectors(self.demand_latlon), k=1)
        chosen = sites[pos]
        km = self.circuity * great_circle_km(self.demand_latlon[:, 0], self.demand_latlon[:, 1],
                                             self.site_latlon[chosen, 0], self.site_latlon[chosen, 1])
        return chosen, km

    def cost(self, sites: np.ndarray) -> float:
        """Weighted total road km sum_i w_i min_{j in sites} d_ij (residents x km)."""
        return float(self.weights @ self.nearest(sites)[1])


def _locate_allocate(problem: SparsePMedian, sites: np.ndarray, deadline: float, max_rounds: int = 50,
                     k_move: int = 30) -> tuple[np.ndarray, float, int]:
    """Cooper's alternating heuristic: allocate each point to its nearest open site, move each site to
    the best of the ``k_move`` candidates nearest to it for its cluster (sum of w_i d_ij over the
    members), while the total cost falls. Returns (sites, cost, rounds)."""
    w, circuity = problem.weights, problem.circuity
    demand_xyz = _unit_vectors(problem.demand_latlon)
    site_xyz = _unit_vectors(problem.site_latlon)
    tree = cKDTree(site_xyz)
    k = min(k_move, problem.n_candidates)
    sites = np.unique(sites)
    chosen, dist = problem.nearest(sites)
    best = float(w @ dist)
    rounds = 0
    for rounds in range(1, max_rounds + 1):
        if time.perf_counter() > deadline:
            break
        _, near = tree.query(site_xyz[sites], k=k)
        near = near.reshape(sites.size, k)  # candidates considered for each cluster (the site among them)
        pos = np.searchsorted(sites, chosen)  # cluster of each demand point
        cand = near[pos]  # (n, k)
        chord = np.linalg.norm(demand_xyz[:, None, :] - site_xyz[cand], axis=2)
        cost = np.zeros((sites.size, k))
        np.add.at(cost, pos, (w * circuity)[:, None] * _chord_to_km(chord))
        own = near == sites[:, None]
        cost[own] -= 1e-9 * np.maximum(1.0, np.abs(cost[own]))  # ties keep the current site
        pick = near[np.arange(sites.size), np.argmin(cost, axis=1)]
        _, first_pick = np.unique(pick, return_index=True)
        taken = np.zeros(pick.size, dtype=bool)
        taken[first_pick] = True
        pick = np.where(taken, pick, sites)  # two clusters chose one candidate: the later keeps its site
        new_sites = np.unique(pick)
        if new_sites.size < sites.size:
            break
        chosen_new, dist_new = problem.nearest(new_sites)
        cost_new = float(w @ dist_new)
        if not cost_new < best * (1 - 1e-12):
            break
        sites, chosen, best = new_sites, chosen_new, cost_new
    return sites, best, rounds


def _lazy_greedy(problem: SparsePMedian, p: int) -> np.ndarray:
    """Greedy add (Kuehn & Hamburger 1963) on the neighbourhoods with lazy gain updates (gains only fall
    as sites open: Minoux 1978). A point with no open site in its neighbourhood counts at R_i."""
    w, rows, cols = problem.weights, problem.rows, problem.cols
    wc = w[rows] * problem.cost_km
    far = np.where(np.isfinite(problem.outside_km), problem.outside_km, 2.0 * float(problem.cost_km.max()) + 1.0)
    d1 = w * far
    by_col = np.argsort(cols, kind="stable")
    col_start = np.searchsorted(cols[by_col], np.arange(problem.n_candidates + 1))
    gain = np.bincount(cols, weights=np.maximum(0.0, d1[rows] - wc), minlength=problem.n_candidates)
    heap = [(-float(g), int(j)) for j, g in enumerate(gain)]
    heapq.heapify(heap)
    opened: list[int] = []
    while len(opened) < p and heap:
        _, j = heapq.heappop(heap)
        pairs = by_col[col_start[j]:col_start[j + 1]]
        g = float(np.maximum(0.0, d1[rows[pairs]] - wc[pairs]).sum())
        if heap and g < -heap[0][0] - 1e-9 * max(1.0, g):
            heapq.heappush(heap, (-g, j))
            continue
        opened.append(j)
        d1[rows[pairs]] = np.minimum(d1[rows[pairs]], wc[pairs])
    return np.array(sorted(opened), dtype=np.int64)


def solve_pmedian_sparse(problem: SparsePMedian, p: int, time_limit_s: float = 300.0,
                         max_iter: int = 1500, patience: int = 40, search_every: int = 50) -> PlacementResult:
    """p-median heuristic with a Lagrangian lower bound on sparse neighbourhoods (see the module text).

    Args:
        problem: the instance (:meth:`SparsePMedian.from_coordinates`).
        p: sites to open, 1..m.
        time_limit_s: wall-clock budget, s.
        max_iter: subgradient iterations at most.
        patience: iterations without a better bound before the step factor halves (stop below 1e-3).
        search_every: every that many iterations the relaxed solution is evaluated exactly and improved
            by locate-allocate.

    Returns:
        :class:`planners.placement.PlacementResult` (model "p-median", objective in residents x road km,
        ``bound`` the Lagrangian lower bound, ``gap``, ``solve_time_s``). Its ``assignment`` gives each
        demand point's nearest chosen site over all sites.

    Raises:
        TwinInputError: p outside 1..m.
    """
    t0 = time.perf_counter()
    m, n = problem.n_candidates, problem.n_demand
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or not 1 <= p <= m:
        raise TwinInputError(f"p must be an integer in 1..{m}, got {p!r}")
    deadline = t0 + float(time_limit_s)
    w, rows, cols = problem.weights, problem.rows, problem.cols
    wc = w[rows] * problem.cost_km
    w_out = w * problem.outside_km  # inf when the neighbourhood holds every site
    # start: lambda_i = weighted distance to i's q-th nearest candidate, q = n / p (a cluster's size)
    k = problem.rows.size // n
    q = min(k - 1, math.ceil(n / p))
    lam = wc.reshape(n, k)[:, q].copy()
    best_sites, best, _ = _locate_allocate(problem, _lazy_greedy(problem, p), deadline)
    bound = -math.inf
    f, since, it = 2.0, 0, 0
    searches = 0
    for it in range(1, max_iter + 1):
        red = wc - lam[rows]
        neg = red < 0
        rho = np.bincount(cols, weights=np.where(neg, red, 0.0), minlength=m)
        S = np.argpartition(rho, p - 1)[:p] if p < m else np.arange(m)
        dummy = np.minimum(0.0, np.where(np.isfinite(w_out), w_out - lam, 0.0))
        L = float(lam.sum() + dummy.sum() + rho[S].sum())
        if L > bound + 1e-9 * max(1.0, abs(L)):
            bound, since = L, 0
        else:
            since += 1
        if it % search_every == 0:
            sites, cost, _ = _locate_allocate(problem, S, deadline)
            searches += 1
            if cost < best:
                best_sites, best = sites, cost
        if bound >= best * (1 - 1e-9) or time.perf_counter() > deadline:
            break
        if since >= patience:
            f, since = f / 2.0, 0
            if f < 1e-3:
                break
        is_open = np.zeros(m, dtype=bool)
        is_open[S] = True
        served = np.bincount(rows, weights=(neg & is_open[cols]).astype(float), minlength=n)
        served += np.isfinite(w_out) & (w_out < lam)
        g = 1.0 - served
        norm = float(g @ g)
        if norm == 0.0:
            break
        lam = np.maximum(0.0, lam + f * (best - L) / norm * g)
    sites, best_final, _ = _locate_allocate(problem, best_sites, deadline + 0.25 * time_limit_s, 100)
    if best_final <= best:
        best_sites, best = sites, best_final
    status = (f"Lagrangian bound after {it} subgradient iterations ({n:,} demand points x {m:,} candidates, "
              f"{problem.rows.size // max(n, 1)} nearest each); {searches} locate-allocate searches")
    return _sparse_result(problem, best_sites, best, bound, status, time.perf_counter() - t0)


def _sparse_result(problem: SparsePMedian, sites: np.ndarray, objective: float, bound: float, status: str,
                   solve_time_s: float) -> PlacementResult:
    bound = min(bound, objective)
    gap = max(0.0, (objective - bound) / max(abs(objective), 1e-12))
    optimal = gap <= 1e-9
    if not optimal:
        status += f"; NOT proven optimal: relative gap {gap:.3g}"
    return PlacementResult("p-median", tuple(int(s) for s in np.sort(sites)), problem.nearest(sites)[0], objective,
                           bound, gap, optimal, "sparse-lagrangian+locate-allocate", solve_time_s, status)
