"""Benchmark: the hybrid twin's live window (emulators/hybrid.py) - wall time per live call-minute.

Runs one replication of ``scenarios/office-shared-line.yaml`` (four booths at Vorey, four agents whose
stations share the Le Puy office's line) with a two-hour live window on a weekday morning: every
interview is sampled by one live call of ``--media-s`` seconds at the next sampling instant
(``--sample-min``), so the interviews in progress meet live (up to four calls at once on the shared
lines). Prints the calls, the most calls met on one line, the live call-minutes, the wall time, the wall
time per live call-minute, and the same replication without live calls (the model alone) in the same
run.

    python benchmarks/bench_hybrid.py [--media-s 20] [--sample-min 20] [--window 2007-01-15T09:00/2007-01-15T11:00]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

from emulators.hybrid import LiveWindow, run_hybrid_replication
from twin.model.replication import simulate
from twin.run.runner import compile_scenario

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "office-shared-line.yaml")
    parser.add_argument("--sites", default="vorey")
    parser.add_argument("--window", default="2007-01-15T09:00/2007-01-15T11:00")
    parser.add_argument("--media-s", type=float, default=20.0)
    parser.add_argument("--sample-min", type=float, default=20.0)
    args = parser.parse_args(argv)
    loaded, inputs = compile_scenario(args.scenario)
    seed = np.random.SeedSequence(11).spawn(1)[0]
    window = LiveWindow.parse(args.sites, args.window, media_s=args.media_s, max_calls=200,
                              sample_min=args.sample_min)
    t0 = time.perf_counter()
    simulate(inputs, seed)
    model_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, carrier = run_hybrid_replication(loaded, inputs, seed, window)
    wall_s = time.perf_counter() - t0
    rows = carrier.rows
    call_min = sum(r.media_s for r in rows) / 60.0
    most = max((max(r.calls_on_kiosk_line, r.calls_on_agent_line) for r in rows), default=0)
    print(f"scenario                 {args.scenario.name}, live {args.sites} {args.window}")
    print(f"live calls               {len(rows)} of {args.media_s:g} s media (sampling every {args.sample_min:g} min), "
          f"at most {most} at once on one line")
    print(f"live call-minutes        {call_min:.1f}")
    print(f"wall time, live window   {wall_s:.1f} s (the replication with its live calls)")
    print(f"wall per live call-min   {wall_s / call_min:.1f} s" if call_min else "wall per live call-min   -")
    print(f"model alone              {model_s:.2f} s (the same replication, no live call)")
    print(f"peak RSS                 {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
