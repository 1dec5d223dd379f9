"""Kiosk placement on a cost matrix: p-median, maximal covering, set covering and p-center.

A :class:`PlacementProblem` holds an (n_demand, n_candidates) cost matrix (km, or any non-negative cost),
demand weights (e.g. residents) and the candidate sites that already exist (``fixed_sites``, forced open in
every model). Each solver returns a :class:`PlacementResult` carrying the objective, a proven bound and the
relative gap: an answer is never silently suboptimal. If a time limit stops a solver, ``optimal`` is False
and ``bound``/``gap`` say how far from optimal the answer may be.

Models and sources:

* p-median (Hakimi 1964; MILP of ReVelle & Swain 1970): :func:`solve_pmedian`; exact by a Lagrangian
  relaxation with reduction tests and a Lagrangian branch-and-bound (Beasley 1993) or, where that bound
  stays flat, the radius formulation of García, Labbé & Marín (2011) on HiGHS over the sites left;
  heuristic greedy + Teitz & Bart (1968) vertex substitution with a Lagrangian relaxation lower bound
  (Beasley 1985, 1993), closed by an exact MILP (scipy.optimize.milp / HiGHS) when needed.
* maximal covering location problem, MCLP (Church & ReVelle 1974): :func:`solve_mclp`.
* location set covering problem, LSCP (Toregas, Swain, ReVelle & Bergman 1971): :func:`solve_lscp`.
* vertex p-center (Hakimi 1964, 1965): :func:`solve_pcenter`, by bisection over the distinct distances with
  a set-covering feasibility test (Minieka 1970).

References:
    S.L. Hakimi, "Optimum locations of switching centers and the absolute centers and medians of a graph",
    Operations Research 12 (1964) 450-459.
    M.B. Teitz, P. Bart, "Heuristic methods for estimating the generalized vertex median of a weighted
    graph", Operations Research 16 (1968) 955-961.
    C. ReVelle, R. Swain, "Central facilities location", Geographical Analysis 2 (1970) 30-42.
    C. Toregas, R. Swain, C. ReVelle, L. Bergman, "The location of emergency service facilities",
    Operations Research 19 (1971) 1363-1373.
    R. Church, C. ReVelle, "The maximal covering location problem", Papers of the Regional Science
    Association 32 (1974) 101-118.
    E. Minieka, "The m-center problem", SIAM Review 12 (1970) 138-139.
    J.E. Beasley, "A note on solving large p-median problems", EJOR 21 (1985) 270-273.
    J.E. Beasley, "Lagrangean heuristics for location problems", EJOR 65 (1993) 383-399.
    S. Elloumi, "A tighter formulation of the p-median problem", J. Comb. Optim. 19 (2010) 69-83.
    S. García, M. Labbé, A. Marín, "Solving large p-median problems with a radius formulation",
    INFORMS Journal on Computing 23 (2011) 546-556.
"""

from __future__ import annotations

import heapq
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import csr_matrix, hstack, identity

from twin.errors import TwinInputError

__all__ = [
    "MILP_MAX_ASSIGNMENT_VARS",
    "MODELS",
    "RADIUS_MAX_ENTRIES",
    "PlacementProblem",
    "PlacementResult",
    "solve_lscp",
    "solve_mclp",
    "solve_pcenter",
    "solve_placement",
    "solve_pmedian",
]

#: p-median "auto"/"milp": largest n_demand x n_candidates (candidates left after the Lagrangian reduction)
#: for which the exact MILP is attempted. 200 x 200 (pmed1-10) needs at most 40 000.
MILP_MAX_ASSIGNMENT_VARS = 250_000

#: p-median "auto": largest n_demand x n_candidates solved by the exact method (:func:`_pmedian_exact`:
#: Lagrangian, branch-and-bound, radius MILP); 900 x 900 (the largest OR-Library instances) is 810 000.
RADIUS_MAX_ENTRIES = 1_000_000

#: p-median "auto": the Lagrangian branch-and-bound runs to the end (within :data:`BNB_TIME_SHARE` of the
#: time left) when at most this many sites are left to choose after the root (p minus the sites proven
#: open); otherwise the radius MILP (HiGHS) takes over. Measured on generated OR-Library-like instances
#: (n = 900): the branch-and-bound proves p = 5-10 in seconds where HiGHS takes minutes; at p = 20 it is
#: faster on one seed (7 s vs 9 s) and twice slower on another (82 s vs 40 s), and from p = 50 its bound
#: stays flat (a fractional, degenerate LP) where HiGHS's cuts close the gap. A 25-node probe of the
#: branch-and-bound before HiGHS never finished on pmed1-10 nor on generated p = 20-50, and cost up to 0.8 s.
BNB_MAX_FREE = 12
BNB_TIME_SHARE = 0.8

#: The placement models by name, as the command line spells them.
MODELS = ("p-median", "mclp", "lscp", "p-center")


# --------------------------------------------------------------------------------------------------
# Problem and result
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PlacementProblem:
    """A placement instance on a cost matrix. Build it with :meth:`from_cost_matrix` (validates); a
    scenario's instance comes from :func:`planners.scenarios.placement_problem_from_scenario`, which
    calls it (this module imports only the core).

    Attributes:
        cost: (n_demand, n_candidates) float array, finite and >= 0: the cost (km) of serving demand
            point i from candidate site j. Read-only.
        weights: (n_demand,) float array, finite and >= 0: demand weight (e.g. residents). Read-only.
        fixed_sites: sorted tuple of candidate indices that already exist and are forced open.
    """

    cost: np.ndarray
    weights: np.ndarray
    fixed_sites: tuple[int, ...] = ()
    integral: bool = field(default=False, repr=False)
    """True when cost and weights are all integers: objectives are integers and bounds may be rounded up."""

    @classmethod
    def from_cost_matrix(
        cls,
        cost,
        weights=None,
        fixed_sites: Sequence[int] = (),
    ) -> PlacementProblem:
        """Validate and build a problem from a cost matrix.

        Args:
            cost: (n_demand, n_candidates) array-like of non-negative finite costs (km).
            weights: (n_demand,) non-negative finite weights; default all ones.
            fixed_sites: candidate indices (0-based) of existing sites, forced open in every model.

        Raises:
            TwinInputError: cost not 2-D or empty, NaN/inf/negative entries, weights of the wrong shape
                or NaN/inf/negative, a fixed site out of range or repeated.
        """
        try:
            c = np.array(cost, dtype=float)
        except (TypeError, ValueError) as exc:
            raise TwinInputError(f"cost matrix is not numeric: {exc}") from None
        if c.ndim != 2 or c.shape[0] == 0 or c.shape[1] == 0:
            raise TwinInputError(
                f"cost matrix must be 2-D (n_demand, n_candidates) with n, m >= 1, got shape {c.shape}"
            )
        _check_finite_nonneg("cost", c)
        n, m = c.shape
        if weights is None:
            w = np.ones(n)
        else:
            try:
                w = np.array(weights, dtype=float)
            except (TypeError, ValueError) as exc:
                raise TwinInputError(f"weights are not numeric: {exc}") from None
            if w.shape != (n,):
                raise TwinInputError(f"weights must have shape ({n},) to match the cost matrix, got {w.shape}")
            _check_finite_nonneg("weights", w)
        fixed: list[int] = []
        for s in fixed_sites:
            if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
                raise TwinInputError(f"fixed site {s!r} is not an integer candidate index")
            if not 0 <= int(s) < m:
                raise TwinInputError(f"fixed site {s} out of range: candidates are 0..{m - 1}")
            if int(s) in fixed:
                raise TwinInputError(f"fixed site {s} listed twice")
            fixed.append(int(s))
        c.setflags(write=False)
        w.setflags(write=False)
        integral = bool(np.all(c == np.round(c)) and np.all(w == np.round(w)))
        return cls(cost=c, weights=w, fixed_sites=tuple(sorted(fixed)), integral=integral)

    @property
    def n_demand(self) -> int:
        """Number of demand points n (rows of ``cost``)."""
        return self.cost.shape[0]

    @property
    def n_candidates(self) -> int:
        """Number of candidate sites m (columns of ``cost``)."""
        return self.cost.shape[1]

    def check_p(self, p: int) -> int:
        """Validate a number of sites to open (fixed sites included): ``len(fixed_sites) <= p <= m``.

        Raises:
            TwinInputError: p not an integer, p > n_candidates, p < number of fixed sites, or p < 1.
        """
        if isinstance(p, bool) or not isinstance(p, (int, np.integer)):
            raise TwinInputError(f"p must be an integer number of sites, got {p!r}")
        p = int(p)
        if p < 1:
            raise TwinInputError(f"p must be >= 1, got {p}")
        if p > self.n_candidates:
            raise TwinInputError(f"p = {p} exceeds the number of candidate sites ({self.n_candidates})")
        if p < len(self.fixed_sites):
            raise TwinInputError(
                f"p = {p} is smaller than the number of fixed (existing) sites ({len(self.fixed_sites)}); "
                "p counts the existing sites too"
            )
        return p

    def assignment(self, sites: Sequence[int]) -> np.ndarray:
        """(n_demand,) int array: for each demand point, the chosen site (candidate index) of least cost.

        All -1 when ``sites`` is empty (an LSCP where no demand point needs covering).
        """
        s = np.asarray(sorted(sites), dtype=np.int64)
        if s.size == 0:
            return np.full(self.n_demand, -1, dtype=np.int64)
        return s[np.argmin(self.cost[:, s], axis=1)]

    def pmedian_cost(self, sites: Sequence[int]) -> float:
        """Weighted total cost sum_i w_i min_{j in sites} c_ij of a non-empty set of candidate indices
        (cost unit x weight unit, e.g. km x residents)."""
        s = np.asarray(list(sites), dtype=np.int64)
        return float(self.weights @ self.cost[:, s].min(axis=1))

    def coverage(self, sites: Sequence[int], radius_km: float) -> float:
        """Total weight of the demand points within ``radius_km`` (the cost matrix's unit) of at least one
        of ``sites`` (a non-empty set of candidate indices)."""
        s = np.asarray(list(sites), dtype=np.int64)
        covered = (self.cost[:, s] <= radius_km).any(axis=1)
        return float(self.weights[covered].sum())

    def max_cost(self, sites: Sequence[int]) -> float:
        """p-center objective: max over demand points of positive weight of min_{j in sites} c_ij (the cost
        matrix's unit; 0 when no weight is positive)."""
        s = np.asarray(list(sites), dtype=np.int64)
        active = self.weights > 0
        if not active.any():
            return 0.0
        return float(self.cost[active][:, s].min(axis=1).max())


