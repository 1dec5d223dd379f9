"""Benchmark: our p-median solver against spopt + PuLP/CBC on OR-Library pmed1-pmed10.

Usage::

    .venv/bin/python benchmarks/bench_pmedian.py [DATA_DIR] [--instances 1-10] [--no-spopt]

DATA_DIR defaults to tests/data/or-library (pmedN.txt and pmedopt.txt, Beasley 1985). For each instance
our :func:`planners.placement.solve_pmedian` (method "auto") and spopt's ``PMedian.from_cost_matrix``
(a dense MILP, one binary per client x facility) solved by ``pulp.PULP_CBC_CMD(msg=False)`` run on the same
distance matrix in the same process; the table gives objectives, our bound and gap, wall-clock times and
the ratio spopt time / our time. Needs the ``bench`` extra (spopt, pulp) for the comparison; without it
only our solver is timed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planners.orlib import read_orlib_optima, read_orlib_pmedian
from planners.placement import PlacementProblem, solve_pmedian

DEFAULT_DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "or-library"


def _parse_range(text: str) -> list[int]:
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(k) for k in text.split(",")]


def _spopt_solve(cost: np.ndarray, p: int) -> tuple[float, float, str]:
    import pulp
    from spopt.locate import PMedian

    t0 = time.perf_counter()
    model = PMedian.from_cost_matrix(cost, np.ones(cost.shape[0]), p_facilities=p, name="bench")
    model = model.solve(pulp.PULP_CBC_CMD(msg=False))
    elapsed = time.perf_counter() - t0
    status = pulp.LpStatus[model.problem.status]
    return float(pulp.value(model.problem.objective)), elapsed, status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", default=str(DEFAULT_DATA))
    parser.add_argument("--instances", default="1-10", help="e.g. 1-10 or 1,5,6")
    parser.add_argument("--no-spopt", action="store_true", help="time our solver only")
    parser.add_argument("--time-limit-s", type=float, default=120.0)
    args = parser.parse_args(argv)
    data = Path(args.data_dir)
    optima = read_orlib_optima(data / "pmedopt.txt")

    have_spopt = not args.no_spopt
    if have_spopt:
        try:
            import pulp  # noqa: F401
            import spopt.locate  # noqa: F401
        except ImportError as exc:
            print(f"spopt/pulp not installed ({exc.name}); timing ours only (pip install -e '.[bench]')")
            have_spopt = False

    header = (
        f"{'instance':8} {'n':>4} {'p':>3} {'optimum':>7} | {'ours obj':>8} {'bound':>7} {'gap':>7} "
        f"{'time_s':>7} {'method':<42} | {'spopt obj':>9} {'time_s':>7} {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    total_ours = total_spopt = 0.0
    for k in _parse_range(args.instances):
        inst = read_orlib_pmedian(data / f"pmed{k}.txt")
        problem = PlacementProblem.from_cost_matrix(inst.distances)
        res = solve_pmedian(problem, inst.p, time_limit_s=args.time_limit_s)
        total_ours += res.solve_time_s
        opt = optima.get(inst.name)
        flag = "" if opt is None or res.objective == opt else " !"
        line = (
            f"{inst.name:8} {inst.n_vertices:>4} {inst.p:>3} {opt if opt is not None else '?':>7} | "
            f"{res.objective:>8.0f} {res.bound:>7.0f} {res.gap:>7.1e} {res.solve_time_s:>7.2f} "
            f"{res.method:<42}{flag} |"
        )
        if have_spopt:
            obj_s, t_s, status = _spopt_solve(inst.distances, inst.p)
            total_spopt += t_s
            line += f" {obj_s:>9.0f} {t_s:>7.2f} {t_s / res.solve_time_s:>6.1f}"
            if status != "Optimal":
                line += f" ({status})"
        print(line, flush=True)
    summary = f"total: ours {total_ours:.2f} s"
    if have_spopt:
        summary += f", spopt+CBC {total_spopt:.2f} s, ratio {total_spopt / total_ours:.1f}"
    print(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
