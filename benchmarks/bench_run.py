"""Benchmark: the twin's throughput against a bare SimPy M/M/c model, measured in the same run.

Times replications of each scenario (in this process, one core) and a bare SimPy M/M/c model (arrive,
request an agent, wait, serve, leave) that serves the same number of interviews, then prints interviews
per second for both and the twin's ratio to the bare model. The bare model is the baseline: the ratio
says what the twin's demand routing, kiosks, stations, lines and quality cost per interview. It also
prints the time of one replication of each scenario and their ratio (the 2005-2012 history against the
2005-2009 one).

    python benchmarks/bench_run.py [--scenario FILE ...] [--replications 3] [--repeat 3] [--baseline-rev REV]

``--baseline-rev REV`` also times the first scenario with the code of git revision REV (checked out in a
temporary worktree, run in a subprocess in the same run): e.g. ``54ce1f0``, the code when the issues of
the second round were filed, to compare the 2005-2012 history with that day's 2005-2009 one.
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


def measure(scenario: Path, replications: int, repeat: int = 3) -> dict[str, float]:
    """Compile time, replication time and interviews of ``replications`` replications, and the bare
    M/M/c serving as many customers, in this process. Twin and bare runs alternate ``repeat`` times and
    the fastest of each counts (as ``timeit`` does): on a shared machine the minimum is the time least
    disturbed by other processes, and alternating exposes both to the same conditions."""
    t0 = time.perf_counter()
    _, inputs = compile_scenario(scenario)
    compile_s = time.perf_counter() - t0
    seeds = np.random.SeedSequence(1).spawn(replications)
    twin_times, bare_times = [], []
    for _ in range(repeat):
        served = 0
        t0 = time.perf_counter()
        for seed in seeds:
            kpis = run_replication(inputs, seed)
            served += int(sum(phase["interviews_served"] for phase in kpis.values()))
        twin_times.append(time.perf_counter() - t0)
        bare_times.append(bare_mmc(served, servers=10, arrival_rate=0.9, mean_service=10.0, seed=1))
    twin_s, bare_s = min(twin_times), min(bare_times)
    return {"compile_s": compile_s, "twin_s": twin_s, "served": served, "bare_s": bare_s,
            "replication_s": twin_s / replications}


_OLD_CODE_PROBE = """
import sys, time, numpy as np
try:
    from twin.run.runner import compile_scenario, run_replication
except ImportError:
    from twin.runner import compile_scenario, run_replication
_, inputs = compile_scenario(sys.argv[1])
seeds = np.random.SeedSequence(1).spawn(int(sys.argv[2]))
t0 = time.perf_counter()
served = sum(sum(p["interviews_served"] for p in run_replication(inputs, s).values()) for s in seeds)
print(time.perf_counter() - t0, served)
"""


def measure_revision(rev: str, scenario: Path, replications: int) -> tuple[float, int]:
    """Seconds per replication and interviews of ``scenario`` with the code of git revision ``rev``."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev], check=True,
                       capture_output=True)
        try:
            out = subprocess.run([sys.executable, "-c", _OLD_CODE_PROBE, str(tree / "scenarios" / scenario.name),
                                  str(replications)], cwd=tree, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
                                 check=True, capture_output=True, text=True).stdout.split()
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)
    return float(out[0]) / replications, int(float(out[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, nargs="+",
                        default=[ROOT / "scenarios" / "auvergne-2008.yaml", ROOT / "scenarios" / "auvergne-2005-2012.yaml"])
    parser.add_argument("--replications", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3, help="alternate twin and bare runs; the fastest of each counts")
    parser.add_argument("--baseline-rev", default=None, help="git revision whose code times the first scenario too")
    args = parser.parse_args(argv)
    results = {}
    for scenario in args.scenario:
        m = results[scenario.name] = measure(scenario, args.replications, args.repeat)
        twin_rate, bare_rate = m["served"] / m["twin_s"], m["served"] / m["bare_s"]
        print(f"scenario                 {scenario.name}")
        print(f"compile (load+prepare)   {m['compile_s']:8.2f} s")
        print(f"twin                     {args.replications} replications, {m['served']:,} interviews in "
              f"{m['twin_s']:.2f} s -> {twin_rate:,.0f} interviews/s ({m['replication_s']:.2f} s per replication; best of {args.repeat})")
        print(f"bare SimPy M/M/c         {m['served']:,} customers in {m['bare_s']:.2f} s -> {bare_rate:,.0f} customers/s")
        print(f"ratio twin / bare        {twin_rate / bare_rate:.3f}")
    if len(results) >= 2:
        (a_name, a), (b_name, b) = list(results.items())[:2]
        print(f"replication time         {b_name} / {a_name}: {b['replication_s'] / a['replication_s']:.2f}")
    if args.baseline_rev:
        first = args.scenario[0]
        old_s, old_served = measure_revision(args.baseline_rev, first, args.replications)
        print(f"code at {args.baseline_rev:<16} {first.name}: {old_s:.2f} s per replication ({old_served:,} interviews, "
              f"{old_served / old_s / args.replications:,.0f} interviews/s)")
        for name, m in results.items():
            print(f"replication time         {name} (this code) / {first.name} (code at {args.baseline_rev}): "
                  f"{m['replication_s'] / old_s:.2f}")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS                 {peak_mib:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
