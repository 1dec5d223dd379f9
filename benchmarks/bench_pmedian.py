"""Benchmark: our exact p-median against spopt + PuLP/CBC and plain HiGHS, OR-Library and generated instances.

Usage::

    .venv/bin/python benchmarks/bench_pmedian.py [DATA_DIR] [--instances 1-10] [--generated 400:5,900:90]
        [--no-spopt] [--no-plain] [--other-time-limit-s 60]

DATA_DIR defaults to tests/data/or-library (pmedN.txt and pmedopt.txt, Beasley 1985). ``--generated N:P,...``
adds instances made by :func:`planners.orlib.generate_orlib_like` (Beasley's density, seed 1), e.g. the
sizes of pmed36-40 (n = 900). For each instance, on the same distance matrix and in the same process:

* ours: :func:`planners.placement.solve_pmedian` (method "auto": greedy + vertex substitution, a Lagrangian
  bound with Beasley's reduction tests, then a Lagrangian branch-and-bound when few sites are left to choose,
  or the radius formulation on HiGHS over the sites the tests left);
* plain HiGHS: the textbook model (ReVelle & Swain 1970: x_ij <= y_j, one assignment variable per pair)
  given to scipy.optimize.milp (HiGHS) as it is;
* spopt: ``PMedian.from_cost_matrix`` (the same textbook model) solved by ``pulp.PULP_CBC_CMD``.

The other two get ``--other-time-limit-s`` each; a time-out prints its incumbent with ``(limit)``. The
table gives objectives, proven lower bounds and relative gaps (ours and plain HiGHS), wall-clock times and
how ours closed the gap. Example, the sizes of pmed36-40 (n = 900) over the p range::

    .venv/bin/python benchmarks/bench_pmedian.py --instances '' \
        --generated 900:5,900:10,900:20,900:50,900:90,900:150,900:300 --other-time-limit-s 60 Needs the ``bench`` extra (spopt, pulp)
for the spopt column.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_matrix, hstack, kron, vstack
from scipy.sparse import identity as sparse_identity

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planners.orlib import OrlibInstance, generate_orlib_like, read_orlib_optima, read_orlib_pmedian
from planners.placement import PlacementProblem, solve_pmedian

DEFAULT_DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "or-library"

#: How our solver closed the gap, by its result's ``method``.
_CLOSED_BY = {
    "lagrangian": "root bound",
    "lagrangian-branch-and-bound": "Lagr. B&B",
    "lagrangian+radius-rowgen+milp-highs": "radius HiGHS",
}


def _parse_range(text: str) -> list[int]:
    if not text:
        return []
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(k) for k in text.split(",")]


def _spopt_solve(cost: np.ndarray, p: int, time_limit_s: float) -> tuple[float, float, str]:
    import pulp
    from spopt.locate import PMedian

    t0 = time.perf_counter()
    model = PMedian.from_cost_matrix(cost, np.ones(cost.shape[0]), p_facilities=p, name="bench")
    try:
        model = model.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit_s))
    except RuntimeError:  # spopt raises when CBC stops at the time limit
        return float("nan"), time.perf_counter() - t0, "limit"
    elapsed = time.perf_counter() - t0
    status = pulp.LpStatus[model.problem.status]
    value = pulp.value(model.problem.objective)
    return (float(value) if value is not None else float("nan")), elapsed, status


def plain_highs(cost: np.ndarray, p: int, time_limit_s: float) -> tuple[float, float, float, bool]:
    """The textbook p-median MILP (ReVelle & Swain 1970) on HiGHS as it is: variables x_ij (row-major,
    n x m) then y_j; sum_j x_ij = 1, x_ij - y_j <= 0, sum_j y_j = p. Returns (objective, dual bound, wall s,
    optimal); nan where HiGHS has none."""
    n, m = cost.shape
    t0 = time.perf_counter()
    assign = hstack([kron(sparse_identity(n), np.ones((1, m))), csr_matrix((n, m))])
    link = hstack([sparse_identity(n * m), -kron(np.ones((n, 1)), sparse_identity(m))])
    count = csr_matrix(np.concatenate([np.zeros(n * m), np.ones(m)])[None, :])
    constraints = [
        LinearConstraint(vstack([assign, count]).tocsr(), np.r_[np.ones(n), p], np.r_[np.ones(n), p]),
        LinearConstraint(link.tocsr(), -np.inf, 0),
    ]
    integrality = np.concatenate([np.zeros(n * m), np.ones(m)])
    res = milp(np.concatenate([cost.ravel(), np.zeros(m)]), constraints=constraints, integrality=integrality,
               bounds=Bounds(0, 1), options={"time_limit": time_limit_s})
    elapsed = time.perf_counter() - t0
    bound = getattr(res, "mip_dual_bound", None)
    return ((float(res.fun) if res.x is not None else float("nan")),
            (float(bound) if bound is not None else float("nan")), elapsed, res.status == 0)


def _gap(objective: float, bound: float) -> float:
    return abs(objective - bound) / max(abs(objective), 1e-12)


def _instances(data: Path, numbers: list[int], generated: str) -> list[tuple[OrlibInstance, int | None]]:
    optima = read_orlib_optima(data / "pmedopt.txt") if numbers else {}
    out: list[tuple[OrlibInstance, int | None]] = []
    for k in numbers:
        inst = read_orlib_pmedian(data / f"pmed{k}.txt")
        out.append((inst, optima.get(inst.name)))
    for item in filter(None, generated.split(",")):
        n, p = (int(x) for x in item.split(":"))
        out.append((generate_orlib_like(n, p, seed=1), None))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", default=str(DEFAULT_DATA))
    parser.add_argument("--instances", default="1-10", help="OR-Library numbers, e.g. 1-10 or 1,5,6 ('' for none)")
    parser.add_argument("--generated", default="", help="generated instances N:P,... e.g. 400:5,900:90")
    parser.add_argument("--no-spopt", action="store_true", help="leave spopt + CBC out")
    parser.add_argument("--no-plain", action="store_true", help="leave plain HiGHS out")
    parser.add_argument("--time-limit-s", type=float, default=120.0, help="our budget per instance")
    parser.add_argument("--other-time-limit-s", type=float, default=60.0, help="budget of spopt and plain HiGHS")
    args = parser.parse_args(argv)

    have_spopt = not args.no_spopt
    if have_spopt:
        try:
            import pulp  # noqa: F401
            import spopt.locate  # noqa: F401
        except ImportError as exc:
            print(f"spopt/pulp not installed ({exc.name}); leaving spopt out (pip install -e '.[bench]')")
            have_spopt = False

    header = (
        f"{'instance':14} {'n':>4} {'p':>3} {'optimum':>7} | {'ours obj':>8} {'bound':>8} {'gap':>7} {'time_s':>7}"
        f" {'closed by':>13}"
        + ("" if args.no_plain else f" | {'HiGHS obj':>9} {'bound':>8} {'gap':>7} {'time_s':>7}")
        + (f" | {'spopt obj':>9} {'time_s':>7}" if have_spopt else "")
    )
    print(header)
    print("-" * len(header))
    totals = {"ours": 0.0, "plain": 0.0, "spopt": 0.0}
    worst = 0.0
    for inst, opt in _instances(Path(args.data_dir), _parse_range(args.instances), args.generated):
        problem = PlacementProblem.from_cost_matrix(inst.distances)
        res = solve_pmedian(problem, inst.p, time_limit_s=args.time_limit_s)
        totals["ours"] += res.solve_time_s
        worst = max(worst, res.solve_time_s)
        flag = "" if opt is None or res.objective == opt else " !"
        line = (
            f"{inst.name:14} {inst.n_vertices:>4} {inst.p:>3} {opt if opt is not None else '-':>7} | "
            f"{res.objective:>8.0f} {res.bound:>8.0f} {res.gap:>7.1e} {res.solve_time_s:>7.2f}{flag}"
            f" {_CLOSED_BY.get(res.method, res.method):>13}"
        )
        if not args.no_plain:
            obj, bound, t, optimal = plain_highs(inst.distances, inst.p, args.other_time_limit_s)
            totals["plain"] += t
            line += f" | {obj:>9.0f} {bound:>8.0f} {_gap(obj, bound):>7.1e} {t:>7.2f}" + ("" if optimal else " (limit)")
        if have_spopt:
            obj_s, t_s, status = _spopt_solve(inst.distances, inst.p, args.other_time_limit_s)
            totals["spopt"] += t_s
            line += f" | {obj_s:>9.0f} {t_s:>7.2f}" + ("" if status == "Optimal" else f" ({status})")
        print(line, flush=True)
    summary = f"total: ours {totals['ours']:.2f} s (slowest {worst:.2f} s)"
    if not args.no_plain:
        summary += f", plain HiGHS {totals['plain']:.2f} s"
    if have_spopt:
        summary += f", spopt+CBC {totals['spopt']:.2f} s"
    print(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
