"""Benchmark: the national scenario, one year per replication, and the p-median at national scale.

Usage::

    .venv/bin/python benchmarks/bench_national.py [--scenario scenarios/france-services.yaml]
        [--replications 2] [--pmedian] [--synthetic 35000] [--p 2800]

Replications: each runs in a fresh subprocess (one core): it loads and compiles the scenario, then runs one
replication (seed streams ``SeedSequence(1).spawn(n)``); each line gives the compile and replication
wall and CPU times (CPU time is what one core spends: the fair figure on a shared machine), the
interviews served and the subprocess's peak resident memory (``wait4`` rusage).
The goal (issue 16) is a national replication of one year in under 3 minutes on one core.

``--pmedian``: :func:`planners.national.solve_pmedian_sparse` on the scenario's communes (every place a
candidate, ``--p`` sites), printing time, objective, Lagrangian bound and gap. ``--synthetic N`` also
solves an instance of N demand points and candidates: the communes plus places drawn near them (uniform
in a box, kept within 8 km of a commune, 100 inhabitants each; seed 1), the size of France's ~35,000
communes.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planners.national import SparsePMedian, solve_pmedian_sparse

_ONE_REPLICATION = """
import sys, time, json, numpy as np
from twin.run.runner import compile_scenario, run_replication
t0, c0 = time.perf_counter(), time.process_time()
_, inputs = compile_scenario(sys.argv[1])
t1, c1 = time.perf_counter(), time.process_time()
seed = np.random.SeedSequence(1).spawn(int(sys.argv[3]))[int(sys.argv[2])]
kpis = run_replication(inputs, seed)
t2, c2 = time.perf_counter(), time.process_time()
served = sum(phase["interviews_served"] for phase in kpis.values())
print(json.dumps({"compile_s": t1 - t0, "replication_s": t2 - t1, "compile_cpu_s": c1 - c0,
                  "replication_cpu_s": c2 - c1, "served": served}))
"""


def one_replication(scenario: Path, index: int, total: int) -> dict[str, float]:
    """Run replication ``index`` of ``total`` in a subprocess; its times, interviews and peak RSS (MiB)."""
    import json

    proc = subprocess.Popen([sys.executable, "-c", _ONE_REPLICATION, str(scenario), str(index), str(total)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"replication {index} failed (exit {proc.returncode})")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_mib"] = usage.ru_maxrss / 1024
    return result


def communes(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return (np.array([[float(r["lat"]), float(r["lon"])] for r in rows]),
            np.array([float(r["population"]) for r in rows]))


def synthetic(latlon: np.ndarray, weights: np.ndarray, n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The communes plus places drawn uniformly in their bounding box, kept within 8 km of a commune."""
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    tree = cKDTree(latlon * [1.0, np.cos(np.radians(46.5))])
    extra: list[np.ndarray] = []
    need = n - latlon.shape[0]
    while need > 0:
        pts = np.column_stack([rng.uniform(latlon[:, 0].min(), latlon[:, 0].max(), 4 * need),
                               rng.uniform(latlon[:, 1].min(), latlon[:, 1].max(), 4 * need)])
        d, _ = tree.query(pts * [1.0, np.cos(np.radians(46.5))])
        pts = pts[d * 111.2 <= 8.0][:need]
        extra.append(pts)
        need -= pts.shape[0]
    more = np.vstack(extra) if extra else np.zeros((0, 2))
    return np.vstack([latlon, more]), np.concatenate([weights, np.full(more.shape[0], 100.0)])


def pmedian_line(label: str, latlon: np.ndarray, weights: np.ndarray, p: int) -> None:
    t0 = time.perf_counter()
    problem = SparsePMedian.from_coordinates(latlon, weights, latlon, circuity=1.3, k_nearest=50)
    res = solve_pmedian_sparse(problem, p, time_limit_s=1e6)
    total = time.perf_counter() - t0
    print(f"{label:<28} n = m = {latlon.shape[0]:>6,}  p = {p:,}: objective {res.objective:,.0f}  bound "
          f"{res.bound:,.0f}  gap {100 * res.gap:.2f} %  time {total:.1f} s (solve {res.solve_time_s:.1f} s)",
          flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "france-services.yaml")
    parser.add_argument("--replications", type=int, default=2, help="0: none")
    parser.add_argument("--pmedian", action="store_true", help="time the national p-median on the communes")
    parser.add_argument("--synthetic", type=int, default=0, help="also a p-median of this many points")
    parser.add_argument("--p", type=int, default=2800)
    args = parser.parse_args(argv)
    if args.pmedian or args.synthetic:
        latlon, weights = communes(ROOT / "scenarios" / "data" / "france-communes.csv")
        if args.pmedian:
            pmedian_line("p-median, communes", latlon, weights, args.p)
        if args.synthetic:
            pmedian_line("p-median, synthetic", *synthetic(latlon, weights, args.synthetic), args.p)
    for k in range(args.replications):
        r = one_replication(args.scenario, k, args.replications)
        print(f"replication {k + 1}/{args.replications} of {args.scenario.name}: compile {r['compile_s']:.1f} s "
              f"(CPU {r['compile_cpu_s']:.1f} s), one year {r['replication_s']:.1f} s (CPU {r['replication_cpu_s']:.1f} s), "
              f"{r['served']:,.0f} interviews, peak RSS {r['peak_rss_mib']:.0f} MiB "
              f"({'under' if r['replication_s'] < 180 else 'OVER'} the 3-minute goal in wall time)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