def _check_finite_nonneg(name: str, a: np.ndarray) -> None:
    bad = ~np.isfinite(a)
    if bad.any():
        idx = tuple(int(k) for k in np.argwhere(bad)[0])
        raise TwinInputError(f"{name}{list(idx)} = {a[idx]}: entries must be finite (no NaN or inf)")
    neg = a < 0
    if neg.any():
        idx = tuple(int(k) for k in np.argwhere(neg)[0])
        raise TwinInputError(f"{name}{list(idx)} = {a[idx]}: entries must be >= 0")


def _check_radius(radius_km: float) -> float:
    try:
        r = float(radius_km)
    except (TypeError, ValueError):
        raise TwinInputError(f"radius_km must be a number, got {radius_km!r}") from None
    if not math.isfinite(r) or r < 0:
        raise TwinInputError(f"radius_km must be finite and >= 0, got {radius_km!r}")
    return r


@dataclass(frozen=True, eq=False)
class PlacementResult:
    """The outcome of a placement solve.

    Attributes:
        model: ``"p-median"``, ``"mclp"``, ``"lscp"`` or ``"p-center"``.
        sites: sorted tuple of the chosen candidate indices (fixed sites included).
        assignment: (n_demand,) int array, for each demand point the chosen site of least cost (for
            MCLP a demand point counts as covered only if that cost is within the radius; -1 everywhere
            if no site is chosen).
        objective: value of the returned solution: weighted total cost (p-median), covered weight (MCLP,
            maximised), number of sites (LSCP), largest cost to a positive-weight demand point (p-center).
        bound: proven bound on the optimum: a LOWER bound for the minimisation models (p-median, LSCP,
            p-center) and an UPPER bound for MCLP (maximisation). Equal to ``objective`` when proven optimal.
        gap: relative gap |objective - bound| / max(|objective|, 1e-12), >= 0 (0 when optimal).
        optimal: True only when optimality is proven: gap exactly 0 on integral data (integer costs and
            weights, bounds rounded), otherwise a relative gap within the MILP tolerance ``mip_rel_gap``
            (default 1e-7). ``status`` says why it is not.
        method: how it was solved, e.g. ``"milp-highs"``, ``"vertex-substitution+lagrangian"``.
        solve_time_s: wall-clock time of the solve, s.
        status: human-readable status text (solver message, time limit reached, ...).
    """

    model: str
    sites: tuple[int, ...]
    assignment: np.ndarray
    objective: float
    bound: float
    gap: float
    optimal: bool
    method: str
    solve_time_s: float
    status: str

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}")


def _rel_gap(objective: float, bound: float) -> float:
    return max(0.0, abs(objective - bound) / max(abs(objective), 1e-12))


# --------------------------------------------------------------------------------------------------
# MILP helper
# --------------------------------------------------------------------------------------------------


@dataclass
class _MilpOutcome:
    x: np.ndarray | None
    objective: float  # in the minimisation sense passed to milp
    bound: float  # dual bound, minimisation sense
    proven: bool
    status: str
    infeasible: bool = False


#: HiGHS options for the radius MILP (HiGHS 1.12, as vendored by scipy; passed verbatim by
#: scipy.optimize.milp). The caller already holds a near-optimal incumbent (vertex substitution, Lagrangian
#: heuristic, LP rounding) that milp cannot take, so HiGHS's primal heuristics (sub-MIPs above all) only
#: re-find it: on generated n = 900 instances they took 60-70 % of the time; and its reliability strong
#: branching then took most of the rest (the bound of this model moves little per branch), so pseudo-costs
#: are trusted from the start. Measured on generated n = 900, p = 20 and 50: 15-18 s -> 4-5 s in HiGHS
#: (35-51 nodes instead of 7-16, each much cheaper).
RADIUS_MILP_HIGHS_OPTIONS = {
    "mip_heuristic_effort": 0.0,
    "mip_heuristic_run_rins": False,
    "mip_heuristic_run_rens": False,
    "mip_heuristic_run_root_reduced_cost": False,
    "mip_heuristic_run_feasibility_jump": False,
    "mip_heuristic_run_shifting": False,
    "mip_heuristic_run_zi_round": False,
    "mip_pscost_minreliable": 0,
}


def _run_milp(c, constraints, integrality, bounds, time_limit_s: float, mip_rel_gap: float,
              highs_options: dict | None = None) -> _MilpOutcome:
    """scipy.optimize.milp (HiGHS) with a time limit, a relative gap and ``highs_options`` passed to HiGHS
    verbatim (scipy warns that it does; the warning is silenced here). A HiGHS that lacks one of them
    (scipy's own HiGHS rejects unknown names) solves without them."""
    options = {"time_limit": max(float(time_limit_s), 0.1), "mip_rel_gap": mip_rel_gap, "presolve": True}
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Unrecognized options detected")
            res = milp(c=c, constraints=constraints, integrality=integrality, bounds=bounds,
                       options=options | (highs_options or {}))
    except AttributeError:  # an option this HiGHS does not know
        res = milp(c=c, constraints=constraints, integrality=integrality, bounds=bounds, options=options)
    if res.x is None:
        if res.status == 2:  # proven infeasible
            return _MilpOutcome(None, math.inf, math.inf, True, f"HiGHS: infeasible ({res.message})", True)
        return _MilpOutcome(None, math.inf, -math.inf, False, f"HiGHS status {res.status}: {res.message}")
    obj = float(res.fun)
    bound = getattr(res, "mip_dual_bound", None)
    bound = obj if bound is None or not np.isfinite(bound) else float(bound)
    proven = res.status == 0
    return _MilpOutcome(res.x, obj, min(bound, obj), proven, f"HiGHS status {res.status}: {res.message}")


def _finish_min(integral: bool, objective: float, bound: float, tol: float = 1e-9) -> tuple[float, float, bool]:
    """Close a minimisation: round the lower bound up on integral data; return (bound, gap, optimal).

    ``optimal`` means the relative gap is within ``tol`` (exactly 0 on integral data once the rounded
    bound meets the objective).
    """
    if integral and np.isfinite(bound):
        bound = float(math.ceil(bound - min(0.5, 1e-6 * max(1.0, abs(bound)))))
    bound = min(bound, objective)
    gap = _rel_gap(objective, bound)
    return bound, gap, gap <= tol


# --------------------------------------------------------------------------------------------------
# p-median
# --------------------------------------------------------------------------------------------------


