"""``twin compare`` of three Auvergne runs: the code before issue 13 against today's, in the same session.

Makes (or reuses, ``--runs-dir``) three run folders with today's ``twin run``: the historical network
extended to 2011 as the status quo (``auvergne-2008.yaml --until 2011``), generation 2 everywhere from
2007 (``auvergne-gen2-2007.yaml --until 2011``) and the planner's upgrade plan (``twin plan upgrades``,
2010-2011). Then times ``twin compare`` of the three, alternating the old code (the ``twin`` package of
``--old-rev``, extracted with ``git archive`` and put first on ``PYTHONPATH``) and the new one, each as
a fresh process (imports included, as a user runs it), and prints both medians and their ratio.

    .venv/bin/python benchmarks/bench_compare.py [--replications 5] [--repeats 3] [--old-rev 376f492]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The last commit before issue 13's comparison (phase alignment, Welch, figures redrawn by compare).
OLD_REV = "376f492"


def _twin(args: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> tuple[float, float]:
    """Run ``python -m twin.cli ARGS``; returns its wall time and CPU time (user + system), s (raises on a
    non-zero exit)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "twin.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"twin {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return elapsed, cpu


def make_runs(folder: Path, replications: int) -> list[Path]:
    """The three Auvergne run folders (made once; reused when present)."""
    folder.mkdir(parents=True, exist_ok=True)
    plan = folder / "upgrades.yaml"
    if not plan.is_file():
        _twin(["plan", "upgrades", "scenarios/auvergne-2008.yaml", "-o", str(plan)])
    specs = [("hist", ["scenarios/auvergne-2008.yaml", "--until", "2011"]),
             ("gen2", ["scenarios/auvergne-gen2-2007.yaml", "--until", "2011"]),
             ("upgrades", [str(plan)])]
    runs = []
    for name, args in specs:
        out = folder / name
        if not (out / "summary.json").is_file():
            print(f"twin run {' '.join(args)} ({replications} replications) ...", flush=True)
            _twin(["run", *args, "-r", str(replications), "--jobs", "1", "--out", str(out), "--force"])
        runs.append(out)
    return runs


def old_tree(rev: str, into: Path) -> Path:
    """The ``twin`` package of commit ``rev``, extracted under ``into``."""
    archive = into / "old.tar"
    with archive.open("wb") as handle:
        subprocess.run(["git", "-C", str(ROOT), "archive", rev, "twin"], stdout=handle, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "old", filter="data")
    return into / "old"


def main(argv: list[str] | None = None) -> None:
    """Time old against new compare and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replications", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--old-rev", default=OLD_REV)
    parser.add_argument("--runs-dir", type=Path, default=None, help="where the three runs are made (kept)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp_text:
        tmp = Path(tmp_text)
        runs = make_runs(args.runs_dir or tmp / "runs", args.replications)
        old = old_tree(args.old_rev, tmp)
        env_old = {**os.environ, "PYTHONPATH": str(old)}
        probe = subprocess.run([sys.executable, "-c", "import twin, sys; print(twin.__file__)"], env=env_old,
                               cwd=tmp, capture_output=True, text=True, check=True).stdout.strip()
        assert probe.startswith(str(old)), f"the old tree is not the one imported: {probe}"
        times: dict[str, list[float]] = {"old": [], "new": []}
        cpus: dict[str, list[float]] = {"old": [], "new": []}
        for i in range(args.repeats):
            for which, env in (("old", env_old), ("new", None)):
                out = tmp / f"cmp-{which}-{i}"
                # from a neutral folder: python puts the current folder first on sys.path
                wall, cpu = _twin(["compare", *(str(r.resolve()) for r in runs), "--out", str(out)], env=env,
                                  cwd=tmp)
                times[which].append(wall)
                cpus[which].append(cpu)
                shutil.rmtree(out, ignore_errors=True)
        print(f"twin compare of 3 Auvergne runs ({args.replications} replications, 2005-2011), "
              f"median of {args.repeats}, each a fresh process (wall time; CPU time = user + system):")
        for which, name in (("old", f"old ({args.old_rev})"), ("new", "new (this tree)")):
            print(f"  {name}: wall {statistics.median(times[which]):.2f} s, CPU {statistics.median(cpus[which]):.2f} s"
                  f"  (walls: {', '.join(f'{t:.2f}' for t in times[which])})")
        wall = statistics.median(times["new"]) / statistics.median(times["old"])
        cpu = statistics.median(cpus["new"]) / statistics.median(cpus["old"])
        print(f"  new / old: wall {wall:.2f}, CPU {cpu:.2f} (target: at most 0.50)")


if __name__ == "__main__":
    main()
