"""Issue 17: every write failure names the file that failed (a full disk while writing the summary, the
records, the plots, even the manifest), exits 2 without a traceback, and leaves the manifest truthful:
``interrupted`` with the error, never ``running``. A full disk is simulated at ``fsync`` for the files
named (as the kernel reports ENOSPC at the latest there), so the real writers run."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from conftest import ROOT

from twin.run import atomic
from twin.run.folder import read_manifest

TINY = ROOT / "scenarios" / "tiny.yaml"
_REAL_FSYNC = os.fsync


def _full_disk_for(monkeypatch, *names: str) -> None:
    """The disk fills up when a temporary file of one of ``names`` (atomic writes: ``.<name>.<random>.tmp``)
    is synced: that write and every later atomic write fail with ENOSPC. Overwriting a file's own blocks
    in place (:func:`twin.run.atomic.rewrite_in_place`) still works, as on a real full disk."""
    full = []

    def fsync(fd: int) -> None:
        name = Path(os.readlink(f"/proc/self/fd/{fd}")).name
        if any(name.startswith(f".{n}.") for n in names):
            full.append(name)
        if full and name.startswith(".") and name.endswith(".tmp"):
            raise OSError(errno.ENOSPC, "No space left on device")
        _REAL_FSYNC(fd)

    monkeypatch.setattr(atomic.os, "fsync", fsync)


def test_an_atomic_write_failure_names_the_target_and_leaves_it_untouched(tmp_path, monkeypatch):
    target = tmp_path / "summary.json"
    target.write_text("old")
    _full_disk_for(monkeypatch, "summary.json")
    with pytest.raises(OSError) as info:
        atomic.atomic_write_json(target, {"new": 1})
    assert info.value.filename == str(target) and info.value.errno == errno.ENOSPC
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["summary.json"]
    (tmp_path / "a-file").write_text("")
    with pytest.raises(OSError) as info:
        atomic.atomic_write_text(tmp_path / "a-file" / "x.csv", "x")
    assert info.value.filename == str(tmp_path / "a-file" / "x.csv")


def test_rewrite_in_place_keeps_the_file_and_its_blocks(tmp_path):
    target = tmp_path / "manifest.json"
    target.write_text('{"status": "running", "padding": "' + "x" * 200 + '"}')
    inode = target.stat().st_ino
    atomic.rewrite_in_place(target, atomic.json_bytes({"status": "interrupted"}))
    assert json.loads(target.read_text()) == {"status": "interrupted"} and target.stat().st_ino == inode


@pytest.mark.parametrize("names, failed", [
    (("summary.json",), "summary.json"),
    (("sites.csv",), "sites.csv"),
    (("replications.csv",), "replications.csv"),
    (("replication-0000.parquet",), "records/replication-0000.parquet"),
])
def test_a_full_disk_is_named_and_the_manifest_says_interrupted(tmp_path, monkeypatch, twin_cli, names, failed):
    out = tmp_path / "run"
    _full_disk_for(monkeypatch, *names)
    code, stdout, stderr = twin_cli("run", TINY, "-r", "2", "--jobs", "1", "--records", "--no-plots", "--out", out)
    assert code == 2, stderr
    assert "Traceback" not in stderr
    assert f"cannot write {out / failed}: No space left on device" in stderr, stderr
    manifest = read_manifest(out)  # its atomic write fails too: rewritten in place
    assert manifest["status"] == "interrupted" and manifest["ended_utc"]
    assert manifest["error"] == f"cannot write {out / failed}: No space left on device"


def test_a_full_disk_while_drawing_names_the_figure(tmp_path, monkeypatch, twin_cli):
    out = tmp_path / "run"
    _full_disk_for(monkeypatch, "rollout.png", "coverage.png")
    code, _, stderr = twin_cli("run", TINY, "-r", "2", "--jobs", "1", "--out", out)
    assert code == 2 and "Traceback" not in stderr
    assert f"cannot write {out / 'plots'}" in stderr and ".png: No space left on device" in stderr, stderr
    manifest = read_manifest(out)
    assert manifest["status"] == "interrupted" and manifest["plots"].startswith("missing: No space left")
    assert manifest["replications_done"] == 2 and (out / "summary.json").exists()


def test_a_resumed_run_after_a_full_disk_completes(tmp_path, monkeypatch, twin_cli):
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        _full_disk_for(patch, "sites.csv")
        assert twin_cli("run", TINY, "-r", "2", "--jobs", "1", "--no-plots", "--out", out)[0] == 2
    code, _, stderr = twin_cli("run", "--resume", out, "--jobs", "1", "--no-plots")
    assert code == 0, stderr
    assert read_manifest(out)["status"] == "complete" and (out / "sites.csv").exists()


def test_a_full_disk_in_a_sweep_leaves_no_manifest_running(tmp_path, monkeypatch, twin_cli):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"name: s\nscenario: {TINY}\nreplications: 1\ngrid:\n  demand.kiosk_uptake: [0.04, 0.05]\n")
    out = tmp_path / "sweep"
    _full_disk_for(monkeypatch, "table.csv")
    code, _, stderr = twin_cli("sweep", sweep, "--jobs", "1", "--no-plots", "--out", out)
    assert code == 2 and "Traceback" not in stderr
    assert f"cannot write {out / 'table.csv'}: No space left on device" in stderr, stderr
    manifests = [out / "manifest.json", *sorted((out / "points").glob("*/manifest.json"))]
    assert len(manifests) == 3
    for path in manifests:
        assert json.loads(path.read_text())["status"] != "running", path
    assert json.loads((out / "manifest.json").read_text())["error"].startswith(f"cannot write {out / 'table.csv'}")
