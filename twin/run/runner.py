"""Replications of a scenario, written to a run folder as they finish; resumable.

Seeds: the root seed gives a :class:`numpy.random.SeedSequence` whose ``spawn(replications)`` children
are the replications' independent streams (replication i always gets child i), so the numbers do not
depend on the number of workers, on completion order, or on a resumption.

Replications run as tasks of an engine (:mod:`twin.run.engine`: in this process, or on Dask). Each is
written atomically when it finishes (``replications/NNNN.json``, :mod:`twin.run.folder`), and the
aggregates (summary, sites, hindcast) are computed from those files' values: a run interrupted, killed
or resumed (:func:`resume_run`) ends with the same bytes as one that ran straight through.

Signals (:mod:`twin.run.signals`): SIGINT, SIGTERM or SIGHUP at any moment stop the run cleanly: tasks
not started are cancelled, running ones are kept, the summary of what finished is written, figures are
skipped, and the manifest says ``interrupted`` with what is kept and what is missing. The manifest records
the process id and host: a folder left ``running`` by a process that is gone reads as ``abandoned``
(:func:`twin.run.folder.run_state`) and ``twin run --resume`` continues it.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from twin.errors import TwinInputError
from twin.kpis import (
    HindcastRow,
    ReplicationKpis,
    compute_all,
    compute_kpis,
    hindcast,
    kpi_names,
    summarize,
    summarize_departements,
    summarize_full_years,
    summarize_sites,
    summarize_years,
)
from twin.model.inputs import ModelInputs, prepare, quality_sources
from twin.model.records import ReplicationRecords
from twin.model.replication import simulate
from twin.quality import quality_for_scenario
from twin.run.atomic import json_bytes, rewrite_in_place
from twin.run.engine import Engine, Task, engine_for, local_workers
from twin.run.folder import (
    MANIFEST,
    RunFolder,
    git_commit,
    load_replications,
    package_versions,
    read_manifest,
    run_state,
)
from twin.run.outputs import timestamped_path
from twin.run.signals import StopRequest, stop_on_signals
from twin.scenario.loading import extended_until, load_scenario
from twin.scenario.spec import LoadedScenario
from twin.vocabulary import MAX_REPLICATIONS

#: Draws a run's figures: (plots folder, phase names, summary, title) -> files written.
Plotter = Callable[[Path, Sequence[str], Mapping[str, Any], str], Sequence[Path]]


def compile_scenario(path: str | Path, until_year: int | None = None) -> tuple[LoadedScenario, ModelInputs]:
    """Load, validate and compile a scenario file, extended as the status quo through ``until_year``
    when given (:func:`twin.scenario.loading.extended_until`). Raises ScenarioError/TwinInputError on bad
    input."""
    loaded = load_scenario(path)
    if until_year is not None:
        loaded = extended_until(loaded, until_year)
    return loaded, prepare(loaded, quality_for_scenario(loaded))


def run_replication(inputs: ModelInputs, seed: np.random.SeedSequence) -> dict[str, dict[str, float]]:
    """One replication's KPIs per phase ({phase: {kpi: value}})."""
    return compute_kpis(inputs, simulate(inputs, seed))


@dataclass(frozen=True)
class ReplicationOutput:
    """What one replication sends back to the run: its KPIs, and its records table when asked for."""

    kpis: ReplicationKpis
    records: Any = None  # a pyarrow.Table (twin.run.records) with --records


def replication_output(loaded: LoadedScenario, inputs: ModelInputs, seed: np.random.SeedSequence, index: int,
                       keep_records: bool) -> ReplicationOutput:
    """Simulate replication ``index`` and compute everything the run folder keeps of it."""
    return output_of(loaded, inputs, simulate(inputs, seed, keep_records=keep_records), index, keep_records)