def _nearest_two(D: np.ndarray, sites: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For weighted costs D (n x m) and open sites: d1, index (into D columns) of nearest, d2."""
    sub = D[:, sites]
    if sites.size == 1:
        return sub[:, 0].copy(), np.full(D.shape[0], sites[0]), np.full(D.shape[0], np.inf)
    rows = np.arange(D.shape[0])
    first = np.argmin(sub, axis=1)
    d1 = sub[rows, first]
    sub[rows, first] = np.inf  # sub is a copy (fancy indexing)
    return d1, sites[first], sub.min(axis=1)


def _greedy(D: np.ndarray, p: int, fixed: np.ndarray) -> np.ndarray:
    """Greedy add (Kuehn & Hamburger 1963) from the fixed sites to p sites."""
    m = D.shape[1]
    is_open = np.zeros(m, dtype=bool)
    is_open[fixed] = True
    if fixed.size:
        d1 = D[:, fixed].min(axis=1)
    else:
        j = int(np.argmin(D.sum(axis=0)))
        is_open[j] = True
        d1 = D[:, j].copy()
    while is_open.sum() < p:
        gain = np.minimum(D, d1[:, None]).sum(axis=0)
        gain[is_open] = np.inf
        j = int(np.argmin(gain))
        is_open[j] = True
        d1 = np.minimum(d1, D[:, j])
    return np.flatnonzero(is_open)


def _vertex_substitution(D: np.ndarray, sites: np.ndarray, fixed_mask: np.ndarray) -> tuple[np.ndarray, float]:
    """Best-improvement swap local search (Teitz & Bart 1968) with vectorised swap evaluation.

    For open set S with nearest weighted cost d1, nearest site c1 and second nearest d2, the change of
    total cost when site r in S is swapped for closed candidate i is

        delta(i, r) = sum_j [min(D_ji, d1_j) - d1_j] + sum_{j: c1_j = r} [min(D_ji, d2_j) - min(D_ji, d1_j)]

    (Whitaker 1983; Resende & Werneck 2004), evaluated for all (i, r) pairs with one sparse-times-dense
    product (the clients of each open site summed), O(n m) per swap.
    """
    n, m = D.shape
    sites = np.array(sorted(sites), dtype=np.int64)
    p = sites.size
    if p == m or p == int(fixed_mask.sum()):
        return sites, float(D[:, sites].min(axis=1).sum())
    while True:
        d1, c1, d2 = _nearest_two(D, sites)
        m1 = np.minimum(D, d1[:, None])
        gain = (m1 - d1[:, None]).sum(axis=0)  # (m,) <= 0
        B = np.minimum(D, d2[:, None]) - m1  # (n, m) >= 0
        pos = np.searchsorted(sites, c1)
        # sum of B over each open site's clients: a sparse one-hot (p x n, n entries) times B, O(n m)
        onehot = csr_matrix((np.ones(n), np.argsort(pos, kind="stable"), np.r_[0, np.cumsum(np.bincount(pos, minlength=p))]),
                            shape=(p, n))
        delta = gain[None, :] + onehot @ B  # (p, m)
        delta[:, sites] = np.inf  # cannot insert an open site
        delta[fixed_mask[sites], :] = np.inf  # cannot remove a fixed site
        k = int(np.argmin(delta))
        r_pos, i = divmod(k, m)
        current = float(d1.sum())
        if not delta[r_pos, i] < -1e-9 * max(1.0, abs(current)):
            return sites, current
        sites = np.sort(np.concatenate([np.delete(sites, r_pos), [i]]))


class _SortedRows:
    """The rows of a weighted cost matrix D (n x m), sorted once, so that the Lagrangian's
    rho_j = sum_i min(0, D_ij - lambda_i) sums only the entries below lambda_i: the sites nearer than a
    point's multiplier, about m / p per row near the optimum, instead of all n x m."""

    def __init__(self, D: np.ndarray) -> None:
        self.idx = np.argsort(D, axis=1, kind="stable")
        self.val = np.take_along_axis(D, self.idx, axis=1)
        self.width = min(D.shape[1], 8)  # leading columns read; every entry below lambda lies within them

    def rho(self, lam: np.ndarray) -> np.ndarray:
        """(m,) rho at the multipliers ``lam`` (n,)."""
        m = self.val.shape[1]
        while True:
            v = self.val[:, : self.width]
            below = v < lam[:, None]
            if self.width == m or not below[:, -1].any():
                break
            self.width = min(m, 2 * self.width)
        if self.width > 8 and not below[:, self.width // 4].any():  # far fewer needed: read less next time
            self.width //= 2
        return np.bincount(self.idx[:, : v.shape[1]][below], weights=(v - lam[:, None])[below], minlength=m)


@dataclass
class _Lagrangian:
    bound: float  # lower bound on every solution better than the incumbent (min(bound, best_cost) is global)
    best_sites: np.ndarray
    best_cost: float
    closed: np.ndarray  # bool (m,): proven closed in every solution better than the incumbent
    opened: np.ndarray  # bool (m,): proven open in every solution better than the incumbent (fixed included)
    iterations: int
    proven: bool  # no solution better than the incumbent exists
    lam: np.ndarray  # (n,) the multipliers of the best bound


# long: one subgradient iteration (relaxed bound, primal check, reduction tests, step) on shared loop state
def _lagrangian(
    D: np.ndarray,
    p: int,
    fixed_mask: np.ndarray,
    ub_sites: np.ndarray,
    ub: float,
    integral: bool,
    deadline: float,
    max_iter: int = 3000,
    patience: int = 30,
    f_min: float = 1e-3,
) -> _Lagrangian:
    """Lagrangian relaxation of the assignment constraints with subgradient optimisation (Beasley 1993).

    Relaxing sum_j x_ij = 1 with multipliers lambda_i gives
    L(lambda) = sum_i lambda_i + min_{|S| = p, S >= forced} sum_{j in S} rho_j,
    rho_j = sum_i min(0, D_ij - lambda_i), a lower bound for every lambda. Each relaxed solution S is also
    evaluated as a primal solution, improved by vertex substitution at each step-size halving
    (Lagrangian heuristic). Reduction tests (Beasley 1993): forcing a site into (out of) S raises L; if the
    raised bound cannot beat the incumbent the site is closed (open) in every better solution. Closed
    sites leave the relaxation (its columns are dropped) and open ones are forced into S, so later bounds,
    tests and iterations are those of the reduced problem: valid for every solution better than the
    incumbent, which is all an exact method needs (Beasley 1993). The step size factor ``f`` starts at 2
    and halves, back at the best multipliers, after ``patience`` iterations without a better bound. Each
    rho is summed over the entries below lambda only, the rows sorted once (:class:`_SortedRows`).
    """
    m = D.shape[1]
    closed = np.zeros(m, dtype=bool)
    opened = fixed_mask.copy()
    best_sites, best_cost = np.sort(np.asarray(ub_sites, dtype=np.int64)), float(ub)
    better = _improvement_threshold(best_cost, integral)
    cols = np.arange(m)  # the columns of Dk: sites not closed when Dk was last built
    Dk, row_min = D, D.min(axis=1)
    rows = _SortedRows(D)  # the rows of Dk sorted
    lam = D[:, best_sites].min(axis=1) + 1e-3  # start from the incumbent's assignment costs
    best_lam = lam.copy()
    best_bound = -math.inf
    f, since, it, proven, search = 2.0, 0, 0, False, False
    searched: set[tuple[int, ...]] = set()
    for it in range(1, max_iter + 1):
        live = ~closed[cols]
        if live.sum() < 0.8 * cols.size:  # rebuild the reduced matrix once a fifth of its columns closed
            cols = cols[live]
            Dk, live = np.ascontiguousarray(D[:, cols]), np.ones(cols.size, dtype=bool)
            rows, row_min = _SortedRows(Dk), Dk.min(axis=1)
        lam = np.maximum(lam, row_min)  # lambda_i below every D_ij only lowers L
        rho = rows.rho(lam)  # (k,)
        forced = np.flatnonzero(opened[cols])
        free = np.flatnonzero(live & ~opened[cols])
        n_need = p - forced.size
        order = free[np.argsort(rho[free], kind="stable")]
        S_pos = np.concatenate([forced, order[:n_need]])
        L = float(lam.sum() + rho[S_pos].sum())
        S = cols[S_pos]
        cost_S = float(Dk[:, S_pos].min(axis=1).sum())
        key = tuple(sorted(S.tolist()))
        if search and key not in searched:  # local search among the sites not closed
            searched.add(key)
            S_ls, cost_ls = _vertex_substitution(Dk[:, live], np.searchsorted(cols[live], S), fixed_mask[cols[live]])
            if cost_ls < cost_S:
                S, cost_S = cols[live][S_ls], cost_ls
        if cost_S < best_cost:
            best_sites, best_cost = np.sort(S), cost_S
            better = _improvement_threshold(best_cost, integral)
        if L > best_bound + 1e-9 * max(1.0, abs(L)):
            best_bound, best_lam, since = L, lam.copy(), 0
        else:
            since += 1
        if 0 < n_need < free.size:  # reduction tests: swap the last in / first out with every other site
            chosen = order[:n_need]
            last_in, first_out = rho[order[n_need - 1]], rho[order[n_need]]
            out = order[n_need:]
            closed[cols[out[L - last_in + rho[out] >= better]]] = True
            opened[cols[chosen[L - rho[chosen] + first_out >= better]]] = True
        # no better solution is left once the tests conflict or leave one choice (S itself, evaluated)
        proven = (
            bool((closed & opened).any()) or int(opened.sum()) > p or int((~closed).sum()) < p
            or n_need <= 0 or n_need >= free.size or _bound_proves(best_bound, best_cost, integral)
        )
        if proven or time.perf_counter() > deadline:
            break
        search = False
        if since >= patience:
            f, since, lam, search = f / 2.0, 0, best_lam.copy(), True
            if f < f_min:
                break
            continue
        g = 1.0 - (Dk[:, S_pos] < lam[:, None]).sum(axis=1)  # subgradient: 1 - open sites assigned to i
        norm = float(g @ g)
        if norm == 0.0:  # the relaxed solution is feasible and costs L: no better solution exists
            proven = True
            break
        lam = lam + (f * (best_cost - L) / norm) * g
    bound = best_cost if proven else best_bound
    return _Lagrangian(bound, best_sites, best_cost, closed, opened, it, proven, best_lam)


@dataclass
class _Node:
    """A node of the Lagrangian branch-and-bound: sites forced open / closed (columns of the reduced matrix)
    and the multipliers to start from, its parent's, with its parent's bound (a bound of the node too)."""

    bound: float
    forced: np.ndarray  # bool (k,)
    excluded: np.ndarray  # bool (k,)
    lam: np.ndarray  # (n,)


@dataclass
class _NodeProblem:
    """A node's problem in reduced form (columns of the branch-and-bound's matrix ``Dk``).

    The sites forced open act as one always-open site at cost ``cap_i = min_{j forced} D_ij``: the node
    chooses ``n_need`` of its free sites (neither forced nor excluded) with costs ``min(D_ij, cap_i)``.
    Rows that no free site serves below ``cap_i`` cost ``cap_i`` in every solution of the node: they leave
    the matrix (their sum is ``const``). The Lagrangian of this form equals the node's with the forced
    sites as columns once lambda_i <= cap_i, which never lowers it (beyond cap_i, raising lambda_i adds to
    sum lambda what it takes from the forced site's rho), so lambda is kept in [row_min_i, cap_i].
    """

    forced: np.ndarray  # columns of Dk forced open
    cols: np.ndarray  # free columns of Dk
    rows: np.ndarray  # rows kept
    M: np.ndarray  # (rows, cols) min(D, cap)
    cap: np.ndarray  # (rows,) cost of the forced sites (inf if none)
    row_min: np.ndarray  # (rows,) cheapest free cost
    const: float  # cost of the rows left out
    n_need: int  # free sites to choose

    @classmethod
    def build(cls, Dk: np.ndarray, p: int, forced: np.ndarray, excluded: np.ndarray) -> _NodeProblem:
        """From the masks (k,) of the columns forced open and excluded."""
        fc, cols = np.flatnonzero(forced), np.flatnonzero(~forced & ~excluded)
        cap = Dk[:, fc].min(axis=1) if fc.size else np.full(Dk.shape[0], np.inf)
        sub = np.take(Dk, cols, axis=1)
        keep = (sub.min(axis=1) < cap) if cols.size else np.zeros(Dk.shape[0], dtype=bool)
        rows = np.flatnonzero(keep)
        M = np.minimum(sub[rows], cap[rows, None])
        row_min = M.min(axis=1) if cols.size else np.zeros(0)
        return cls(fc, cols, rows, M, cap[rows], row_min, float(cap[~keep].sum()), p - fc.size)

    def shrink(self, shut: np.ndarray, fix: np.ndarray) -> tuple[_NodeProblem, np.ndarray, np.ndarray]:
        """The problem with the free positions ``shut`` excluded and ``fix`` forced open, cut from this one
        (rows left out stay out: no free site serves them below their cap, which forcing cannot lower):
        (problem, rows kept, positions kept) as masks over this problem's rows and positions."""
        keep = np.ones(self.cols.size, dtype=bool)
        keep[shut] = False
        keep[fix] = False
        cap = np.minimum(self.cap, self.M[:, fix].min(axis=1)) if fix.size else self.cap
        M = self.M[:, keep]
        free_min = M.min(axis=1) if M.shape[1] else np.full(cap.size, np.inf)
        stay = free_min < cap
        M = np.minimum(M[stay], cap[stay, None]) if fix.size else M[stay]
        out = _NodeProblem(np.concatenate([self.forced, self.cols[fix]]), self.cols[keep], self.rows[stay], M,
                           cap[stay], free_min[stay], self.const + float(cap[~stay].sum()), self.n_need - fix.size)
        return out, stay, keep

    def cost(self, S: np.ndarray) -> float:
        """Cost of the forced sites plus the free ones at positions ``S`` of ``cols``."""
        return self.const + float(self.M[:, S].min(axis=1).sum() if S.size else self.cap.sum())

    def sites(self, S: np.ndarray) -> np.ndarray:
        return np.sort(np.concatenate([self.forced, self.cols[S]]))

    def settled(self, inc: list) -> bool:
        """True when the node holds no solution, or a single one (then offered to the incumbent ``inc``)."""
        if self.n_need < 0 or self.n_need > self.cols.size:
            return True
        if 0 < self.n_need < self.cols.size:
            return False
        S = np.arange(self.n_need)
        if self.cost(S) < inc[1]:
            inc[0], inc[1] = self.sites(S), self.cost(S)
        return True


def _relaxed(npb: _NodeProblem, lam: np.ndarray, buf: np.ndarray):
    """The Lagrangian relaxation of the node at multipliers ``lam`` (rows kept; ``buf`` scratch of M's
    shape): (L, rho (cols,), free positions by increasing rho)."""
    np.subtract(npb.M, lam[:, None], out=buf)
    rho = np.minimum(buf, 0.0, out=buf).sum(axis=0)
    order = np.argsort(rho, kind="stable")
    return npb.const + float(lam.sum() + rho[order[: npb.n_need]].sum()), rho, order


# long: the node's subgradient loop (relaxed bound, primal check, reduction tests, step) on shared state
def _lagrangian_node(Dk: np.ndarray, p: int, node: _Node, inc: list, integral: bool,
                     max_iter: int = 100, patience: int = 8, f: float = 1.0, f_min: float = 0.01):
    """Subgradient optimisation at one node of the branch-and-bound, with the node's reduction tests.

    Works on the node's reduced problem (:class:`_NodeProblem`: free columns only, rows the forced sites
    do not settle), rebuilt whenever the tests force or exclude more sites, so deep nodes iterate on a
    fraction of ``Dk``. ``inc`` is the incumbent ``[sites as columns of Dk or None, cost]``, improved in
    place by the relaxed solutions. Returns None when the node is pruned (its bound reaches the incumbent,
    the tests leave no solution or only one, or the relaxed solution is feasible, hence optimal in the
    node), else (bound, multipliers, column of Dk to branch on) with ``node.forced`` / ``node.excluded``
    extended by the tests (valid in the node's subtree).
    """
    npb = _NodeProblem.build(Dk, p, node.forced, node.excluded)
    lam_all = node.lam.copy()
    lam = lam_all[npb.rows]
    best_L, best_lam, since = -math.inf, lam, 0
    seen = np.zeros(npb.cols.size)  # how often each site is in the relaxed solution: a proxy for its LP y_j
    buf = np.empty_like(npb.M)
    for _ in range(max_iter):
        if npb.settled(inc):
            return None
        lam = np.minimum(np.maximum(lam, npb.row_min), npb.cap)
        L, rho, order = _relaxed(npb, lam, buf)
        n_need = npb.n_need
        S = order[:n_need]
        seen[S] += 1.0
        MS = npb.M[:, S]
        cost_S = npb.const + float(MS.min(axis=1).sum())
        if cost_S < inc[1]:
            inc[0], inc[1] = npb.sites(S), cost_S
        if _bound_proves(L, inc[1], integral):
            return None
        better = _improvement_threshold(inc[1], integral)
        out = order[n_need:]
        shut = out[L - rho[order[n_need - 1]] + rho[out] >= better]
        fix = S[L - rho[S] + rho[order[n_need]] >= better]
        if shut.size or fix.size:  # the node's problem shrinks: rebuild it, multipliers carried over
            node.excluded[npb.cols[shut]] = True
            node.forced[npb.cols[fix]] = True
            npb, stay, keep = npb.shrink(shut, fix)
            lam, seen, buf = lam[stay], seen[keep], np.empty_like(npb.M)
            best_L, since = -math.inf, 0
            continue
        if L > best_L:
            best_L, best_lam, since = L, lam, 0
        else:
            since += 1
            if since >= patience:
                f, since, lam = f / 2.0, 0, best_lam
                if f < f_min:
                    break
                continue
        g = 1.0 - (MS < lam[:, None]).sum(axis=1)  # subgradient: 1 - open sites assigned to i
        g[(g > 0) & (lam >= npb.cap)] = 0.0  # lambda_i cannot rise above cap_i
        norm = float(g @ g)
        if norm == 0.0:  # the relaxed solution is feasible (and costs L): optimal in the node
            return None
        lam = lam + (f * (inc[1] - L) / norm) * g
    if npb.settled(inc):  # the last tests left at most one solution
        return None
    lam = best_lam if best_L > -math.inf else np.minimum(np.maximum(lam, npb.row_min), npb.cap)
    L, rho, order = _relaxed(npb, lam, buf)
    lam_all[npb.rows] = lam
    # branch on the free site most often in and out of the relaxed solutions (the most fractional), else
    # on the free site of S with the smallest rho
    y = seen / max(seen.max(), 1.0)
    frac = np.flatnonzero((y > 0) & (y < 1))
    if frac.size:
        return L, lam_all, int(npb.cols[frac[np.argmin(np.abs(y[frac] - 0.5))]])
    free_S = order[: npb.n_need]
    return L, lam_all, int(npb.cols[free_S[np.argmin(rho[free_S])]])


@dataclass
class _BranchAndBound:
    best_sites: np.ndarray | None  # columns of the reduced matrix; None if the incumbent was not improved
    best_cost: float
    bound: float  # lower bound on every solution of the reduced problem better than the incumbent
    nodes: int
    complete: bool  # every node pruned: no better solution exists


def _lagrangian_bnb(Dk: np.ndarray, p: int, forced: np.ndarray, lam: np.ndarray, bound: float, best_cost: float,
                    integral: bool, deadline: float, max_nodes: int | None = None) -> _BranchAndBound:
    """Branch-and-bound on the Lagrangian relaxation (Beasley 1993) over the columns of ``Dk`` (the sites
    the root's reduction tests left, ``forced`` those proven open), best bound first. Each node runs
    :func:`_lagrangian_node` on its reduced problem (:class:`_NodeProblem`) from its parent's multipliers
    and branches on the free site most often in and
    out of the node's relaxed solutions (the most fractional, a proxy for the LP's y_j), else on the free
    site of the relaxed solution with the smallest rho: open in one child, closed in the other. Stops at ``deadline``
    (perf_counter) or after ``max_nodes`` nodes."""
    inc: list = [None, float(best_cost)]
    heap = [(bound, 0, _Node(bound, forced.copy(), np.zeros(Dk.shape[1], dtype=bool), lam))]
    count, nodes = 1, 0
    while heap:
        if _bound_proves(heap[0][0], inc[1], integral):
            heap.clear()
            break
        if time.perf_counter() > deadline or (max_nodes is not None and nodes >= max_nodes):
            break
        _, _, node = heapq.heappop(heap)
        nodes += 1
        res = _lagrangian_node(Dk, p, node, inc, integral)
        if res is None:
            continue
        L, lam_node, j = res
        L = max(L, node.bound)
        if _bound_proves(L, inc[1], integral):
            continue
        site_open = _Node(L, node.forced.copy(), node.excluded.copy(), lam_node)
        site_open.forced[j] = True
        site_closed = _Node(L, node.forced, node.excluded, lam_node)
        site_closed.excluded[j] = True
        for child in (site_open, site_closed):
            heapq.heappush(heap, (L, count, child))
            count += 1
    low = min(heap[0][0], inc[1]) if heap else inc[1]
    return _BranchAndBound(inc[0], inc[1], low, nodes, not heap)


def _improvement_threshold(ub: float, integral: bool) -> float:
    """Largest cost of a solution better than the incumbent's ``ub`` (one unit less on integral data)."""
    return ub - 1.0 + 1e-6 if integral else ub * (1 - 1e-12)


def _bound_proves(bound: float, ub: float, integral: bool) -> bool:
    """True when the lower bound (rounded up on integral data) reaches the incumbent's cost ``ub``."""
    return (math.ceil(bound - 1e-6 * max(1.0, abs(bound))) if integral else bound) >= ub * (1 - 1e-12)


def _pmedian_milp(
    problem: PlacementProblem,
    p: int,
    open_allowed: np.ndarray,
    forced_open: np.ndarray,
    time_limit_s: float,
    mip_rel_gap: float,
) -> _MilpOutcome | None:
    """Exact p-median MILP in the "radius" formulation of Elloumi (2010), solved by HiGHS.

    For demand point i let D_i^1 < D_i^2 < ... < D_i^K be the distinct costs to the allowed candidates and
    z_i^k (continuous, >= 0) indicate "no open site within D_i^k" (Cornuejols, Nemhauser & Wolsey 1980;
    S. Elloumi, "A tighter formulation of the p-median problem", J. Comb. Optim. 19 (2010) 69-83)::

        min  sum_i w_i (D_i^1 + sum_k (D_i^{k+1} - D_i^k) z_i^k)
        s.t. z_i^k + sum_{j: c_ij <= D_i^k} y_j >= 1      for every i, k
             sum_j y_j = p;  y_j in {0, 1};  y_j = 1 forced open, y_j = 0 outside ``open_allowed``.

    Written in the equivalent sparse chained form z_i^1 + sum_{c_ij = D_i^1} y_j >= 1 and
    z_i^k - z_i^{k-1} + sum_{c_ij = D_i^k} y_j >= 0 (same LP relaxation, O(n m) non-zeros). Levels whose
    ball holds more than m - p candidates are dropped (one of them is always open: Elloumi 2010).
    The MILP is usually much faster than the classical x_ij <= y_j model (ReVelle & Swain 1970) for the
    same LP bound. Returns None if n x (allowed candidates) exceeds :data:`MILP_MAX_ASSIGNMENT_VARS`;
    otherwise the outcome's ``x`` holds the chosen candidate indices.
    """
    cand = np.flatnonzero(open_allowed)
    n, k = problem.n_demand, cand.size
    if n * k > MILP_MAX_ASSIGNMENT_VARS:
        return None
    C = problem.cost[:, cand]
    w = problem.weights
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    obj_z: list[np.ndarray] = []
    rhs: list[np.ndarray] = []
    const = 0.0
    n_rows = 0
    n_z = 0
    for i in range(n):
        if w[i] == 0:
            continue
        order = np.argsort(C[i], kind="stable")
        d = C[i, order]
        uniq, start = np.unique(d, return_index=True)
        const += w[i] * uniq[0]
        # levels 0..L-1 kept: ball {c <= uniq[lev]} holds start[lev + 1] <= k - p candidates
        L = int(np.searchsorted(start[1:], k - p, side="right"))
        if L == 0:
            continue
        lev = np.arange(L)
        r = n_rows + lev
        z = k + n_z + lev
        counts = np.diff(start[: L + 1])
        ys = order[: start[L]]
        rows += [r, r[1:], np.repeat(r, counts)]
        cols += [z, z[:-1], ys]
        vals += [np.ones(L), -np.ones(L - 1), np.ones(ys.size)]
        obj_z.append(w[i] * np.diff(uniq)[:L])
        rhs.append(np.where(lev == 0, 1.0, 0.0))
        n_rows += L
        n_z += L
    n_var = k + n_z
    c = np.concatenate([np.zeros(k)] + obj_z)
    constraints = [LinearConstraint(csr_matrix(np.concatenate([np.ones(k), np.zeros(n_z)])[None, :]), p, p)]
    if n_rows:
        A = csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_rows, n_var)
        )
        constraints.insert(0, LinearConstraint(A, np.concatenate(rhs), np.inf))
    lb = np.zeros(n_var)
    lb[:k][forced_open[cand]] = 1.0
    ub = np.concatenate([np.ones(k), np.full(n_z, np.inf)])
    integrality = np.concatenate([np.ones(k), np.zeros(n_z)])
    out = _run_milp(c, constraints, integrality, Bounds(lb, ub), time_limit_s, mip_rel_gap)
    out.objective += const
    out.bound += const
    if out.x is not None:
        out.x = cand[np.flatnonzero(out.x[:k] > 0.5)]
    return out


