"""Sweeps: a grid of overrides, every point a run folder, one table; validated before anything runs,
the same table whatever the number of workers, resumable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from twin.run.folder import read_run
from twin.run.runner import run_scenario
from twin.run.sweep import apply_override, run_sweep

TINY = ROOT / "scenarios" / "tiny.yaml"
TWIN = [sys.executable, "-m", "twin.cli"]


def _sweep(tmp_path: Path, **changes) -> Path:
    spec = {"name": "tiny-grid", "scenario": str(TINY), "replications": 3, "seed": 5,
            "grid": {"services.anpe.need_per_capita_per_year": [0.3, 0.6], "demand.kiosk_uptake": [0.05, 0.1]}}
    spec.update(changes)
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_a_point_is_the_run_of_its_scenario(tmp_path: Path) -> None:
    """Each point's folder is a normal run folder, equal to `twin run` of the overridden scenario."""
    outcome = run_sweep(_sweep(tmp_path), jobs=1, out_dir=tmp_path / "sweep")
    assert len(outcome.points) == 4 and [p.id for p in outcome.points] == ["p000", "p001", "p002", "p003"]
    data = yaml.safe_load(TINY.read_text())
    data["region"]["communes_file"] = str(TINY.parent / data["region"]["communes_file"])
    apply_override(data, "services.anpe.need_per_capita_per_year", 0.6)
    apply_override(data, "demand.kiosk_uptake", 0.05)
    scenario = tmp_path / "p002.yaml"
    scenario.write_text(yaml.safe_dump(data))
    alone = run_scenario(scenario, replications=3, seed=5, out_dir=tmp_path / "alone")
    assert read_run(outcome.folder / "points" / "p002").summary == read_run(alone.folder).summary
    table = (outcome.folder / "table.csv").read_text().splitlines()
    assert table[0].startswith("point,services.anpe.need_per_capita_per_year,demand.kiosk_uptake,period_kind,period")
    assert (outcome.folder / "table.parquet").stat().st_size > 0
    assert not (outcome.folder / "plots").exists()  # figures only when a plotter is passed (the CLI's)


def test_same_table_with_one_and_two_workers_and_nothing_rerun(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path)
    one = run_sweep(sweep, jobs=1, out_dir=tmp_path / "one")
    two = run_sweep(sweep, jobs=2, out_dir=tmp_path / "two")
    assert (one.folder / "table.csv").read_bytes() == (two.folder / "table.csv").read_bytes()
    ran = []
    again = run_sweep(sweep, jobs=1, out_dir=tmp_path / "one", on_task=lambda done, total: ran.append(done))
    assert ran == [] and sorted(again.skipped) == ["p000", "p001", "p002", "p003"]
    assert (again.folder / "table.csv").read_bytes() == (one.folder / "table.csv").read_bytes()


def test_an_interrupted_sweep_keeps_what_finished_and_continues(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path)
    whole = run_sweep(sweep, jobs=1, out_dir=tmp_path / "whole")

    def stop_after_five(done: int, total: int) -> None:
        if done == 5:
            raise KeyboardInterrupt

    cut = run_sweep(sweep, jobs=1, out_dir=tmp_path / "cut", on_task=stop_after_five)
    assert cut.interrupted
    kept = sum(len(list((cut.folder / "points" / p.id / "replications").glob("*.json"))) for p in cut.points)
    assert kept == 5
    ran = []
    done = run_sweep(sweep, jobs=1, out_dir=tmp_path / "cut", on_task=lambda d, t: ran.append(d))
    assert len(ran) == 12 - 5 and not done.interrupted
    assert (done.folder / "table.csv").read_bytes() == (whole.folder / "table.csv").read_bytes()


@pytest.mark.parametrize("changes, needle", [
    ({"grid": {"services.nope.agents": [1, 2]}}, "path 'services.nope.agents': no item with id or name 'nope'"),
    ({"grid": {"demand.uptake": [1]}}, "field demand.uptake = 1: unknown field"),
    ({"grid": {"services.anpe.agents": ["lots"]}}, "point 0 (services.anpe.agents=lots) does not validate"),
    ({"grid": {}}, "grid is empty"),
    ({"grid": {"services.anpe.agents": []}}, "grid.services.anpe.agents: no values"),
    ({"grid": {"plan.placement.q": [3]}}, "unknown planner parameter"),
])
def test_bad_sweeps_exit_2_naming_the_problem_before_anything_runs(tmp_path: Path, changes, needle) -> None:
    sweep = _sweep(tmp_path, **changes)
    proc = subprocess.run([*TWIN, "sweep", str(sweep), "--out", str(tmp_path / "out"), "-j", "1"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert needle in proc.stderr
    assert not (tmp_path / "out").exists()


def test_an_unreachable_scheduler_exits_2(tmp_path: Path) -> None:
    proc = subprocess.run([*TWIN, "run", str(TINY), "-r", "1", "--scheduler", "tcp://127.0.0.1:9",
                           "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "cannot reach the Dask scheduler" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("sweep", sorted((ROOT / "scenarios" / "sweeps").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_sweeps_validate(sweep: Path) -> None:
    from twin.run.sweep import read_sweep, sweep_points

    spec, _ = read_sweep(sweep)
    assert len(sweep_points(spec, sweep)) == len(spec.point_values()) >= 2