def output_of(loaded: LoadedScenario, inputs: ModelInputs, records: ReplicationRecords, index: int,
              keep_records: bool) -> ReplicationOutput:
    """Everything the run folder keeps of replication ``index`` from its simulated ``records``."""
    table = None
    if keep_records:
        from twin.run.records import records_table

        table = records_table(inputs, loaded.communes, records, index)
    return ReplicationOutput(compute_all(inputs, records), table)


@dataclass(frozen=True)
class RunOutcome:
    """What :func:`run_scenario` produced.

    Attributes:
        folder: the run folder.
        summary: {phase: {kpi: {mean, ci95_half_width, n}}}.
        kpis: KPI names in report order.
        phases: phase names in order.
        replications_done: how many replications finished.
        interrupted: True if the run was stopped (a signal, or KeyboardInterrupt from a callback) before all
            its replications finished.
        signum: the signal that stopped it, if any (the CLI exits with 128 + signum).
        hindcast: the scenario's observations beside the predictions (empty without observations).
        by_year: {year: {kpi: {mean, ci95_half_width, n}}} (calendar years).
        full_years: totals over the fully simulated years (:func:`twin.kpis.summarize_full_years`).
    """

    folder: Path
    summary: dict[str, dict[str, dict[str, Any]]]
    kpis: list[str]
    phases: list[str]
    replications_done: int
    interrupted: bool
    signum: int | None = None
    hindcast: list[HindcastRow] = field(default_factory=list)
    by_year: dict[str, dict[str, Any]] = field(default_factory=dict)
    full_years: dict[str, Any] = field(default_factory=dict)


def _check_request(spec_replications: int, spec_seed: int, replications: int | None, seed: int | None,
                   jobs: int) -> tuple[int, int]:
    """The run's replications and root seed (the options, else the scenario's), checked.

    Raises:
        TwinInputError: replications outside 1..MAX_REPLICATIONS, a negative seed, jobs < 1.
    """
    n_rep = spec_replications if replications is None else replications
    root_seed = spec_seed if seed is None else seed
    if n_rep < 1:
        raise TwinInputError(f"--replications must be >= 1, got {n_rep}")
    if root_seed < 0:
        raise TwinInputError(f"--seed must be >= 0, got {root_seed}")
    if n_rep > MAX_REPLICATIONS:
        raise TwinInputError(f"--replications must be <= {MAX_REPLICATIONS}, got {n_rep}")
    if jobs < 1:
        raise TwinInputError(f"--jobs must be >= 1, got {jobs}")
    return n_rep, root_seed


def new_manifest(loaded: LoadedScenario, root_seed: int, n_rep: int, records: bool,
                 until_year: int | None) -> dict[str, Any]:
    """A new run's manifest (status ``running``, this process's id and host)."""
    return {
        "scenario_name": loaded.spec.name,
        "scenario_file": str(loaded.path),
        "scenario_file_absolute": str(loaded.path.resolve()) if loaded.path is not None else None,
        "scenario_sha256": loaded.sha256,
        "seed": root_seed,
        "replications_requested": n_rep,
        "replications_done": 0,
        "records": records,
        "until_year": until_year,
        "quality_model": loaded.spec.quality.model,
        "calibration_file": str(loaded.calibration_path) if loaded.calibration_path else None,
        "versions": package_versions(),
        "git_commit": git_commit(Path(__file__).resolve().parent),
        "started_utc": _now(),
        "ended_utc": None,
        "status": "running",
        "pid": os.getpid(),
        "host": socket.gethostname(),
    }


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass
class RunRecorder:
    """Writes each finished replication into the run folder at once (its JSON and records,
    replications.csv, replications_by_year.csv, the manifest)."""

    run: RunFolder
    manifest: dict[str, Any]
    kpis: list[str]
    n_rep: int
    site_ids: tuple[str, ...]
    on_replication: Callable[[int, int], None] | None
    results: dict[int, ReplicationKpis] = field(default_factory=dict)

    def record(self, index: int, output: ReplicationOutput) -> None:
        """Keep replication ``index`` and tell the progress callback."""
        self.keep(index, output)
        self.manifest["replications_done"] = len(self.results)
        self.run.write_manifest(self.manifest)
        if self.on_replication is not None:
            self.on_replication(len(self.results), self.n_rep)

    def keep(self, index: int, output: ReplicationOutput) -> None:
        """Keep a replication (also one that finished while the run was stopping: no progress callback)."""
        self.run.write_replication(index, output.kpis, self.site_ids)
        if output.records is not None:
            self.run.write_records(index, output.records)
        self.results[index] = output.kpis
        self.run.write_replications({i: r.phases for i, r in self.results.items()}, self.kpis)
        self.run.write_years({i: r.years for i, r in self.results.items()})