# --------------------------------------------------------------------------------------------------
# p-median, exact: the radius formulation with row generation and reduced-cost fixing
# --------------------------------------------------------------------------------------------------


class _RadiusLevels:
    """The levels of the radius formulation on a cost matrix restricted to some candidates.

    For demand point i, ``uniq[i]`` holds the sorted distinct costs D_i^0 < D_i^1 < ... to the candidates
    and ``order[i]`` the candidates by increasing cost (``start[i][k]`` = number of candidates strictly
    closer than D_i^k). ``lmax[i]`` is the number of useful levels: a level whose ball holds more than
    ``k - p`` candidates always contains an open site (Elloumi 2010), so it needs no variable.
    """

    def __init__(self, cost: np.ndarray, weights: np.ndarray, p: int) -> None:
        n, k = cost.shape
        self.cost, self.weights = cost, weights
        self.order = np.argsort(cost, axis=1, kind="stable")
        sorted_cost = np.take_along_axis(cost, self.order, axis=1)
        self.uniq: list[np.ndarray] = []
        self.start: list[np.ndarray] = []
        self.lmax = np.zeros(n, dtype=np.int64)
        for i in range(n):
            u, s = np.unique(sorted_cost[i], return_index=True)
            self.uniq.append(u)
            self.start.append(s)
            if weights[i] > 0:
                self.lmax[i] = int(np.searchsorted(s[1:], k - p, side="right"))
        self.const = float(sum(weights[i] * self.uniq[i][0] for i in range(n)))

    def levels_for(self, dist: np.ndarray) -> np.ndarray:
        """(n,) number of levels that count a distance ``dist[i]`` exactly (at most ``lmax``)."""
        q = np.array([int(np.searchsorted(u, d)) for u, d in zip(self.uniq, dist)], dtype=np.int64)
        return np.minimum(q, self.lmax)

    def reach(self, levels: np.ndarray) -> np.ndarray:
        """(n,) the largest cost counted exactly with ``levels[i]`` levels: D_i^{levels[i]}."""
        return np.array([u[min(int(lv), u.size - 1)] for u, lv in zip(self.uniq, levels)])

    def matrices(self, levels: np.ndarray) -> tuple[csr_matrix, np.ndarray, np.ndarray, np.ndarray]:
        """The truncated model with ``levels[i]`` variables z_i^0..z_i^{L-1} per demand point, in the
        chained form z_i^0 + sum_{c_ij = D_i^0} y_j >= 1, z_i^l - z_i^{l-1} + sum_{c_ij = D_i^l} y_j >= 0.

        Returns (A over [y, z], objective c over [y, z], row lower bounds, index of each point's first z
        among the z variables). Dropping levels beyond ``levels[i]`` counts a farther site at D_i^L: the
        truncated model is a relaxation, exact for every solution that serves i within D_i^L.
        """
        k = self.cost.shape[1]
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        obj: list[np.ndarray] = [np.zeros(k)]
        rhs: list[np.ndarray] = []
        first = np.zeros(levels.size, dtype=np.int64)
        n_z = 0
        for i, L in enumerate(levels.tolist()):
            first[i] = n_z
            if L == 0:
                continue
            lev = np.arange(L)
            r = n_z + lev
            counts = np.diff(self.start[i][: L + 1])
            ys = self.order[i, : self.start[i][L]]
            rows += [r, r[1:], np.repeat(r, counts)]
            cols += [k + r, k + r[:-1], ys]
            vals += [np.ones(L), -np.ones(L - 1), np.ones(ys.size)]
            obj.append(self.weights[i] * np.diff(self.uniq[i])[:L])
            rhs.append(np.where(lev == 0, 1.0, 0.0))
            n_z += L
        if n_z == 0:
            return csr_matrix((0, k)), np.zeros(k), np.zeros(0), first
        A = csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_z, k + n_z))
        return A, np.concatenate(obj), np.concatenate(rhs), first


