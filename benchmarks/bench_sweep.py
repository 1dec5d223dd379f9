"""Benchmark: a 12-point x 5-replication sweep of the Auvergne scenario with 1 and 2 workers.

Runs ``scenarios/sweeps/auvergne-agents-uptake.yaml`` in this process (1 worker), then on a local Dask
cluster of 2 workers, checks the two tables are the same bytes, runs the sweep a second time into its
folder (nothing may run again), and prints the wall times and the parallel efficiency
``t1 / (2 x t2)`` (the goal is at least 0.8).

    python benchmarks/bench_sweep.py [--sweep FILE] [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from twin.run.sweep import run_sweep

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", type=Path, default=ROOT / "scenarios" / "sweeps" / "auvergne-agents-uptake.yaml")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        one = run_sweep(args.sweep, jobs=1, out_dir=Path(tmp) / "one")
        t1 = time.perf_counter() - t0
        t0 = time.perf_counter()
        many = run_sweep(args.sweep, jobs=args.workers, out_dir=Path(tmp) / "many")
        t2 = time.perf_counter() - t0
        same = (one.folder / "table.csv").read_bytes() == (many.folder / "table.csv").read_bytes()
        ran: list[int] = []
        t0 = time.perf_counter()
        again = run_sweep(args.sweep, jobs=1, out_dir=Path(tmp) / "one", on_task=lambda d, t: ran.append(d))
        t3 = time.perf_counter() - t0
    print(f"sweep                    {args.sweep.name}: {len(one.points)} points")
    print(f"1 worker (this process)  {t1:8.1f} s")
    print(f"{args.workers} workers (Dask)         {t2:8.1f} s")
    print(f"parallel efficiency      {t1 / (args.workers * t2):.2f}  (t1 / ({args.workers} x t{args.workers}); goal >= 0.80)")
    print(f"same table               {'yes' if same else 'NO'}")
    print(f"second invocation        {len(ran)} tasks run, {len(again.skipped)} points kept, {t3:.1f} s")
    return 0 if same and not ran else 1


if __name__ == "__main__":
    sys.exit(main())