def _write_aggregates(run: RunFolder, loaded: LoadedScenario, inputs: ModelInputs, phases: list[str],
                      kpis: list[str], summary: dict, ordered: list[ReplicationKpis]) -> list[HindcastRow]:
    """summary.json (with by_year and by_departement), sites.csv and, with observations, hindcast.csv
    (whose rows are returned)."""
    by_year = summarize_years([r.years for r in ordered])
    by_departement = summarize_departements([r.departements for r in ordered])
    run.write_summary(phases, kpis, summary, by_year=by_year, by_departement=by_departement,
                      full_years=summarize_full_years([r.years for r in ordered]))
    run.write_sites(summarize_sites(inputs, [r.sites for r in ordered]))
    run.write_quality(quality_sources(inputs))
    rows = hindcast(loaded.spec.observations, summary, by_year, by_departement)
    if rows:
        run.write_hindcast(rows)
    return rows




def replication_task(shared: tuple[LoadedScenario, ModelInputs], seed: np.random.SeedSequence, index: int,
                     keep_records: bool) -> ReplicationOutput:
    """The task an engine runs for replication ``index`` (``shared``: the compiled scenario, sent to
    each worker once)."""
    loaded, inputs = shared
    return replication_output(loaded, inputs, seed, index, keep_records)


@dataclass
class RunJob:
    """A run folder being filled: what it runs (scenario, compiled inputs, seeds) and what finished (its
    recorder); a sweep point is one too."""

    run: RunFolder
    loaded: LoadedScenario
    inputs: ModelInputs
    manifest: dict[str, Any]
    seeds: list[np.random.SeedSequence]
    recorder: RunRecorder
    first: FirstReplication | None = None

    @property
    def phases(self) -> list[str]:
        """Phase names in order."""
        return [cfg.window.name for cfg in self.inputs.phases]


class FirstReplication(Protocol):
    """Runs replication 1 of a run in this process instead of the model alone (the hybrid twin's live
    window, :class:`emulators.hybrid.LiveReplication`); the runner knows it only by this interface."""

    def check(self, loaded: LoadedScenario, inputs: ModelInputs) -> None:
        """Raise TwinInputError if it cannot run on this scenario (called before the folder exists)."""

    def describe(self) -> dict[str, Any]:
        """What the manifest says of it."""

    def __call__(self, folder: Path, loaded: LoadedScenario, inputs: ModelInputs, seed: np.random.SeedSequence,
                 index: int, keep_records: bool, stop: Callable[[], bool] | None = None) -> ReplicationOutput:
        """Replication ``index``'s output; may write its own files into ``folder`` (atomically). Asks
        ``stop`` now and then, and raises KeyboardInterrupt when it says stop."""


#: Told which engine runs the tasks once it has started (e.g. to print the Dask dashboard's address).
EngineListener = Callable[[Engine], None]