@dataclass
class _RadiusOutcome:
    sites: np.ndarray  # candidate indices of the best solution found
    objective: float
    bound: float  # proven lower bound (minimisation)
    status: str


def _pmedian_radius(
    problem: PlacementProblem,
    p: int,
    fixed_mask: np.ndarray,
    ub_sites: np.ndarray,
    deadline: float,
    mip_rel_gap: float,
) -> _RadiusOutcome:
    """Exact p-median by the radius formulation (García, Labbé & Marín 2011; Elloumi 2010) with HiGHS.

    1. Row generation on the LP relaxation: each demand point starts with the levels that count its cost
       in the incumbent ``ub_sites`` exactly; a point whose last level variable is positive in the LP
       optimum gets more levels (doubled), until none does: the LP bound of the full model.
    2. Reduced-cost fixing: a site whose LP reduced cost lifts the bound beyond the incumbent is closed
       in every better solution (at its upper bound: open). The levels are rebuilt on the sites left,
       which merges the levels that only closed sites separated.
    3. The MILP on the truncated model (a relaxation), re-solved with the levels its solution needs until
       that solution is counted exactly (then it is optimal) or its bound reaches the incumbent.

    Every bound returned is valid for the full problem: the truncated models are relaxations, and a bound
    of a model restricted by the fixing holds for the solutions better than the incumbent.
    """
    C, w = problem.cost, problem.weights
    m = C.shape[1]
    best_sites = np.sort(np.asarray(ub_sites, dtype=np.int64))
    best = problem.pmedian_cost(best_sites)
    better = _improvement_threshold(best, problem.integral)
    lv = _RadiusLevels(C, w, p)
    levels = np.maximum(np.minimum(lv.lmax, 1), lv.levels_for(C[:, best_sites].min(axis=1)))
    res, bound, n_lp = _radius_lp_rowgen(lv, levels, fixed_mask, p, deadline)
    status = f"radius LP bound after {n_lp} row-generation rounds"
    if res is not None:  # LP rounding: the p largest y (fixed sites first), then vertex substitution
        sites_ls = _round_lp(w[:, None] * C, res.x[:m], p, fixed_mask)
        if problem.pmedian_cost(sites_ls) < best:
            best_sites, best = sites_ls, problem.pmedian_cost(sites_ls)
            better = _improvement_threshold(best, problem.integral)
            status += "; LP rounding improved the incumbent"
    if _bound_proves(bound, best, problem.integral) or res is None or time.perf_counter() >= deadline:
        return _radius_outcome(problem, best_sites, best, bound, status)
    reduced = np.asarray(res.lower.marginals[:m])
    closed = (bound + reduced > better) & ~fixed_mask
    opened = (bound - np.asarray(res.upper.marginals[:m]) > better) | fixed_mask
    if int(opened.sum()) > p or m - int(closed.sum()) < p or (closed & opened).any():
        return _RadiusOutcome(best_sites, best, best, status + "; reduced-cost fixing proves the incumbent")
    keep = np.flatnonzero(~closed)
    status += f"; reduced-cost fixing keeps {keep.size} of {m} sites ({int(opened.sum())} open)"
    reach = lv.reach(levels)
    lv = _RadiusLevels(C[:, keep], w, p)
    levels = lv.levels_for(reach)
    k = keep.size
    n_milp = 0
    while time.perf_counter() < deadline:
        A, c, rhs, _ = lv.matrices(levels)
        out = _radius_milp(A, c, rhs, opened[keep].astype(float), p, deadline, mip_rel_gap)
        n_milp += 1
        if out.x is None:
            status += f"; MILP {n_milp}: {out.status}"
            if out.proven:  # infeasible: no solution better than the incumbent
                bound = best
            break
        sites = keep[np.flatnonzero(out.x[:k] > 0.5)]
        dist = C[:, sites].min(axis=1)
        cost = float(w @ dist)
        if cost < best:
            best_sites, best = np.sort(sites), cost
        bound = max(bound, min(out.bound + lv.const, best))
        short = lv.levels_for(dist) > levels
        if _bound_proves(bound, best, problem.integral) or not short.any():
            break
        levels = np.maximum(levels, lv.levels_for(dist))
    status += f"; {n_milp} MILP round(s) (HiGHS)"
    return _radius_outcome(problem, best_sites, best, bound, status)


