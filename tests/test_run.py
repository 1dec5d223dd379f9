"""`twin run`: run folders, reproducibility whatever --jobs, interruption, the Auvergne calibration."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from twin.kpis import kpi_names
from twin.presentation.plots import write_rollout_plots
from twin.run.folder import read_run
from twin.run.runner import compile_scenario, run_replication, run_scenario

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "scenarios" / "tiny.yaml"
AUVERGNE = ROOT / "scenarios" / "auvergne-2008.yaml"


def test_same_seed_same_summary_whatever_jobs(tmp_path: Path) -> None:
    a = run_scenario(TINY, replications=4, seed=11, jobs=1, out_dir=tmp_path / "a")
    b = run_scenario(TINY, replications=4, seed=11, jobs=2, out_dir=tmp_path / "b")
    assert (a.folder / "summary.json").read_bytes() == (b.folder / "summary.json").read_bytes()
    assert (a.folder / "replications.csv").read_bytes() == (b.folder / "replications.csv").read_bytes()
    c = run_scenario(TINY, replications=4, seed=12, jobs=1, out_dir=tmp_path / "c")
    assert (a.folder / "summary.json").read_bytes() != (c.folder / "summary.json").read_bytes()


def test_replications_are_independent_streams() -> None:
    _, inputs = compile_scenario(TINY)
    seeds = np.random.SeedSequence(5).spawn(2)
    first, second = (run_replication(inputs, s) for s in seeds)
    assert first != second
    assert run_replication(inputs, np.random.SeedSequence(5).spawn(2)[0]) == first


def test_run_folder_contents(tmp_path: Path) -> None:
    outcome = run_scenario(TINY, replications=3, seed=1, jobs=1, out_dir=tmp_path / "run", plot=write_rollout_plots)
    folder = outcome.folder
    manifest = json.loads((folder / "manifest.json").read_text())
    for key in ("scenario_sha256", "seed", "replications_requested", "replications_done", "versions",
                "git_commit", "started_utc", "ended_utc", "status"):
        assert key in manifest
    assert manifest["status"] == "complete" and manifest["replications_done"] == 3
    assert (folder / "plots" / "rollout.png").stat().st_size > 10_000
    run = read_run(folder)
    assert [p["name"] for p in run.phases] == ["pilot", "extension"]
    rows = (folder / "replications.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 3 * 2 * len(kpi_names(("anpe", "caf")))
    for phase in ("pilot", "extension"):
        cell = run.summary[phase]["interviews_served"]
        values = run.replications[phase]["interviews_served"]
        assert cell["n"] == 3 and cell["mean"] == pytest.approx(np.mean(values))
        assert cell["ci95_half_width"] > 0


def test_interrupted_run_keeps_finished_replications(tmp_path: Path) -> None:
    def stop_after_two(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    outcome = run_scenario(TINY, replications=5, seed=3, jobs=1, out_dir=tmp_path / "run",
                           on_replication=stop_after_two)
    assert outcome.interrupted and outcome.replications_done == 2
    manifest = json.loads((outcome.folder / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["replications_done"] == 2
    assert read_run(outcome.folder).summary["pilot"]["interviews_served"]["n"] == 2


def test_cli_run_prints_folder_last(tmp_path: Path) -> None:
    out = tmp_path / "cli-run"
    proc = subprocess.run([sys.executable, "-m", "twin.cli", "run", str(TINY), "-r", "2", "--jobs", "1",
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == str(out)
    assert "interviews" in proc.stdout


def test_cli_refuses_non_empty_output_folder(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("precious")
    proc = subprocess.run([sys.executable, "-m", "twin.cli", "run", str(TINY), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "not empty" in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "keep.txt").read_text() == "precious"


def test_auvergne_2007_matches_the_seed_article(tmp_path: Path) -> None:
    """The seed article reports about 2,700 interviews in 2007: the calibrated scenario is within 10%."""
    outcome = run_scenario(AUVERGNE, replications=3, jobs=2, out_dir=tmp_path / "auvergne")
    served_2007 = outcome.summary["2007"]["interviews_served"]["mean"]
    assert 0.9 * 2700 <= served_2007 <= 1.1 * 2700
    assert outcome.summary["target-end-2008"]["user_kiosks"]["mean"] == 58
    assert outcome.summary["target-end-2008"]["expert_kiosks"]["mean"] == 42
    assert outcome.summary["2006"]["user_kiosks"]["mean"] == 18


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = next(line for line in ci.splitlines() if line.startswith("python3 -m venv"))
    assert f"\n{command}\n" in readme
    assert "twin run scenarios/auvergne-2005-2012.yaml" in readme


def test_interrupt_before_any_replication_exits_cleanly(tmp_path: Path) -> None:
    """Ctrl-C while the workers are still starting: no traceback, no hang, an interrupted run folder.
    The signal is sent once the manifest names the engine (the workers' start-up, during which terminal
    signals are left to the parent, is over), a state, never a time: a loaded machine cannot make it
    flake."""
    import signal

    from conftest import wait_for

    out = tmp_path / "early"
    proc = subprocess.Popen([sys.executable, "-m", "twin.cli", "run", str(AUVERGNE), "-r", "20", "--jobs", "2",
                             "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def engine_started() -> bool:
        assert proc.poll() is None, proc.communicate()
        try:
            return "engine" in json.loads((out / "manifest.json").read_text())
        except (OSError, ValueError):
            return False

    wait_for(engine_started, "the run's engine started")
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    assert (out / "summary.json").exists()


def test_report_never_overwrites_other_files(tmp_path: Path) -> None:
    outcome = run_scenario(TINY, replications=2, seed=1, jobs=1, out_dir=tmp_path / "run")
    summary = (outcome.folder / "summary.json").read_bytes()
    for target in (outcome.folder / "summary.json", tmp_path / "notes.html"):
        if target.suffix == ".html":
            target.write_text("my own notes")
        proc = subprocess.run([sys.executable, "-m", "twin.cli", "report", str(outcome.folder), "--out", str(target)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert (outcome.folder / "summary.json").read_bytes() == summary
    assert (tmp_path / "notes.html").read_text() == "my own notes"
    again = [sys.executable, "-m", "twin.cli", "report", str(outcome.folder)]
    assert subprocess.run(again, capture_output=True, timeout=300).returncode == 0
    assert subprocess.run(again, capture_output=True, timeout=300).returncode == 2  # no overwrite without --force
    assert subprocess.run([*again, "--force"], capture_output=True, timeout=300).returncode == 0  # its own: replaced


def test_a_reader_that_goes_away_ends_twin_quietly_with_141(tmp_path):
    """`twin run ... | head -1`: the rich tables meet a closed pipe; twin stops with the quiet 141 (rich's
    own handler exited with 1), no traceback. The pipe is closed before twin writes anything."""
    import os
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "twin.cli", "run", str(ROOT / "scenarios" / "tiny.yaml"), "-r", "1",
                               "-j", "1", "--no-plots", "--out", str(tmp_path / "run")], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=300, check=False)
    finally:
        os.close(write_end)
    assert proc.returncode == 141, proc.stderr
    assert "Traceback" not in proc.stderr
    assert (tmp_path / "run" / "summary.json").is_file()  # the run itself was kept
