"""Stress check of the signal policy: signals at random moments of a run, and kill -9.

Starts ``twin run SCENARIO -r 10 --jobs 2`` N times and sends each a random signal (SIGINT, SIGTERM or
SIGHUP) at a random moment between its start and the typical end of such a run, then checks what the
signal policy promises: exit status 0 (the run had finished) or 128 + signal, no traceback on stderr, a
manifest that is not left ``running``, every replication counted in the manifest kept on disk, and a
summary of them. Then it kills runs with SIGKILL and checks no process of theirs is alive 5 s later.
Timing is what this script varies on purpose: it is a check to run by hand, not a test.

    python benchmarks/stress_signals.py [--runs 20] [--kills 3] [--scenario scenarios/auvergne-2005-2012.yaml]
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TWIN = [sys.executable, "-m", "twin.cli", "run"]


def descendants(pid: int) -> set[int]:
    """Processes whose parent chain leads to ``pid``."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    """Running and not a zombie."""
    stat = Path(f"/proc/{pid}/stat")
    try:
        return ") Z " not in stat.read_text()
    except OSError:
        return False


def one_signal(scenario: Path, folder: Path, delay_s: float, sig: signal.Signals) -> list[str]:
    """Run, signal after ``delay_s``, and list what broke a promise."""
    proc = subprocess.Popen([*TWIN, str(scenario), "-r", "10", "--jobs", "2", "--out", str(folder), "--no-plots"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay_s)
    if proc.poll() is None:
        proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=600)
    problems = []
    if proc.returncode not in (0, 128 + sig.value):
        problems.append(f"exit {proc.returncode}")
    if "Traceback" in stderr:
        problems.append("traceback: " + stderr[stderr.index("Traceback"):][:200])
    manifest_path = folder / "manifest.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        kept = len(list((folder / "replications").glob("*.json"))) if (folder / "replications").exists() else 0
        if manifest.get("status") == "running":
            problems.append("manifest left running")
        if manifest.get("replications_done") != kept:
            problems.append(f"manifest says {manifest.get('replications_done')} done, {kept} on disk")
        if kept and not (folder / "summary.json").exists():
            problems.append("no summary")
    return problems


def one_kill(scenario: Path, folder: Path, delay_s: float) -> list[str]:
    """Run, kill -9 after ``delay_s``, and list the processes still alive 5 s later."""
    proc = subprocess.Popen([*TWIN, str(scenario), "-r", "10", "--jobs", "2", "--out", str(folder), "--no-plots"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay_s)
    family = descendants(proc.pid)
    proc.kill()
    proc.wait()
    time.sleep(5)
    left = [p for p in family if alive(p)]
    return [f"{len(left)} of {len(family)} processes alive 5 s after kill -9"] if left else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "auvergne-2005-2012.yaml")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([*TWIN, str(args.scenario), "-r", "10", "--jobs", "2", "--out", f"{tmp}/timing", "--no-plots"],
                       capture_output=True, check=True)
        typical = time.perf_counter() - start
        print(f"a whole run takes {typical:.1f} s; signals at uniform moments in [0, {typical:.1f}] s")
        failures = 0
        for i in range(args.runs):
            sig = rng.choice([signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
            delay = rng.uniform(0.0, typical)
            problems = one_signal(args.scenario, Path(tmp) / f"run{i}", delay, sig)
            failures += bool(problems)
            print(f"run {i:2d}: {sig.name:7s} at {delay:5.1f} s: {'ok' if not problems else '; '.join(problems)}")
        for i in range(args.kills):
            delay = rng.uniform(2.0, typical)
            problems = one_kill(args.scenario, Path(tmp) / f"kill{i}", delay)
            failures += bool(problems)
            print(f"kill {i}: SIGKILL at {delay:5.1f} s: {'ok' if not problems else '; '.join(problems)}")
    print(f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