def _radius_lp_rowgen(lv: _RadiusLevels, levels: np.ndarray, fixed_mask: np.ndarray, p: int, deadline: float):
    """Row generation on the LP relaxation: a demand point whose last level variable is positive at the
    LP optimum gets its levels doubled (``levels`` is updated in place), until none is. Returns the last
    LP result (None if none was solved in time), the best LP bound and the number of LPs."""
    m = fixed_mask.size
    y_lb = fixed_mask.astype(float)
    bound, n_lp = lv.const, 0  # every point served by its nearest candidate: a lower bound
    res = None
    while time.perf_counter() < deadline:
        A, c, rhs, first = lv.matrices(levels)
        res = _radius_lp(A, c, rhs, y_lb, np.ones(m), p, deadline)
        n_lp += 1
        if res is None:
            break
        bound = max(bound, float(res.fun) + lv.const)
        last = np.where(levels > 0, res.x[m + first + levels - 1], 0.0) if levels.size else levels
        grow = (last > 1e-9) & (levels < lv.lmax)
        if not grow.any():
            break
        levels[grow] = np.minimum(lv.lmax[grow], np.maximum(2 * levels[grow], levels[grow] + 4))
    return res, bound, n_lp


def _round_lp(D: np.ndarray, y: np.ndarray, p: int, fixed_mask: np.ndarray) -> np.ndarray:
    """The fixed sites and the free sites of largest LP value y_j up to p, improved by vertex
    substitution on the weighted costs D: sorted site indices."""
    free = np.flatnonzero(~fixed_mask)
    top = free[np.argsort(-y[free], kind="stable")[: p - int(fixed_mask.sum())]]
    sites, _ = _vertex_substitution(D, np.concatenate([np.flatnonzero(fixed_mask), top]), fixed_mask)
    return np.sort(sites)


def _radius_outcome(problem: PlacementProblem, sites: np.ndarray, objective: float, bound: float,
                    status: str) -> _RadiusOutcome:
    """The outcome, with the bound set to the objective when it proves it (relative 1e-12, or rounded up
    on integral data): a proven optimum reports gap 0, not a rounding residue."""
    if _bound_proves(bound, objective, problem.integral):
        bound = objective
    return _RadiusOutcome(sites, objective, min(bound, objective), status)


def _radius_lp(A, c, rhs, y_lb, y_ub, p, deadline):
    """LP relaxation of the truncated radius model (HiGHS dual simplex); None if not solved in time."""
    m = y_lb.size
    n_z = A.shape[0]
    a_p = csr_matrix(np.concatenate([np.ones(m), np.zeros(n_z)])[None, :])
    bounds = np.column_stack([np.concatenate([y_lb, np.zeros(n_z)]), np.concatenate([y_ub, np.full(n_z, np.inf)])])
    remaining = deadline - time.perf_counter()
    if remaining <= 0.05:
        return None
    res = linprog(c, A_ub=-A if n_z else None, b_ub=-rhs if n_z else None, A_eq=a_p, b_eq=[p], bounds=bounds,
                  method="highs", options={"time_limit": remaining})
    return res if res.status == 0 else None


def _radius_milp(A, c, rhs, y_lb, p, deadline, mip_rel_gap) -> _MilpOutcome:
    """The truncated radius model as a MILP (y binary, z continuous), objective without its constant."""
    m = y_lb.size
    n_z = A.shape[0]
    constraints = [LinearConstraint(csr_matrix(np.concatenate([np.ones(m), np.zeros(n_z)])[None, :]), p, p)]
    if n_z:
        constraints.insert(0, LinearConstraint(A, rhs, np.inf))
    bounds = Bounds(np.concatenate([y_lb, np.zeros(n_z)]), np.concatenate([np.ones(m), np.full(n_z, np.inf)]))
    integrality = np.concatenate([np.ones(m), np.zeros(n_z)])
    return _run_milp(c, constraints, integrality, bounds, deadline - time.perf_counter(), mip_rel_gap,
                     RADIUS_MILP_HIGHS_OPTIONS)


# long: the method dispatch (heuristic, Lagrangian, branch-and-bound, radius MILP) with its documented arguments
def solve_pmedian(
    problem: PlacementProblem,
    p: int,
    time_limit_s: float = 60.0,
    method: str = "auto",
    seed: int | np.random.Generator | None = 0,
    n_starts: int = 4,
    mip_rel_gap: float = 1e-7,
) -> PlacementResult:
    """p-median: open p sites minimising the weighted total cost sum_i w_i min_{j in S} c_ij.

    Formulation (Hakimi 1964; ReVelle & Swain 1970)::

        min  sum_i sum_j w_i c_ij x_ij
        s.t. sum_j x_ij = 1        for every demand point i
             x_ij <= y_j            for every i, j
             sum_j y_j = p;  y_j = 1 for fixed sites;  y_j in {0, 1}, x_ij >= 0.

    Methods:
        ``"heuristic"``: greedy add then Teitz & Bart (1968) vertex substitution (best-improvement swaps,
        vectorised delta evaluation) from the greedy solution and ``n_starts - 1`` random starts, plus a
        Lagrangian relaxation of the assignment constraints optimised by subgradient (Beasley 1985,
        1993) giving a certified lower bound and a gap.
        ``"milp"``: the MILP above with scipy.optimize.milp (HiGHS) on the full candidate set.
        ``"auto"`` (default): up to :data:`RADIUS_MAX_ENTRIES` cost entries (n x m), exact
        (:func:`_pmedian_exact`): greedy + vertex substitution; a Lagrangian relaxation with Beasley's
        (1993) reduction tests, which proves large p outright; else a branch-and-bound on the Lagrangian
        over the sites left when few are left to choose (small p); else the radius formulation (García,
        Labbé & Marín 2011) on those sites: row generation on its LP relaxation, LP rounding, reduced-cost
        fixing, then the truncated MILP on HiGHS with the levels its solution needs
        (:func:`_pmedian_radius`). Larger instances: heuristic + Lagrangian; if the gap is not closed, the MILP restricted by the
        Lagrangian reduction tests (sites proven closed/open) closes it, time and size permitting
        (at most :data:`MILP_MAX_ASSIGNMENT_VARS` assignment variables). Otherwise the heuristic answer
        is returned with its honest gap.

    Args:
        problem: the instance.
        p: number of sites to open, fixed sites included.
        time_limit_s: overall wall-clock budget, s (the MILP gets what is left). On expiry the best
            solution is returned with ``optimal=False`` and its bound and gap.
        method: ``"auto"``, ``"heuristic"`` or ``"milp"``.
        seed: seed or numpy Generator for the random restarts of the local search.
        n_starts: number of local-search starts (the first is greedy).
        mip_rel_gap: relative gap at which HiGHS stops. On integral data the bound is rounded up, so
            any tolerance below 1/objective proves exact optimality.

    Returns:
        :class:`PlacementResult` with ``model="p-median"``; ``bound`` is a lower bound.

    Raises:
        TwinInputError: invalid p (see :meth:`PlacementProblem.check_p`) or unknown method.
    """
    t0 = time.perf_counter()
    p = problem.check_p(p)
    if method not in ("auto", "heuristic", "milp"):
        raise TwinInputError(f"unknown p-median method {method!r}: use 'auto', 'heuristic' or 'milp'")
    deadline = t0 + float(time_limit_s)
    fixed_mask = np.zeros(problem.n_candidates, dtype=bool)
    fixed_mask[list(problem.fixed_sites)] = True
    if method == "milp":
        return _pmedian_by_milp(problem, p, fixed_mask, time_limit_s, mip_rel_gap, t0)

    D = problem.weights[:, None] * problem.cost
    if method == "auto" and problem.n_demand * problem.n_candidates <= RADIUS_MAX_ENTRIES:
        return _pmedian_exact(problem, p, fixed_mask, D, deadline, mip_rel_gap, t0)
    best_sites, best = _multistart_local_search(D, p, fixed_mask, seed, n_starts, deadline)
    lr = _lagrangian(D, p, fixed_mask, best_sites, best, problem.integral, deadline)
    if lr.best_cost < best:
        best_sites = lr.best_sites
    obj = problem.pmedian_cost(best_sites)
    bound, gap, optimal = _finish_min(problem.integral, obj, lr.bound)
    inc = _Incumbent(best_sites, obj, bound, gap, optimal, "vertex-substitution+lagrangian",
                     f"Lagrangian bound after {lr.iterations} subgradient iterations")
    if not inc.optimal and method == "auto":
        _close_with_reduced_milp(problem, p, fixed_mask, lr, inc, deadline, mip_rel_gap)
    if not inc.optimal:
        inc.status += f"; NOT proven optimal: relative gap {inc.gap:.3g}"
    sites = tuple(int(s) for s in sorted(inc.sites))
    return PlacementResult(
        "p-median", sites, problem.assignment(sites), inc.objective, inc.bound, inc.gap, inc.optimal, inc.method,
        time.perf_counter() - t0, inc.status,
    )


def _pmedian_exact(problem: PlacementProblem, p: int, fixed_mask: np.ndarray, D: np.ndarray, deadline: float,
                   mip_rel_gap: float, t0: float) -> PlacementResult:
    """``method="auto"`` within :data:`RADIUS_MAX_ENTRIES`; ``t0`` is the solve's start.

    1. Greedy + vertex substitution: the incumbent.
    2. Lagrangian relaxation at the root (:func:`_lagrangian`): subgradient bound, Lagrangian heuristic and
       Beasley's reduction tests, which open or close every site when the bound meets the incumbent (large
       p: the incumbent is then proven optimal) and close most sites when p is small.
    3. Branch-and-bound on the Lagrangian (:func:`_lagrangian_bnb`) over the sites left, for at most
       :data:`BNB_TIME_SHARE` of the time left, when at most :data:`BNB_MAX_FREE` sites are left to
       choose (it proves small p fast; from p = 20 a fractional, degenerate LP leaves its bounds flat).
    4. If still open, the radius method (:func:`_pmedian_radius`) on the sites the root left (and the
       incumbent's), with the sites proven open and in the incumbent forced in: a sub-problem that holds
       the incumbent and every better solution, so its bound is a bound of the whole problem.
    """
    fixed = np.flatnonzero(fixed_mask)
    sites, ub = _vertex_substitution(D, _greedy(D, p, fixed), fixed_mask)
    lr = _lagrangian(D, p, fixed_mask, sites, ub, problem.integral, deadline)
    best_sites = lr.best_sites
    obj = problem.pmedian_cost(best_sites)
    status = f"Lagrangian bound after {lr.iterations} subgradient iterations"
    bound, method = (obj if lr.proven else min(lr.bound, obj)), "lagrangian"
    if lr.proven:
        status += "; bound and reduction tests prove the incumbent optimal"
    else:
        cols = np.flatnonzero(~lr.closed)
        status += f"; reduction tests keep {cols.size} of {problem.n_candidates} sites"
        complete = False
        if p - int(lr.opened.sum()) <= BNB_MAX_FREE:
            now = time.perf_counter()
            bb = _lagrangian_bnb(np.ascontiguousarray(D[:, cols]), p, lr.opened[cols], lr.lam, lr.bound, obj,
                                 problem.integral, now + BNB_TIME_SHARE * max(deadline - now, 0.0))
            if bb.best_sites is not None:
                best_sites = cols[bb.best_sites]
                obj = problem.pmedian_cost(best_sites)
            method, complete = "lagrangian-branch-and-bound", bb.complete
            status += f"; branch-and-bound: {bb.nodes} nodes" + ("" if complete else " (stopped)")
            bound = obj if complete else max(bound, min(bb.bound, obj))
        if not complete:
            out = _radius_on_residual(problem, p, lr, best_sites, deadline, mip_rel_gap)
            status += "; " + out.status
            if out.objective < obj:
                best_sites, obj = out.sites, problem.pmedian_cost(out.sites)
            bound, method = max(bound, out.bound), "lagrangian+radius-rowgen+milp-highs"
    bound, gap, optimal = _finish_min(problem.integral, obj, bound, max(mip_rel_gap, 1e-9))
    status += "" if optimal else f"; NOT proven optimal: relative gap {gap:.3g}"
    sites_t = tuple(int(s) for s in sorted(best_sites))
    return PlacementResult(
        "p-median", sites_t, problem.assignment(sites_t), obj, bound, gap, optimal, method,
        time.perf_counter() - t0, status,
    )


