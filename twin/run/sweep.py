"""Sweeps: one base scenario, a grid or list of overrides, every point a normal run folder, all points'
replications as tasks of one engine (in this process or on Dask), and a tidy table of every point x KPI.

A sweep file (YAML)::

    name: anpe-agents
    scenario: auvergne-2005-2012.yaml     # relative to the sweep file
    replications: 5                       # default: the scenario's
    seed: 1                               # default: the scenario's; every point uses it (common random numbers)
    until: 2012                           # optional: extend every point as the status quo (twin run --until)
    grid:                                 # every combination (or ``points:``, a list of mappings)
      services.anpe.agents: [20, 30, 50]
      demand.kiosk_uptake: [0.05, 0.0636]

A **path** is dotted into the scenario's data: mapping keys, and for the lists of services, sites and
phases (and demand drivers) the item's ``id`` or ``name`` (``services.anpe.agents``,
``sites.vorey.line.offer``, ``phases.2009.agents.anpe``), or a list index. Paths under ``plan.`` are
parameters of a planner the CLI applies to each point (``plan.placement.p``); the run layer does not plan.
Every point is validated against the scenario schema (in memory) before anything runs.

The sweep folder (default ``results/sweep-<name>``) holds ``manifest.json`` (the sweep file's SHA-256,
status), ``points.csv`` (point id and its values), ``points/<id>/`` (a normal run folder each),
``table.csv`` and ``table.parquet`` (point, its values, ``period_kind`` phase or year, ``period``, ``kpi``,
``mean``, ``ci95_half_width``, ``n``) and ``plots/``. Running the same sweep again into its folder skips
the complete points and resumes the partial ones; a changed sweep file is refused.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from twin.errors import TwinInputError
from twin.kpis import kpi_names
from twin.model.inputs import prepare
from twin.quality import quality_for_scenario
from twin.run.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text, json_bytes, rewrite_in_place
from twin.run.engine import Engine, Task, engine_for
from twin.run.folder import RunFolder, load_replications, read_manifest
from twin.run.outputs import RESULTS_ROOT, check_output_folder, prepare_output_folder, slug
from twin.run.runner import (
    RunJob,
    RunOutcome,
    RunRecorder,
    close_after_write_failure,
    finish_run,
    new_manifest,
    replication_task,
)
from twin.run.signals import StopRequest, stop_on_signals
from twin.scenario.loading import extended_until, load_scenario, scenario_data, with_data
from twin.scenario.spec import LoadedScenario
from twin.scenario.yaml12 import format_loc, read_yaml_file
from twin.vocabulary import MAX_REPLICATIONS

#: Most points a sweep may have (each is a run folder).
MAX_POINTS = 1000

#: Lists of the scenario whose items a path selects by ``id`` (or ``name`` for phases).
_KEYED_LISTS = {"services": "id", "sites": "id", "phases": "name", "drivers": "id", "observations": None}


class SweepSpec(BaseModel):
    """A sweep file, validated (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """Sweep name (its default folder is results/sweep-<name>)."""
    scenario: str
    """The base scenario file, relative to the sweep file."""
    replications: int | None = Field(default=None, ge=1, le=MAX_REPLICATIONS)
    """Replications per point (default: the scenario's)."""
    seed: int | None = Field(default=None, ge=0)
    """Root seed of every point (default: the scenario's)."""
    until: int | None = Field(default=None, ge=1950, le=2100)
    """Extend every point as the status quo through this year."""
    grid: dict[str, list[Any]] | None = None
    """Path -> values: every combination is a point."""
    points: list[dict[str, Any]] | None = None
    """Explicit points, each a mapping path -> value."""

    @model_validator(mode="after")
    def _grid_or_points(self) -> SweepSpec:
        if (self.grid is None) == (self.points is None):
            raise ValueError("give either grid or points")
        if self.grid is not None:
            if not self.grid:
                raise ValueError("grid is empty: give at least one path and its values")
            for path, values in self.grid.items():
                if not values:
                    raise ValueError(f"grid.{path}: no values")
        if self.points is not None and not self.points:
            raise ValueError("points is empty")
        return self

    def point_values(self) -> list[dict[str, Any]]:
        """Each point's values (grid: every combination, in the grid's order)."""
        if self.points is not None:
            return [dict(p) for p in self.points]
        assert self.grid is not None
        paths = list(self.grid)
        return [dict(zip(paths, combo)) for combo in itertools.product(*(self.grid[p] for p in paths))]


def _select(container: Any, key: str, path: str) -> tuple[Any, Any]:
    """The child of ``container`` named ``key`` and the key to set it with."""
    if isinstance(container, Mapping):
        if key not in container:
            raise KeyError(f"no field {key!r}")
        return container[key], key
    if isinstance(container, list):
        if key.lstrip("-").isdigit():
            i = int(key)
            if not -len(container) <= i < len(container):
                raise KeyError(f"index {i} out of range (0..{len(container) - 1})")
            return container[i], i
        for i, item in enumerate(container):
            if isinstance(item, Mapping) and key in (str(item.get("id")), str(item.get("name"))):
                return item, i
        raise KeyError(f"no item with id or name {key!r}")
    raise KeyError(f"{key!r}: cannot go into a {type(container).__name__}")


def apply_override(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``path`` (see the module docstring) in scenario ``data`` to ``value``, in place.

    Raises:
        KeyError: a path element that does not exist (its message says which).
    """
    parts = path.split(".")
    node: Any = data
    for part in parts[:-1]:
        node, _ = _select(node, part, path)
    last = parts[-1]
    if isinstance(node, Mapping):
        node[last] = value  # type: ignore[index]
    else:
        _, key = _select(node, last, path)
        node[key] = value


@dataclass(frozen=True)
class SweepPoint:
    """One point: its id, its values, and the scenario it runs (validated, compiled later)."""

    id: str
    values: dict[str, Any]
    loaded: LoadedScenario


#: Applies the ``plan.*`` values of a point to its scenario data (the CLI passes the planners in).
Planner = Callable[[LoadedScenario, Mapping[str, Any]], dict[str, Any]]


def read_sweep(path: str | Path) -> tuple[SweepSpec, bytes]:
    """Read and validate a sweep file.

    Raises:
        TwinInputError: unreadable file, not YAML, a field that does not validate (named).
    """
    p = Path(path)
    data, lines, raw = read_yaml_file(p, "sweep")
    if not isinstance(data, dict):
        raise TwinInputError("a sweep file is a YAML mapping (name:, scenario:, grid: ...)", path=str(p))
    try:
        return SweepSpec.model_validate(data), raw
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = tuple(err["loc"])
        line = next((lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in lines), None)
        where = f"line {line}, " if line else ""
        raise TwinInputError(f"{where}field {format_loc(loc)}: {err['msg'].removeprefix('Value error, ')}",
                             path=str(p)) from None


def sweep_points(spec: SweepSpec, sweep_path: Path, planner: Planner | None = None) -> list[SweepPoint]:
    """Every point's scenario, built and validated in memory before anything runs.

    Raises:
        TwinInputError: the base scenario does not load; a path that does not exist in it; a value the
            schema refuses (naming the point, the path and the value); ``plan.`` paths without a planner;
            more than :data:`MAX_POINTS` points.
    """
    base = load_scenario(sweep_path.parent / spec.scenario)
    if spec.until is not None:
        base = extended_until(base, spec.until)
    values = spec.point_values()
    if len(values) > MAX_POINTS:
        raise TwinInputError(f"{len(values)} points: at most {MAX_POINTS}", path=str(sweep_path))
    points = []
    for k, point in enumerate(values):
        data = copy.deepcopy(scenario_data(base))
        plan_values = {p.removeprefix("plan."): v for p, v in point.items() if p.startswith("plan.")}
        for path, value in point.items():
            if path.startswith("plan."):
                continue
            try:
                apply_override(data, path, value)
            except KeyError as exc:
                raise TwinInputError(f"point {k}: path {path!r}: {exc.args[0]}", path=str(sweep_path)) from None
        try:
            loaded = with_data(base, data)
        except TwinInputError as exc:
            raise TwinInputError(f"point {k} ({_label(point)}) does not validate: {exc}", path=str(sweep_path)) from None
        if plan_values:
            if planner is None:
                raise TwinInputError(f"point {k}: plan.* paths need the planners (use twin sweep)",
                                     path=str(sweep_path))
            loaded = with_data(base, planner(loaded, plan_values))
        points.append(SweepPoint(f"p{k:03d}", point, _same_origin(loaded, base)))
    return points


def _same_origin(loaded: LoadedScenario, base: LoadedScenario) -> LoadedScenario:
    import dataclasses

    return dataclasses.replace(loaded, path=base.path)


def _label(point: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.items())


@dataclass(frozen=True)
class SweepOutcome:
    """What :func:`run_sweep` produced: the folder, each point's run outcome, the table rows, and
    whether a signal stopped it (its number)."""

    folder: Path
    points: list[SweepPoint]
    outcomes: dict[str, RunOutcome]
    table: list[dict[str, Any]]
    interrupted: bool
    signum: int | None
    skipped: list[str]


def _point_job(point: SweepPoint, folder: Path, n_rep: int, seed: int, until: int | None,
               fresh: bool) -> RunJob:
    """The run folder of one point, new or reopened with its finished replications."""
    inputs = prepare(point.loaded, quality_for_scenario(point.loaded))
    kpis = kpi_names(inputs.service_ids)
    if fresh:
        run = RunFolder(folder)
        manifest = new_manifest(point.loaded, seed, n_rep, False, until)
        manifest["sweep_point"] = {"id": point.id, "values": point.values}
        run.write_manifest(manifest)
        run.write_phases([{"name": cfg.window.name, "start_date": cfg.window.start_date.isoformat(),
                           "end_date": cfg.window.end_date.isoformat()} for cfg in inputs.phases])
    else:
        run = RunFolder.reopen(folder)
        manifest = read_manifest(folder)
    recorder = RunRecorder(run, manifest, kpis, n_rep, inputs.site_ids, None)
    if not fresh:
        recorder.results.update(load_replications(folder, inputs.site_ids, n_rep,
                                                  [cfg.window.name for cfg in inputs.phases], kpis))
    return RunJob(run, point.loaded, inputs, manifest, np.random.SeedSequence(seed).spawn(n_rep), recorder)


def _prepare_folder(out: Path, raw: bytes, force: bool) -> bool:
    """Make (or keep, for the same sweep) the sweep folder; True when it is a continuation."""
    digest = hashlib.sha256(raw).hexdigest()
    manifest_path = out / "manifest.json"
    if manifest_path.is_file():
        manifest = read_manifest(out)
        if manifest.get("sweep_sha256") == digest:
            return True
        if not force:
            raise TwinInputError("--out holds another sweep (its sweep file differs): use another --out, or --force "
                                 "to replace it", path=str(out))
    check_output_folder(out, force=force)
    prepare_output_folder(out, "sweep", force=force)
    return False


#: Draws a sweep's figures: (plots folder, table rows, swept paths) -> files written.
SweepPlotter = Callable[[Path, Sequence[Mapping[str, Any]], Sequence[str]], Sequence[Path]]


def run_sweep(sweep_path: str | Path, jobs: int = 1, out_dir: str | Path | None = None, force: bool = False,
              scheduler: str | None = None, planner: Planner | None = None, plot: SweepPlotter | None = None,
              on_task: Callable[[int, int], None] | None = None, stop: StopRequest | None = None,
              on_engine: Callable[[Engine], None] | None = None) -> SweepOutcome:
    """Run a sweep (see the module docstring): validate every point, then run the replications of the
    points not complete as tasks of one engine, each point written as a normal run folder.

    Raises:
        TwinInputError: a bad sweep file or point (before anything runs), an --out holding another sweep,
            an unreachable scheduler.
    """
    path = Path(sweep_path)
    spec, raw = read_sweep(path)
    points = sweep_points(spec, path, planner)
    base = points[0].loaded.spec
    n_rep = spec.replications or base.simulation.replications
    seed = base.simulation.seed if spec.seed is None else spec.seed
    out = Path(out_dir) if out_dir is not None else RESULTS_ROOT / f"sweep-{slug(spec.name)}"
    stop = StopRequest() if stop is None else stop
    with stop_on_signals(stop):
        continuing = _prepare_folder(out, raw, force)
        atomic_write_json(out / "manifest.json", {"sweep_file": str(path), "sweep_sha256": hashlib.sha256(raw).hexdigest(),
                                                  "name": spec.name, "points": len(points), "replications": n_rep,
                                                  "seed": seed, "status": "running"})
        atomic_write_text(out / "points.csv", _points_csv(points))
        jobs_by_point: dict[str, RunJob] = {}
        try:
            jobs_by_point, skipped = _point_jobs(points, out, n_rep, seed, spec.until, continuing)
            todo = [(pid, i) for pid, job in jobs_by_point.items() for i in range(n_rep)
                    if i not in job.recorder.results]
            interrupted = _run_tasks(jobs_by_point, todo, engine_for(jobs, scheduler), stop, on_task, on_engine)
            outcomes = {pid: finish_run(job, interrupted or len(job.recorder.results) < n_rep, stop, None)
                        for pid, job in jobs_by_point.items()}
            table = sweep_table(points, jobs_by_point)
            _write_table(out, table)
            if plot is not None and table and not (interrupted or stop.requested):
                plot(out / "plots", table, list(dict.fromkeys(p for point in points for p in point.values)))
        except OSError as exc:  # a file could not be written (a full disk): every manifest says so
            for job in jobs_by_point.values():
                if job.manifest.get("status") == "running":
                    close_after_write_failure(job, exc)
            last = {"sweep_file": str(path), "sweep_sha256": hashlib.sha256(raw).hexdigest(), "name": spec.name,
                    "points": len(points), "replications": n_rep, "seed": seed, "status": "interrupted",
                    "error": f"cannot write {exc.filename}: {exc.strerror or exc}"}
            try:
                atomic_write_json(out / "manifest.json", last)
            except OSError:
                with contextlib.suppress(OSError):
                    rewrite_in_place(out / "manifest.json", json_bytes(last))
            raise
        status = "interrupted" if interrupted or stop.requested else "complete"
        atomic_write_json(out / "manifest.json", {"sweep_file": str(path), "sweep_sha256": hashlib.sha256(raw).hexdigest(),
                                                  "name": spec.name, "points": len(points), "replications": n_rep,
                                                  "seed": seed, "status": status, "skipped_complete": skipped})
    return SweepOutcome(out, points, outcomes, table, interrupted or stop.requested, stop.signum, skipped)


def _point_jobs(points: Sequence[SweepPoint], out: Path, n_rep: int, seed: int, until: int | None,
                continuing: bool) -> tuple[dict[str, RunJob], list[str]]:
    """Each point's run folder (complete ones are kept as they are: listed as skipped)."""
    jobs: dict[str, RunJob] = {}
    skipped: list[str] = []
    for point in points:
        folder = out / "points" / point.id
        fresh = not (continuing and (folder / "manifest.json").is_file())
        if not fresh and read_manifest(folder).get("status") == "complete":
            skipped.append(point.id)
        jobs[point.id] = _point_job(point, folder, n_rep, seed, until, fresh)
    return jobs, skipped


def _run_tasks(jobs: Mapping[str, RunJob], todo: Sequence[tuple[str, int]], engine: Engine, stop: StopRequest,
               on_task: Callable[[int, int], None] | None, on_engine: Callable[[Engine], None] | None) -> bool:
    """Every (point, replication) left, as tasks of one engine; True when stopped early."""
    if on_engine is not None:
        on_engine(engine)
    interrupted = stop.requested
    done = 0
    try:
        if todo and not interrupted:
            shared = {pid: engine.share((job.loaded, job.inputs)) for pid, job in jobs.items()
                      if any(p == pid for p, _ in todo)}
            tasks = [Task(k, replication_task, (shared[pid], jobs[pid].seeds[i], i, False))
                     for k, (pid, i) in enumerate(todo)]

            def record(k: int, output: Any) -> None:
                nonlocal done
                pid, i = todo[k]
                jobs[pid].recorder.record(i, output)
                done += 1
                if on_task is not None:
                    on_task(done, len(todo))

            interrupted = engine.run(tasks, record, stop)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        engine.close()
    return interrupted


def _points_csv(points: Sequence[SweepPoint]) -> str:
    import csv

    paths = list(dict.fromkeys(p for point in points for p in point.values))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["point", *paths])
    for point in points:
        writer.writerow([point.id, *(point.values.get(p, "") for p in paths)])
    return buffer.getvalue()


def sweep_table(points: Sequence[SweepPoint], jobs: Mapping[str, RunJob]) -> list[dict[str, Any]]:
    """The tidy table: one row per point x period (phase or year) x KPI with mean, CI half-width and n
    over the point's replications (the same statistics as each point's summary.json)."""
    from twin.kpis import summarize, summarize_years

    paths = list(dict.fromkeys(p for point in points for p in point.values))
    rows: list[dict[str, Any]] = []
    for point in points:
        results = jobs[point.id].recorder.results
        ordered = [results[i] for i in sorted(results)]
        values = {p: point.values.get(p) for p in paths}
        for kind, summary in (("phase", summarize([r.phases for r in ordered])),
                              ("year", summarize_years([r.years for r in ordered]))):
            for period, cells in summary.items():
                for kpi, cell in cells.items():
                    rows.append({"point": point.id, **values, "period_kind": kind, "period": str(period),
                                 "kpi": kpi, "mean": cell["mean"], "ci95_half_width": cell["ci95_half_width"],
                                 "n": cell["n"]})
    return rows


def _write_table(out: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """table.csv and table.parquet (values as text where a column mixes types)."""
    import csv

    import pyarrow as pa
    import pyarrow.parquet as pq

    if not rows:
        return
    columns = list(rows[0])
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_text(out / "table.csv", buffer.getvalue())
    table = {}
    for column in columns:
        values = [row[column] for row in rows]
        kinds = {type(v) for v in values if v is not None}
        table[column] = values if len(kinds) <= 1 or kinds <= {int, float} else [None if v is None else str(v)
                                                                                 for v in values]
    data = io.BytesIO()
    pq.write_table(pa.table(table), data)
    atomic_write_bytes(out / "table.parquet", data.getvalue())


__all__ = ["MAX_POINTS", "Planner", "SweepOutcome", "SweepPlotter", "SweepPoint", "SweepSpec", "apply_override", "read_sweep",
           "run_sweep", "sweep_points", "sweep_table"]
