"""Calibrate a scenario's demand.kiosk_uptake so that one phase serves a target number of interviews.

Used for scenarios/auvergne-2008.yaml: the seed article (Localtis, 2008) reports more than 2,700 video
interviews in 2007, so the "2007" phase is calibrated to 2,700 served interviews:

    python scenarios/calibrate_uptake.py scenarios/auvergne-2008.yaml --phase 2007 --target 2700

Method: served interviews grow almost linearly with the uptake (demand scales with it; losses to
waiting and outages are small at these loads), so a few secant iterations on the mean over
``--replications`` replications (common random numbers: the same seeds at every iteration) converge.
The scenario file is not modified: the script prints the value to write into it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import yaml

from twin.kpis import compute_kpis
from twin.model.inputs import prepare
from twin.model.replication import simulate
from twin.quality import quality_for_scenario
from twin.scenario.loading import load_scenario
from twin.scenario.spec import LoadedScenario


def served(loaded: LoadedScenario, uptake: float, phase: str, seeds: list[np.random.SeedSequence]) -> float:
    """Mean served interviews in ``phase`` over the seeds, with demand.kiosk_uptake set to ``uptake``."""
    spec = loaded.spec.model_copy(update={"demand": loaded.spec.demand.model_copy(update={"kiosk_uptake": uptake})})
    variant = LoadedScenario(**{**loaded.__dict__, "spec": spec})
    inputs = prepare(variant, quality_for_scenario(variant))
    return float(np.mean([compute_kpis(inputs, simulate(inputs, s))[phase]["interviews_served"] for s in seeds]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", type=Path)
    parser.add_argument("--phase", required=True)
    parser.add_argument("--target", type=float, required=True, help="served interviews in the phase")
    parser.add_argument("--replications", type=int, default=10)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    loaded = load_scenario(args.scenario)
    seed = loaded.spec.simulation.seed if args.seed is None else args.seed
    seeds = np.random.SeedSequence(seed).spawn(args.replications)
    u0 = loaded.spec.demand.kiosk_uptake
    s0 = served(loaded, u0, args.phase, seeds)
    u1 = u0 * args.target / s0
    s1 = served(loaded, u1, args.phase, seeds)
    for _ in range(8):
        print(f"kiosk_uptake {u1:.6f}: {s1:.1f} served in {args.phase}", file=sys.stderr)
        if abs(s1 - args.target) <= 0.005 * args.target or s1 == s0:
            break
        u0, s0, u1 = u1, s1, u1 + (args.target - s1) * (u1 - u0) / (s1 - s0)
        s1 = served(loaded, u1, args.phase, seeds)
    print(yaml.safe_dump({"demand": {"kiosk_uptake": round(u1, 5)}}).strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
