"""Wall time of the calibration sweep (``twin calibrate``) in virtual time.

Run: ``.venv/bin/python benchmarks/bench_calibrate.py [--calls 8] [--jobs 2] [--full]``

Runs the first ``--calls`` calls of the full sweep (:func:`emulators.calibrate.sweep_specs`, gen1 and
gen2, 3 seeds per point; ``--full`` runs all of it, as the shipped table was made), ``--jobs`` at a
time, and prints: calls, call-seconds simulated, wall seconds, speed-up (call-seconds per wall second),
wall seconds per call per profile, and the full sweep's projected wall time at that rate. The figure
for the shipped table (the full sweep, 2 processes, on the shared 2-core host while three other
sessions ran) is recorded in docs/quality.md and scenarios/data/README.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    from emulators.calibrate import run_calibration, sweep_specs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=8, help="calls from the start of each profile's sweep")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--duration-s", type=float, default=20.0)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="the whole sweep (about 200 calls)")
    args = parser.parse_args(argv)
    full = sweep_specs(["gen1", "gen2"], args.seeds)
    if args.full:
        tasks = full
    else:
        per = max(1, args.calls // 2)
        tasks = [t for t in full if t[1] == "gen1"][:per] + [t for t in full if t[1] == "gen2"][:per]
    summary: dict = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run_calibration(tasks, duration_s=args.duration_s, jobs=args.jobs, out_csv=Path(tmp) / "calibration.csv",
                        summary=summary)
    wall = time.perf_counter() - t0
    per_call = wall / len(tasks)
    print(f"{summary['calls']} calls ({args.duration_s:g} s each, virtual time), {summary['call_s']:.0f} call-seconds "
          f"in {wall:.0f} s of wall time with {args.jobs} processes: speed-up {summary['speedup']:.2f}x, "
          f"{per_call:.1f} s per call")
    print(f"full sweep: {len(full)} calls, projected {len(full) * per_call / 60:.0f} min at this rate")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