def _radius_on_residual(problem: PlacementProblem, p: int, lr: _Lagrangian, best_sites: np.ndarray, deadline: float,
                        mip_rel_gap: float) -> _RadiusOutcome:
    """The radius method on the sites the Lagrangian reduction tests left plus the incumbent ``best_sites``,
    with the sites proven open that the incumbent holds forced in. The sub-problem holds the incumbent and
    every better solution, so its bound (``bound`` of the outcome, at most the incumbent's cost) is a bound
    of the whole problem. The outcome's ``sites`` are candidate indices of ``problem``."""
    in_best = np.zeros(problem.n_candidates, dtype=bool)
    in_best[best_sites] = True
    cols = np.flatnonzero(~lr.closed | in_best)
    forced = np.flatnonzero((lr.opened & in_best)[cols])
    sub = PlacementProblem.from_cost_matrix(problem.cost[:, cols], problem.weights, fixed_sites=forced.tolist())
    out = _pmedian_radius(sub, p, np.isin(np.arange(cols.size), forced), np.searchsorted(cols, best_sites),
                          deadline, mip_rel_gap)
    out.sites = cols[out.sites]
    out.status = f"radius method on {cols.size} sites: " + out.status
    return out


def _pmedian_by_milp(
    problem: PlacementProblem, p: int, fixed_mask: np.ndarray, time_limit_s: float, mip_rel_gap: float, t0: float
) -> PlacementResult:
    """``method="milp"``: the exact MILP on every candidate (:func:`_pmedian_milp`); ``t0`` is the solve's
    start (perf_counter) for ``solve_time_s``."""
    m = problem.n_candidates
    out = _pmedian_milp(problem, p, np.ones(m, dtype=bool), fixed_mask, time_limit_s, mip_rel_gap)
    if out is None:
        raise TwinInputError(
            f"p-median MILP too large ({problem.n_demand} x {m} assignment variables > "
            f"{MILP_MAX_ASSIGNMENT_VARS}); use method='auto' or 'heuristic'"
        )
    if out.x is None:
        raise TwinInputError(f"p-median MILP found no solution within {time_limit_s} s ({out.status})")
    sites = tuple(int(s) for s in out.x)
    obj = problem.pmedian_cost(sites)
    bound, gap, optimal = _finish_min(problem.integral, obj, out.bound, mip_rel_gap)
    return PlacementResult(
        "p-median", sites, problem.assignment(sites), obj, bound, gap, optimal, "milp-highs",
        time.perf_counter() - t0, out.status,
    )


def _multistart_local_search(
    D: np.ndarray, p: int, fixed_mask: np.ndarray, seed, n_starts: int, deadline: float
) -> tuple[np.ndarray, float]:
    """Vertex substitution from the greedy solution, then from ``n_starts - 1`` random starts (fixed sites
    always in, free sites drawn with ``numpy.random.default_rng(seed)``) while ``deadline`` (perf_counter)
    is not passed: the best local optimum and its weighted cost."""
    rng = np.random.default_rng(seed)
    fixed = np.flatnonzero(fixed_mask)
    best_sites, best = _vertex_substitution(D, _greedy(D, p, fixed), fixed_mask)
    free_idx = np.flatnonzero(~fixed_mask)
    for _ in range(max(0, n_starts - 1)):
        if time.perf_counter() > deadline:
            break
        start = np.concatenate([fixed, rng.choice(free_idx, size=p - fixed.size, replace=False)])
        s, c = _vertex_substitution(D, start, fixed_mask)
        if c < best - 1e-9 * max(1.0, best):
            best_sites, best = s, c
    return best_sites, best


@dataclass
class _Incumbent:
    """The p-median answer being built: sites, their objective, the proven bound, gap and status text."""

    sites: np.ndarray
    objective: float
    bound: float
    gap: float
    optimal: bool
    method: str
    status: str


def _close_with_reduced_milp(
    problem: PlacementProblem,
    p: int,
    fixed_mask: np.ndarray,
    lr: _Lagrangian,
    inc: _Incumbent,
    deadline: float,
    mip_rel_gap: float,
) -> None:
    """``method="auto"``: close the gap the Lagrangian bound left with the MILP restricted by the reduction
    tests (sites proven closed left out, sites proven open forced in), time and size permitting.
    Updates ``inc`` (sites, objective, bound, gap, optimal, method, status) in place."""
    allowed = ~lr.closed | fixed_mask
    forced = lr.opened | fixed_mask
    remaining = deadline - time.perf_counter()
    if (lr.closed & lr.opened).any() or forced.sum() > p or allowed.sum() < p:
        # the reduction tests leave no room for a better solution: the incumbent is optimal
        inc.bound, inc.gap, inc.optimal = _finish_min(problem.integral, inc.objective, inc.objective)
        inc.status += "; Lagrangian reduction tests prove the incumbent optimal"
        return
    out = _pmedian_milp(problem, p, allowed, forced, remaining, mip_rel_gap) if remaining > 0.1 else None
    if out is None:
        inc.status += (
            "; MILP not attempted (" + ("no time left" if remaining <= 0.1 else
            f"more than {MILP_MAX_ASSIGNMENT_VARS} assignment variables after reduction") + ")"
        )
        return
    inc.method = "vertex-substitution+lagrangian+milp-highs"
    inc.status += f"; reduced MILP on {int(allowed.sum())} of {problem.n_candidates} candidates: {out.status}"
    if out.x is not None:
        cand_obj = problem.pmedian_cost(out.x)
        if cand_obj < inc.objective:
            inc.sites, inc.objective = out.x, cand_obj
    # the MILP's bound is valid for solutions better than the incumbent; the incumbent covers the rest
    # (a proven-infeasible reduced MILP means no better solution exists)
    milp_bound = out.bound if out.x is not None or out.proven else -math.inf
    inc.bound, inc.gap, inc.optimal = _finish_min(
        problem.integral, inc.objective, max(inc.bound, min(milp_bound, inc.objective)), max(mip_rel_gap, 1e-9)
    )

# --------------------------------------------------------------------------------------------------
# Covering models
# --------------------------------------------------------------------------------------------------


def _coverage_matrix(problem: PlacementProblem, radius_km: float) -> csr_matrix:
    return csr_matrix(problem.cost <= radius_km, dtype=float)


def solve_mclp(
    problem: PlacementProblem,
    p: int,
    radius_km: float,
    time_limit_s: float = 60.0,
    mip_rel_gap: float = 1e-7,
) -> PlacementResult:
    """Maximal covering location problem (Church & ReVelle 1974): p sites covering the most weight.

    Demand point i is covered when some open site j has c_ij <= radius_km (N_i = such sites)::

        max  sum_i w_i z_i
        s.t. z_i <= sum_{j in N_i} y_j    for every i
             sum_j y_j = p;  y_j = 1 for fixed sites;  y_j in {0, 1},  0 <= z_i <= 1.

    Solved with scipy.optimize.milp (HiGHS); z is continuous (integral at the optimum once y is).

    Args:
        problem: the instance; p counts the fixed sites.
        p: number of sites to open.
        radius_km: coverage radius (same unit as the cost matrix).
        time_limit_s: HiGHS time limit, s.
        mip_rel_gap: HiGHS relative gap tolerance.

    Returns:
        :class:`PlacementResult` with ``model="mclp"``, ``objective`` = covered weight and ``bound`` =
        the MILP's proven UPPER bound on the covered weight.

    Raises:
        TwinInputError: invalid p or radius; no solution found within the time limit.
    """
    t0 = time.perf_counter()
    p = problem.check_p(p)
    r = _check_radius(radius_km)
    n, m = problem.n_demand, problem.n_candidates
    A = _coverage_matrix(problem, r)  # (n, m)

    # variables: y (m), z (n); constraint z_i - sum_j a_ij y_j <= 0
    A_cov = hstack([-A, identity(n, format="csr")], format="csr")
    A_p = csr_matrix(np.concatenate([np.ones(m), np.zeros(n)])[None, :])
    c = np.concatenate([np.zeros(m), -problem.weights])
    lb = np.zeros(m + n)
    lb[list(problem.fixed_sites)] = 1.0
    integrality = np.concatenate([np.ones(m), np.zeros(n)])
    out = _run_milp(
        c,
        [LinearConstraint(A_cov, -np.inf, 0), LinearConstraint(A_p, p, p)],
        integrality,
        Bounds(lb, np.ones(m + n)),
        time_limit_s,
        mip_rel_gap,
    )
    if out.x is None:
        raise TwinInputError(f"MCLP found no solution within {time_limit_s} s ({out.status})")
    sites = tuple(int(j) for j in np.flatnonzero(out.x[:m] > 0.5))
    obj = problem.coverage(sites, r)
    bound = -out.bound
    if problem.integral and np.isfinite(bound):
        bound = float(math.floor(bound + min(0.5, 1e-6 * max(1.0, abs(bound)))))
    bound = max(bound, obj)
    gap = _rel_gap(obj, bound)
    optimal = gap <= max(mip_rel_gap, 1e-9)
    status = out.status + ("" if optimal else f"; NOT proven optimal: relative gap {gap:.3g}")
    return PlacementResult(
        "mclp", sites, problem.assignment(sites), obj, bound, gap, optimal, "milp-highs",
        time.perf_counter() - t0, status,
    )