def _execute(job: RunJob, engine: Engine, stop: StopRequest, plot: Plotter | None,
             on_engine: EngineListener | None = None) -> RunOutcome:
    """Run the replications not yet in the folder, then write the aggregates, the figures and the
    manifest truthfully (signals stop the run cleanly: see the module docstring)."""
    manifest, recorder = job.manifest, job.recorder
    manifest.update({"engine": engine.name, "dashboard": engine.dashboard})
    if on_engine is not None:
        on_engine(engine)
    job.run.write_manifest(manifest)
    todo = [i for i in range(len(job.seeds)) if i not in recorder.results]
    interrupted = stop.requested
    try:
        try:
            if job.first is not None and 0 in todo and not interrupted:
                recorder.record(0, job.first(job.run.path, job.loaded, job.inputs, job.seeds[0], 0,
                                             bool(manifest.get("records")), stop=lambda: stop.requested))
                todo.remove(0)
                interrupted = stop.requested
            if todo and not interrupted:
                shared = engine.share((job.loaded, job.inputs))
                tasks = [Task(i, replication_task, (shared, job.seeds[i], i, bool(manifest.get("records"))))
                         for i in todo]
                interrupted = engine.run(tasks, recorder.record, stop)
        except KeyboardInterrupt:  # from the progress callback, or a second signal
            interrupted = True
        finally:
            engine.close()
        return finish_run(job, interrupted or stop.requested, stop, plot)
    except OSError as exc:  # a file could not be written (a full disk): the manifest says so
        close_after_write_failure(job, exc)
        raise


def close_after_write_failure(job: RunJob, exc: OSError) -> None:
    """The manifest's last word when a file of the run cannot be written: ``interrupted``, the file and
    the error in ``error`` (``twin run --resume`` continues once the cause is fixed). On a full disk the
    manifest is rewritten in its own blocks (:func:`twin.run.atomic.rewrite_in_place`); if even that
    fails, the folder reads as abandoned once the process is gone (:func:`twin.run.folder.run_state`)."""
    job.manifest.update({"status": "interrupted", "ended_utc": _now(),
                         "replications_done": len(job.recorder.results),
                         "error": f"cannot write {exc.filename}: {exc.strerror or exc}"})
    try:
        job.run.write_manifest(job.manifest)
    except OSError:
        try:
            rewrite_in_place(job.run.path / MANIFEST, json_bytes(job.manifest))
        except OSError:
            pass


def finish_run(job: RunJob, interrupted: bool, stop: StopRequest, plot: Plotter | None) -> RunOutcome:
    """Write a run folder's aggregates from the replications kept, its figures unless stopped, then the
    manifest last (see :func:`_close_manifest`)."""
    results, manifest = job.recorder.results, job.manifest
    ordered = [results[i] for i in sorted(results)]
    summary = summarize([r.phases for r in ordered])
    hindcast_rows = _write_aggregates(job.run, job.loaded, job.inputs, job.phases, job.recorder.kpis, summary,
                                      ordered)
    manifest.update({"replications_done": len(results), "plots": "none"})
    if plot is not None and ordered:
        if stop.requested or interrupted:
            manifest["plots"] = "skipped: the run was interrupted (twin run --resume draws them)"
        else:
            manifest["plots"] = "missing: the plots were being drawn when the process stopped"
            job.run.write_manifest(manifest)
            try:
                plot(job.run.path / "plots", job.phases, summary, job.loaded.spec.name)
            except OSError as exc:
                manifest["plots"] = f"missing: {exc.strerror or exc} ({exc.filename})"
                close_after_write_failure(job, exc)
                raise
            manifest["plots"] = "written"
    _close_manifest(job, interrupted, stop)
    by_year = summarize_years([r.years for r in ordered])
    return RunOutcome(folder=job.run.path, summary=summary, kpis=job.recorder.kpis, phases=job.phases,
                      replications_done=len(results), interrupted=interrupted or stop.requested,
                      signum=stop.signum, hindcast=hindcast_rows, by_year=by_year,
                      full_years=summarize_full_years([r.years for r in ordered]))


