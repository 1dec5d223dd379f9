"""Reliability of runs: signals at any moment, no orphan processes after kill -9, resumed runs identical
to uninterrupted ones, truthful manifests. Every test waits for a state (a file appearing, a process
gone), never for a time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

from twin.run.folder import read_manifest, run_state
from twin.run.runner import run_scenario

TINY = ROOT / "scenarios" / "tiny.yaml"
AUVERGNE = ROOT / "scenarios" / "auvergne-2008.yaml"
TWIN = [sys.executable, "-m", "twin.cli"]


def _wait_for(predicate, what: str, limit_s: float = 240.0) -> None:
    """Poll a state (generous limit: it only bounds a hang, it is not what the test measures)."""
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)


def _descendants(pid: int) -> set[int]:
    """Every process whose parent chain leads to ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        children = {p for p, parent in parents.items() if parent in frontier}
        frontier = children - found
        found |= children
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return ") Z " not in Path(f"/proc/{pid}/stat").read_text()  # a zombie is gone
    except OSError:  # it ended between the two looks
        return False


@pytest.mark.parametrize("sig, status", [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_a_signal_during_the_replications_keeps_them_and_tells_the_truth(tmp_path: Path, sig, status) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen([*TWIN, "run", str(TINY), "-r", "30", "--jobs", "1", "--out", str(out), "--no-plots"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: (out / "replications" / "0000.json").exists(), "a first replication")
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == status, stderr
    assert "Traceback" not in stderr and f"twin run --resume {out}" in stderr
    manifest = read_manifest(out)
    assert manifest["status"] == "interrupted" and manifest["stopped_by"] == sig.name
    kept = len(list((out / "replications").glob("*.json")))
    assert kept == manifest["replications_done"] >= 1
    assert json.loads((out / "summary.json").read_text())["summary"]["pilot"]["interviews_served"]["n"] == kept


def test_kill_9_leaves_no_worker_alive_and_the_run_reads_abandoned(tmp_path: Path) -> None:
    out = tmp_path / "killed"
    proc = subprocess.Popen([*TWIN, "run", str(AUVERGNE), "-r", "20", "--jobs", "2", "--out", str(out), "--no-plots"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(lambda: (out / "replications" / "0000.json").exists(), "a first replication")
    family = _descendants(proc.pid)
    assert family, "the run has worker processes"
    proc.kill()
    proc.wait()
    _wait_for(lambda: not any(_alive(p) for p in family), "every worker gone", limit_s=60)
    assert read_manifest(out)["status"] == "running" and run_state(read_manifest(out)) == "abandoned"


def test_a_killed_run_resumed_equals_an_uninterrupted_one(tmp_path: Path) -> None:
    whole = run_scenario(TINY, replications=6, seed=9, jobs=1, out_dir=tmp_path / "whole", records=True)
    out = tmp_path / "resumed"
    proc = subprocess.Popen([*TWIN, "run", str(TINY), "-r", "6", "-s", "9", "--jobs", "1", "--records",
                             "--out", str(out), "--no-plots"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(lambda: (out / "replications" / "0002.json").exists(), "three replications")
    proc.kill()
    proc.wait()
    assert run_state(read_manifest(out)) == "abandoned"
    done = subprocess.run([*TWIN, "run", "--resume", str(out), "--jobs", "1", "--no-plots"], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    for name in ("summary.json", "replications.csv", "replications_by_year.csv", "sites.csv"):
        assert (out / name).read_bytes() == (whole.folder / name).read_bytes(), name
    for rep in range(6):
        name = f"replications/{rep:04d}.json"
        assert (out / name).read_bytes() == (whole.folder / name).read_bytes(), name
    manifest = read_manifest(out)
    assert manifest["status"] == "complete" and len(manifest["resumed_utc"]) == 1
    again = subprocess.run([*TWIN, "run", "--resume", str(out)], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and (out / "summary.json").read_bytes() == (whole.folder / "summary.json").read_bytes()


def test_a_resumed_run_names_its_data_files_as_the_run_did(tmp_path: Path, monkeypatch) -> None:
    """Resumed from where it was started, a run given a relative scenario path reads it by that path, so
    the sources in quality.csv (the calibration table's path) are written as they were; from elsewhere,
    by its absolute path."""
    from twin.run.runner import _resume_scenario
    from twin.scenario.loading import load_scenario

    monkeypatch.chdir(ROOT)
    relative = "scenarios/auvergne-2008.yaml"
    manifest = {"scenario_file": relative, "scenario_file_absolute": str(AUVERGNE),
                "scenario_sha256": load_scenario(relative).sha256}
    loaded, _ = _resume_scenario(tmp_path, manifest)
    assert loaded.calibration.path == "scenarios/data/auvergne-calibration.csv"
    monkeypatch.chdir(tmp_path)
    loaded, _ = _resume_scenario(tmp_path, manifest)
    assert loaded.calibration.path == str(ROOT / "scenarios" / "data" / "auvergne-calibration.csv")


def test_resume_refuses_a_changed_scenario_and_a_live_run(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.yaml"
    text = TINY.read_text().replace("data/auvergne-communes.csv", str(TINY.parent / "data" / "auvergne-communes.csv"))
    scenario.write_text(text)

    def stop_after_one(done: int, total: int) -> None:
        raise KeyboardInterrupt

    partial = run_scenario(scenario, replications=3, jobs=1, out_dir=tmp_path / "p", on_replication=stop_after_one)
    assert partial.interrupted and read_manifest(partial.folder)["status"] == "interrupted"
    scenario.write_text(text + "\n# changed\n")
    proc = subprocess.run([*TWIN, "run", "--resume", str(partial.folder)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "has changed" in proc.stderr and "Traceback" not in proc.stderr
    manifest = read_manifest(partial.folder)
    manifest.update(status="running", pid=os.getpid())
    (partial.folder / "manifest.json").write_text(json.dumps(manifest))
    proc = subprocess.run([*TWIN, "run", "--resume", str(partial.folder)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "still running" in proc.stderr


def test_a_plot_failure_is_named_and_the_manifest_says_the_plots_are_missing(tmp_path: Path) -> None:
    import errno

    def full_disk(folder, phases, summary, title):
        raise OSError(errno.ENOSPC, "No space left on device", str(folder / "rollout.png"))

    with pytest.raises(OSError) as info:
        run_scenario(TINY, replications=2, jobs=1, out_dir=tmp_path / "run", plot=full_disk)
    assert info.value.filename.endswith("rollout.png")
    manifest = read_manifest(tmp_path / "run")
    assert manifest["status"] == "interrupted" and manifest["plots"].startswith("missing: No space left")
    assert manifest["replications_done"] == 2 and (tmp_path / "run" / "summary.json").exists()


def test_a_signal_while_the_figures_are_drawn_lets_them_finish(tmp_path: Path) -> None:
    """A SIGTERM arriving in the last step: the figures are finished, the manifest says complete and
    stopped_by, and the run reports the interruption (the CLI exits 143)."""
    def plot_and_get_signalled(folder, phases, summary, title):
        os.kill(os.getpid(), signal.SIGTERM)
        (folder / "drawn.png").write_bytes(b"png")
        return [folder / "drawn.png"]

    outcome = run_scenario(TINY, replications=2, jobs=1, out_dir=tmp_path / "run", plot=plot_and_get_signalled)
    manifest = read_manifest(outcome.folder)
    assert outcome.interrupted and outcome.signum == signal.SIGTERM
    assert manifest["status"] == "complete" and manifest["plots"] == "written" and manifest["stopped_by"] == "SIGTERM"


@pytest.mark.parametrize("sig, status, line", [(signal.SIGTERM, 143, "interrupted by SIGTERM"),
                                               (signal.SIGHUP, 129, "interrupted by SIGHUP"),
                                               (signal.SIGINT, 130, "interrupted")])
def test_a_signal_before_the_command_handles_signals_keeps_the_policy(twin_cli, monkeypatch, sig, status, line):
    """A signal while ``twin run`` imports or loads (before it handles signals itself) ends with 128 + the
    signal and one line, not click's blank line and "aborted" with 130 whatever the signal."""
    from twin.run import runner
    from twin.run.signals import Interrupted

    def stopped(*args, **kwargs):
        raise Interrupted(sig) if sig != signal.SIGINT else KeyboardInterrupt

    monkeypatch.setattr(runner, "run_scenario", stopped)
    code, stdout, stderr = twin_cli("run", TINY)
    assert (code, stderr, stdout) == (status, line + "\n", "")


def _signal_at(sig: int):
    """A stand-in that raises what the entry point's handler raises when ``sig`` arrives."""
    from twin.run.signals import Interrupted

    def arrives(*args, **kwargs):
        raise Interrupted(sig) if sig != signal.SIGINT else KeyboardInterrupt

    return arrives


@pytest.mark.parametrize("sig, status, line", [(signal.SIGTERM, 143, "interrupted by SIGTERM"),
                                               (signal.SIGINT, 130, "interrupted")])
def test_a_signal_while_the_entry_point_starts_keeps_the_policy(twin_cli, monkeypatch, sig, status, line):
    """Found by benchmarks/stress_signals.py: a SIGTERM 0.15 s after ``twin emulate`` started, while the
    entry point imported rich, printed a traceback (that import was outside the handled block)."""
    import twin.cli.app

    monkeypatch.setattr(twin.cli.app, "_quiet_broken_pipes", _signal_at(sig))
    assert twin_cli("run", TINY) == (status, "", line + "\n")


def test_a_signal_while_click_parses_keeps_the_policy(twin_cli, monkeypatch):
    """A signal while click parses the command line: 129 and one line, not click's blank line and
    "aborted" with 130."""
    import click

    monkeypatch.setattr(click.Group, "parse_args", _signal_at(signal.SIGHUP))
    assert twin_cli("run", TINY) == (129, "", "interrupted by SIGHUP\n")


def test_a_signal_in_clicks_own_steps_keeps_the_status(twin_cli, monkeypatch):
    """Anywhere else in click (its context's teardown here), click turns the signal into Abort: the
    status and the line still name the signal."""
    import click

    monkeypatch.setattr(click.Context, "_close_with_exception_info", _signal_at(signal.SIGTERM))
    code, _, stderr = twin_cli("schema")
    assert code == 143 and stderr.strip() == "interrupted by SIGTERM"


# The signal arrives, for real, when the command imports click (the first heavy import of the CLI).
_SIGNAL_AT_CLICK = """
import builtins, os, sys
real_import, sig = builtins.__import__, int(sys.argv[1])
def importing(name, *args, **kwargs):
    if name == "click" and "click" not in sys.modules:
        os.kill(os.getpid(), sig)
    return real_import(name, *args, **kwargs)
builtins.__import__ = importing
sys.argv = ["twin", "schema"]
from twin.cli import main
main()
"""


@pytest.mark.parametrize("sig, status, line", [(signal.SIGTERM, 143, "interrupted by SIGTERM"),
                                               (signal.SIGINT, 130, "interrupted")])
def test_a_signal_while_the_cli_imports_keeps_the_policy(sig, status, line) -> None:
    """Found by benchmarks/stress_signals.py: importing ``twin.cli`` imported click before the entry point
    handled signals, and a Ctrl-C in those 0.05-0.15 s printed a KeyboardInterrupt traceback (SIGTERM
    and SIGHUP killed the process). The entry point now handles them before importing anything heavy."""
    proc = subprocess.run([sys.executable, "-c", _SIGNAL_AT_CLICK, str(int(sig))], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert (proc.returncode, proc.stderr, proc.stdout) == (status, line + "\n", "")


# The command holds at its exit until the test has signalled it: ``hold`` is registered before ``twin``'s
# entry point runs, so it runs after everything the command registered (atexit is last in, first out),
# when the command's outcome is decided and the interpreter is about to tear down.
_HOLD_AT_EXIT = """
import atexit, pathlib, sys, time
marker, go = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
def hold():
    marker.touch()
    deadline = time.monotonic() + 120
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
atexit.register(hold)
sys.argv = ["twin", "schema"]
from twin.cli import main
main()
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_after_the_command_ended_changes_nothing(tmp_path: Path, sig) -> None:
    """A finished command keeps its exit status: the stop signals are ignored once it has ended. (Found by
    benchmarks/stress_signals.py: Python resets its handlers to the default action while it tears down,
    0.6 s after an emulated call, and a SIGHUP then killed a call already written, exit -1.)"""
    marker, go = tmp_path / "exiting", tmp_path / "go"
    proc = subprocess.Popen([sys.executable, "-c", _HOLD_AT_EXIT, str(marker), str(go)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: marker.exists() or proc.poll() is not None, "the command reaches its exit")
    proc.send_signal(sig)
    go.touch()
    _, stderr = proc.communicate(timeout=120)
    assert (proc.returncode, stderr) == (0, "")
