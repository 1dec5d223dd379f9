"""Benchmark: the twin's throughput against a bare SimPy M/M/c model, measured in the same run.

Times replications of the Auvergne scenario (in this process, one core) and a bare SimPy M/M/c model
(arrive, request an agent, wait, serve, leave) that serves the same number of interviews, then prints
interviews per second for both and the twin's ratio to the bare model. The bare model is the baseline:
the ratio says what the twin's demand routing, kiosks, stations, lines and quality cost per interview.

    python benchmarks/bench_run.py [--scenario scenarios/auvergne-2008.yaml] [--replications 3]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import simpy

from twin.run.runner import compile_scenario, run_replication

ROOT = Path(__file__).resolve().parent.parent


def bare_mmc(n_customers: int, servers: int, arrival_rate: float, mean_service: float, seed: int) -> float:
    """Run a bare SimPy M/M/c until ``n_customers`` have been served; returns wall seconds."""
    rng = np.random.default_rng(seed)
    inter = rng.exponential(1.0 / arrival_rate, n_customers)
    service = rng.exponential(mean_service, n_customers)
    env = simpy.Environment()
    agents = simpy.Resource(env, capacity=servers)

    def customer(k: int):
        with agents.request() as req:
            yield req
            yield env.timeout(service[k])

    def source():
        for k in range(n_customers):
            yield env.timeout(inter[k])
            env.process(customer(k))

    start = time.perf_counter()
    env.process(source())
    env.run()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "auvergne-2008.yaml")
    parser.add_argument("--replications", type=int, default=3)
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    _, inputs = compile_scenario(args.scenario)
    compile_s = time.perf_counter() - t0
    seeds = np.random.SeedSequence(1).spawn(args.replications)
    served = 0
    t0 = time.perf_counter()
    for seed in seeds:
        kpis = run_replication(inputs, seed)
        served += int(sum(phase["interviews_served"] for phase in kpis.values()))
    twin_s = time.perf_counter() - t0
    bare_s = bare_mmc(served, servers=10, arrival_rate=0.9, mean_service=10.0, seed=1)
    twin_rate = served / twin_s
    bare_rate = served / bare_s
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"scenario                 {args.scenario.name}")
    print(f"compile (load+prepare)   {compile_s:8.2f} s")
    print(f"twin                     {args.replications} replications, {served:,} interviews in {twin_s:.2f} s "
          f"-> {twin_rate:,.0f} interviews/s")
    print(f"bare SimPy M/M/c         {served:,} customers in {bare_s:.2f} s -> {bare_rate:,.0f} customers/s")
    print(f"ratio twin / bare        {twin_rate / bare_rate:.3f}")
    print(f"peak RSS                 {peak_mib:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