def _close_manifest(job: RunJob, interrupted: bool, stop: StopRequest) -> None:
    """The manifest's last word: ``complete`` when every replication is kept and the figures asked for
    are drawn (even if a signal came at the very end: ``stopped_by`` says so), else ``interrupted``."""
    done = len(job.recorder.results)
    plots_ok = job.manifest.get("plots") in ("written", "none")
    job.manifest.update({
        "replications_done": done,
        "ended_utc": _now(),
        "status": "complete" if done == len(job.seeds) and plots_ok else "interrupted",
    })
    if stop.signum is not None:
        job.manifest["stopped_by"] = signal.Signals(stop.signum).name
    job.run.write_manifest(job.manifest)


def run_scenario(scenario_path: str | Path, replications: int | None = None, seed: int | None = None,
                 jobs: int = 1, out_dir: str | Path | None = None,
                 on_replication: Callable[[int, int], None] | None = None,
                 plot: Plotter | None = None, force: bool = False, records: bool = False,
                 until_year: int | None = None, scheduler: str | None = None,
                 stop: StopRequest | None = None, on_engine: EngineListener | None = None,
                 first: FirstReplication | None = None,
                 scenario_first: Callable[[Any], FirstReplication] | None = None) -> RunOutcome:
    """Run a scenario's replications and write the run folder.

    Args:
        scenario_path: the YAML scenario.
        replications: number of replications (default: the scenario's simulation.replications).
        seed: root seed (default: the scenario's simulation.seed).
        jobs: local worker processes (1: in this process; more: a local Dask cluster).
        out_dir: run folder (default ``results/<scenario>-<UTC time>``). Must not exist or be empty
            (:mod:`twin.run.outputs`).
        on_replication: callback(done, total) after each finished replication (for progress bars); a
            KeyboardInterrupt raised in it stops the run like a signal.
        plot: draws the run's figures into ``plots/`` once the summary is written (the presentation's
            :func:`twin.presentation.plots.write_rollout_plots`; the runner imports no presentation);
            None: no figures.
        force: replace an existing run folder (one twin wrote).
        records: also write one row per citizen need and replication (``records/``, Parquet).
        until_year: simulate through 31 December of this year as the status quo (nothing changes after
            the last phase; drivers hold their last value), so that plans are judged over the same years.
        scheduler: address of a Dask scheduler to run the replications on (instead of local workers).
        stop: the stop request signals set (default: a new one, with SIGINT, SIGTERM and SIGHUP
            handled while the run works, when called from the main thread).
        on_engine: told which engine runs the replications once it has started.
        first: runs replication 1 in this process instead of the model alone (checked before the folder
            is made; the others run as usual).
        scenario_first: without ``first``, makes it from the scenario's ``live`` section when it has one
            (the CLI gives the hybrid twin's; the runner imports no emulator).

    Returns:
        A :class:`RunOutcome` (``interrupted`` and ``signum`` when a signal stopped it).

    Raises:
        twin.errors.TwinInputError: bad scenario, bad arguments, non-empty output folder, unreachable
            scheduler.
    """
    stop = StopRequest() if stop is None else stop
    with stop_on_signals(stop):
        loaded, inputs = compile_scenario(scenario_path, until_year)
        spec = loaded.spec
        n_rep, root_seed = _check_request(spec.simulation.replications, spec.simulation.seed, replications, seed,
                                          jobs)
        if first is None and scenario_first is not None and spec.live is not None:
            first = scenario_first(spec.live)
        if first is not None:
            first.check(loaded, inputs)
        folder = Path(out_dir) if out_dir is not None else timestamped_path(spec.name)
        run = RunFolder(folder, force=force, inputs=[loaded.path] if loaded.path is not None else [])
        manifest = new_manifest(loaded, root_seed, n_rep, records, until_year)
        if first is not None:
            manifest["first_replication"] = first.describe()
        run.write_manifest(manifest)
        run.write_phases([{"name": cfg.window.name, "start_date": cfg.window.start_date.isoformat(),
                           "end_date": cfg.window.end_date.isoformat()} for cfg in inputs.phases])
        recorder = RunRecorder(run, manifest, kpi_names(inputs.service_ids), n_rep, inputs.site_ids, on_replication)
        job = RunJob(run, loaded, inputs, manifest, np.random.SeedSequence(root_seed).spawn(n_rep), recorder, first)
        engine = engine_for(jobs, scheduler) if not stop.requested else engine_for(1)
        return _execute(job, engine, stop, plot, on_engine)


