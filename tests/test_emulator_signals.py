"""Issue 17's signal policy for ``twin emulate``: SIGINT, SIGTERM and SIGHUP end it with 128 + the signal,
one line on stderr naming the folder, the measured part kept (result.json, "interrupted": true), never an
empty folder, no traceback from any thread or worker. Each test waits for a state the command reports
(TWIN_PROGRESS_FILE) and, where the moment is short, makes the command wait there (TWIN_PAUSE_AT), so no
test races the command or a clock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WAIT_S = 120.0


def _start(tmp_path: Path, clock: str, duration_s: float, pause_at: str | None = None) -> tuple[subprocess.Popen, Path]:
    progress = tmp_path / "progress"
    env = {**os.environ, "TWIN_PROGRESS_FILE": str(progress)}
    env.pop("TWIN_PAUSE_AT", None)
    if pause_at:
        env["TWIN_PAUSE_AT"] = pause_at
    cmd = [sys.executable, "-m", "twin.cli", "emulate", "--clock", clock, "--duration-s", str(duration_s),
           "--scan-kb", "10", "--print-kb", "10", "--out", str(tmp_path / "out")]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, progress


def _wait_for(progress: Path, phase: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if progress.exists() and phase in progress.read_text().split():
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"the command never reached {phase}")


def _finish(proc: subprocess.Popen, sig: int) -> tuple[int, str]:
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=WAIT_S)
    assert "Traceback" not in err, err
    return proc.returncode, err


@pytest.mark.parametrize("clock, sig", [("virtual", signal.SIGTERM), ("real", signal.SIGINT)])
def test_a_signal_during_the_call_keeps_the_measured_part(tmp_path, clock, sig):
    proc, progress = _start(tmp_path, clock, 300)
    _wait_for(progress, "media", proc)
    code, err = _finish(proc, sig)
    assert code == 128 + sig
    [line] = err.strip().splitlines()
    out = tmp_path / "out"
    assert str(out) in line and signal.Signals(sig).name in line
    data = json.loads((out / "result.json").read_text())
    assert data["interrupted"] is True and data["end"]["cause"] == "interrupted"
    assert data["end"]["evidence"]["signal"] == signal.Signals(sig).name
    assert 0 < data["duration_s"] < 300
    assert (out / "timeseries.png").exists()


def test_a_signal_before_the_call_leaves_no_folder(tmp_path):
    proc, progress = _start(tmp_path, "virtual", 4, pause_at="folder")
    _wait_for(progress, "folder", proc)
    code, err = _finish(proc, signal.SIGHUP)
    assert code == 129
    [line] = err.strip().splitlines()
    assert "SIGHUP" in line and "nothing measured" in line
    assert not (tmp_path / "out").exists()


def test_a_signal_just_after_the_call_keeps_the_whole_call(tmp_path):
    """The finished call is written whole (the signal waits), then the command exits 130."""
    proc, progress = _start(tmp_path, "virtual", 4, pause_at="call-finished")
    _wait_for(progress, "call-finished", proc)
    code, err = _finish(proc, signal.SIGINT)
    assert code == 130
    [line] = err.strip().splitlines()
    assert "the whole call" in line
    data = json.loads((tmp_path / "out" / "result.json").read_text())
    assert data["interrupted"] is False and data["duration_s"] == 4.0 and data["end"]["cause"] == "completed"


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_coding_workers_set_a_parent_death_signal(tmp_path):
    """PR_SET_PDEATHSIG: the kernel kills a worker when its parent dies (kill -9 included); read back
    from /proc/<worker>/status is not possible, so the call's workers are checked through prctl's
    getter in a worker of this process."""
    import multiprocessing

    from emulators.coding_worker import die_with_parent

    def child(queue):
        import ctypes

        die_with_parent()
        value = ctypes.c_int()
        ctypes.CDLL(None).prctl(2, ctypes.byref(value), 0, 0, 0)  # PR_GET_PDEATHSIG
        queue.put(value.value)

    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    p = ctx.Process(target=child, args=(queue,))
    p.start()
    assert queue.get(timeout=30) == signal.SIGKILL
    p.join()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_a_calibration_keeps_the_finished_rows_and_ends_it(tmp_path, sig):
    """``twin calibrate`` signalled once its first rows are written (the whole process group, as a
    terminal's Ctrl-C does): it ends (it used to print "interrupted" and wait forever on its process
    pool), with 128 + the signal, no traceback from any process, the finished rows kept, no process left."""
    out = tmp_path / "cal"
    cmd = [sys.executable, "-m", "twin.cli", "calibrate", "--lines", "adsl-2048-256@1500/2", "--profiles", "gen1",
           "--seeds", "4", "--duration-s", "3", "--jobs", "2", "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    csv_path = out / "calibration.csv"
    deadline = time.monotonic() + WAIT_S
    while not (csv_path.exists() and csv_path.stat().st_size):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    os.killpg(proc.pid, sig)
    _, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 128 + sig and "Traceback" not in err, err
    rows = csv_path.read_text().splitlines()
    assert len(rows) >= 3 and rows[0].startswith("profile,line")  # a header and a finished group of two calls
    def session() -> list[str]:
        return subprocess.run(["pgrep", "-s", str(proc.pid)], capture_output=True, text=True, check=False).stdout.split()

    while session():  # children and their coding workers die with their parents, an instant later
        assert time.monotonic() < deadline + WAIT_S, [Path(f"/proc/{p}/cmdline").read_text() for p in session()]
        time.sleep(0.1)