def _lscp_milp(
    problem: PlacementProblem,
    covers: np.ndarray,
    time_limit_s: float,
    mip_rel_gap: float,
    max_sites: int | None = None,
) -> _MilpOutcome:
    """min sum_j y_j  s.t. sum_{j in N_i} y_j >= 1 for every required i; fixed y_j = 1; y binary.

    With ``max_sites`` it is a pure feasibility problem (zero objective, sum_j y_j <= max_sites): HiGHS
    stops at the first cover found, or proves infeasibility (``infeasible=True``).
    """
    m = problem.n_candidates
    lb = np.zeros(m)
    lb[list(problem.fixed_sites)] = 1.0
    constraints = [LinearConstraint(csr_matrix(covers, dtype=float), 1, np.inf)] if covers.shape[0] else []
    c = np.ones(m)
    if max_sites is not None:
        constraints.append(LinearConstraint(csr_matrix(np.ones((1, m))), 0, max_sites))
        c = np.zeros(m)
    out = _run_milp(c, constraints, np.ones(m), Bounds(lb, np.ones(m)), time_limit_s, mip_rel_gap)
    if out.x is not None:
        out.x = np.flatnonzero(out.x > 0.5)
    return out


def _required_rows(problem: PlacementProblem) -> np.ndarray:
    return np.flatnonzero(problem.weights > 0)


def solve_lscp(
    problem: PlacementProblem,
    radius_km: float,
    time_limit_s: float = 60.0,
    mip_rel_gap: float = 1e-7,
) -> PlacementResult:
    """Location set covering problem (Toregas et al. 1971): fewest sites covering every demand point.

    Every demand point of positive weight must have an open site within ``radius_km``::

        min  sum_j y_j
        s.t. sum_{j in N_i} y_j >= 1   for every i with w_i > 0,  N_i = {j : c_ij <= radius_km}
             y_j = 1 for fixed sites;  y_j in {0, 1}.

    Solved with scipy.optimize.milp (HiGHS). Demand points of zero weight impose no constraint.

    Returns:
        :class:`PlacementResult` with ``model="lscp"``, ``objective`` = number of sites (fixed included),
        ``bound`` = proven lower bound on that number.

    Raises:
        TwinInputError: invalid radius; a positive-weight demand point with no candidate within the
            radius (the message lists them and the smallest radius that would work); no solution found
            within the time limit.
    """
    t0 = time.perf_counter()
    r = _check_radius(radius_km)
    rows = _required_rows(problem)
    covers = problem.cost[rows] <= r
    uncoverable = rows[~covers.any(axis=1)]
    if uncoverable.size:
        need = float(problem.cost[rows].min(axis=1).max())
        shown = ", ".join(str(int(i)) for i in uncoverable[:10]) + (" ..." if uncoverable.size > 10 else "")
        raise TwinInputError(
            f"LSCP infeasible: {uncoverable.size} demand point(s) have no candidate site within "
            f"radius_km={r:g} (demand indices {shown}); the smallest radius covering every demand point "
            f"is {need:g}"
        )
    out = _lscp_milp(problem, covers, time_limit_s, mip_rel_gap)
    if out.x is None:
        raise TwinInputError(f"LSCP found no solution within {time_limit_s} s ({out.status})")
    sites = tuple(int(j) for j in out.x)
    obj = float(len(sites))
    bound, gap, optimal = _finish_min(True, obj, out.bound)  # a number of sites is an integer
    status = out.status + ("" if optimal else f"; NOT proven optimal: relative gap {gap:.3g}")
    return PlacementResult(
        "lscp", sites, problem.assignment(sites), obj, bound, gap, optimal, "milp-highs",
        time.perf_counter() - t0, status,
    )


def solve_pcenter(
    problem: PlacementProblem,
    p: int,
    time_limit_s: float = 60.0,
) -> PlacementResult:
    """Vertex p-center (Hakimi 1964): p sites minimising the largest cost to a demand point.

    Objective: max over demand points with w_i > 0 of min_{j in S} c_ij (weights only select which
    points count; they do not scale the costs). The optimum is one of the distinct entries of the cost
    matrix, so it is found by bisection over them (Minieka 1970; Daskin 1995 ch. 5): radius r is
    feasible iff the set-covering constraints of :func:`solve_lscp` (fixed sites forced open) admit a
    cover with at most p sites, each test an exact HiGHS feasibility MILP. The covering set found at the
    optimal radius is padded to exactly p sites greedily by p-median cost (a tie-break that cannot raise
    the maximum).

    Args:
        problem: the instance; p counts the fixed sites.
        p: number of sites to open.
        time_limit_s: wall-clock budget of the bisection, s.

    Returns:
        :class:`PlacementResult` with ``model="p-center"``; ``bound`` is a lower bound on the optimal
        radius (equal to ``objective`` unless the time limit cut the bisection short).

    Raises:
        TwinInputError: invalid p.
    """
    t0 = time.perf_counter()
    p = problem.check_p(p)
    deadline = t0 + float(time_limit_s)
    rows = _required_rows(problem)
    fixed = np.array(problem.fixed_sites, dtype=np.int64)
    D = problem.weights[:, None] * problem.cost
    if rows.size == 0:
        sites = _greedy(D, p, fixed)
        sites_t = tuple(int(s) for s in sites)
        return PlacementResult(
            "p-center", sites_t, problem.assignment(sites_t), 0.0, 0.0, 0.0, True, "trivial",
            time.perf_counter() - t0, "no demand point has positive weight",
        )
    C = problem.cost[rows]
    values = np.unique(C)
    # start from a feasible solution (greedy p-median)
    bis = _pcenter_bisection(problem, C, values, _greedy(D, p, fixed), p, deadline)
    best_sites = bis.sites
    # pad to exactly p sites by greedy p-median tie-break
    if best_sites.size < p:
        best_sites = _greedy(D, p, np.asarray(best_sites, dtype=np.int64))
    sites = tuple(int(s) for s in sorted(best_sites))
    obj = problem.max_cost(sites)
    bound = min(bis.lower_bound, obj)
    gap = _rel_gap(obj, bound)
    optimal = gap <= 1e-12
    status = f"bisection over {values.size} distinct costs, {bis.n_tests} set-cover MILPs"
    if bis.timed_out:
        status += f"; time limit reached, NOT proven optimal: relative gap {gap:.3g}"
    return PlacementResult(
        "p-center", sites, problem.assignment(sites), obj, bound, gap, optimal, "bisection+lscp-milp-highs",
        time.perf_counter() - t0, status,
    )


@dataclass
class _Bisection:
    sites: np.ndarray  # the smallest-radius cover found (at most p sites)
    lower_bound: float  # proven lower bound on the optimal radius
    n_tests: int  # feasibility MILPs solved
    timed_out: bool


def _pcenter_bisection(
    problem: PlacementProblem, C: np.ndarray, values: np.ndarray, start: np.ndarray, p: int, deadline: float
) -> _Bisection:
    """Bisection over ``values``, the sorted distinct entries of ``C`` (the rows of positive weight),
    from the feasible solution ``start``: each step asks HiGHS for a cover of radius ``values[mid]`` with
    at most p sites, until the bounds meet or ``deadline`` (perf_counter) is near."""
    # lower limit: every point needs some site; fixed sites alone already achieve their max
    lo = int(np.searchsorted(values, C.min(axis=1).max()))
    best_sites = start
    hi = int(np.searchsorted(values, float(C[:, start].min(axis=1).max())))
    lo_bound = float(values[lo])
    timed_out = False
    n_tests = 0
    while lo < hi:
        mid = (lo + hi) // 2
        remaining = deadline - time.perf_counter()
        if remaining <= 0.05:
            timed_out = True
            break
        out = _lscp_milp(problem, C <= values[mid], remaining, 1e-9, max_sites=p)
        n_tests += 1
        if out.x is not None:  # a cover with <= p sites: radius values[mid] is feasible
            best_sites = out.x
            hi = int(np.searchsorted(values, float(C[:, out.x].min(axis=1).max())))
        elif out.infeasible:  # proven: no cover with <= p sites
            lo = mid + 1
            lo_bound = float(values[lo])
        else:
            timed_out = True
            break
    return _Bisection(best_sites, lo_bound, n_tests, timed_out)


def solve_placement(
    problem: PlacementProblem,
    model: str,
    p: int | None = None,
    radius_km: float | None = None,
    time_limit_s: float = 60.0,
    seed=0,
) -> PlacementResult:
    """Solve ``problem`` with the model named ``model`` (one of :data:`MODELS`).

    Args:
        problem: the instance.
        model: ``"p-median"``, ``"mclp"``, ``"lscp"`` or ``"p-center"``.
        p: number of sites (p-median, MCLP, p-center; ignored by LSCP).
        radius_km: coverage radius (MCLP, LSCP; ignored by the others).
        time_limit_s: solver time limit, s.
        seed: seed of the p-median local search restarts.

    Raises:
        TwinInputError: unknown model, p or radius missing where the model needs it, and every error
            of the model's solver (invalid p or radius, infeasible LSCP, no solution in time).
    """
    if model not in MODELS:
        raise TwinInputError(f"unknown placement model {model!r}; use one of {', '.join(MODELS)}")
    if model in ("p-median", "mclp", "p-center") and p is None:
        raise TwinInputError(f"model {model} needs p, the number of sites to open")
    if model in ("mclp", "lscp") and radius_km is None:
        raise TwinInputError(f"model {model} needs a coverage radius (radius_km)")
    if model == "p-median":
        return solve_pmedian(problem, p, time_limit_s=time_limit_s, seed=seed)  # type: ignore[arg-type]
    if model == "mclp":
        return solve_mclp(problem, p, radius_km, time_limit_s=time_limit_s)  # type: ignore[arg-type]
    if model == "lscp":
        return solve_lscp(problem, radius_km, time_limit_s=time_limit_s)  # type: ignore[arg-type]
    return solve_pcenter(problem, p, time_limit_s=time_limit_s)  # type: ignore[arg-type]