def resume_run(folder: str | Path, jobs: int = 1, on_replication: Callable[[int, int], None] | None = None,
               plot: Plotter | None = None, scheduler: str | None = None,
               stop: StopRequest | None = None, on_engine: EngineListener | None = None,
               first: Callable[[Mapping[str, Any]], FirstReplication] | None = None) -> RunOutcome:
    """Continue an interrupted, killed or partial run in ``folder``: the replications already written are
    kept, the others run with the same seed streams; the result is the same as an uninterrupted run.
    ``first`` rebuilds the run's :class:`FirstReplication` from what its manifest says of it
    (``first_replication``), for runs made with one.

    Raises:
        TwinInputError: not a run folder, a run still running (its process is alive), a scenario file that
            is gone or has changed since the run started, a run with a first replication and no ``first``.
    """
    stop = StopRequest() if stop is None else stop
    with stop_on_signals(stop):
        path = Path(folder)
        manifest = read_manifest(path)
        state = run_state(manifest)
        if state == "running":
            raise TwinInputError(f"the run is still running (process {manifest.get('pid')} on "
                                 f"{manifest.get('host')}): stop it first", path=str(path))
        loaded, inputs = _resume_scenario(path, manifest)
        replacement = None
        if manifest.get("first_replication") is not None:
            if first is None:
                raise TwinInputError("this run's first replication is not the model alone "
                                     f"({manifest['first_replication'].get('kind')}): resume it with twin run --resume",
                                     path=str(path))
            replacement = first(manifest["first_replication"])
        n_rep = int(manifest["replications_requested"])
        run = RunFolder.reopen(path)
        manifest.update({"status": "running", "pid": os.getpid(), "host": socket.gethostname(), "ended_utc": None,
                         "resumed_utc": [*manifest.get("resumed_utc", []), _now()]})
        recorder = RunRecorder(run, manifest, kpi_names(inputs.service_ids), n_rep, inputs.site_ids, on_replication)
        recorder.results.update(load_replications(path, inputs.site_ids, n_rep,
                                                  [cfg.window.name for cfg in inputs.phases], recorder.kpis))
        job = RunJob(run, loaded, inputs, manifest, np.random.SeedSequence(int(manifest["seed"])).spawn(n_rep), recorder,
                     replacement)
        engine = engine_for(jobs, scheduler) if not stop.requested else engine_for(1)
        return _execute(job, engine, stop, plot, on_engine)


def _resume_scenario(path: Path, manifest: Mapping[str, Any]) -> tuple[LoadedScenario, ModelInputs]:
    """The scenario a run was made of, checked unchanged (SHA-256), extended as it was. Named as the run
    named it when that name still leads to the same file from here (the data files it names, e.g. the
    calibration table in ``quality.csv``'s sources, are then written as they were), else by its absolute
    path."""
    given, absolute = manifest.get("scenario_file"), manifest.get("scenario_file_absolute")
    same = given and absolute and Path(given).is_file() and Path(given).resolve() == Path(absolute).resolve()
    name = given if same else (absolute or given)
    if not name or not Path(name).is_file():
        raise TwinInputError(f"the run's scenario file {name!r} is gone: it cannot be resumed", path=str(path))
    loaded, inputs = compile_scenario(name, manifest.get("until_year"))
    if loaded.sha256 != manifest.get("scenario_sha256"):
        raise TwinInputError(f"the scenario file {name} has changed since the run started (SHA-256 differs): "
                             "resuming would mix two scenarios", path=str(path))
    return loaded, inputs


def default_jobs() -> int:
    """Worker processes by default: the CPUs this process may use."""
    return local_workers()
