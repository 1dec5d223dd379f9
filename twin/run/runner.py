"""Replications of a scenario on local processes, written to a run folder as they finish.

Seeds: the root seed gives a :class:`numpy.random.SeedSequence` whose ``spawn(replications)`` children
are the replications' independent streams (replication i always gets child i), so the numbers do not
depend on ``jobs`` or on completion order. Each worker process loads and compiles the scenario once.

Results are written atomically after each replication (:mod:`twin.run.folder`): an interrupted run keeps
every replication it finished, with a summary of those and ``status: interrupted`` in its manifest.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import datetime as dt
import os
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from twin.model.inputs import ModelInputs, prepare
from twin.model.replication import simulate
from twin.quality import quality_for_scenario
from twin.run.folder import RunFolder, git_commit, package_versions
from twin.run.outputs import timestamped_path
from twin.scenario.loading import extended_until, load_scenario
from twin.scenario.spec import LoadedScenario
from twin.vocabulary import MAX_REPLICATIONS


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
    records = simulate(inputs, seed, keep_records=keep_records)
    table = None
    if keep_records:
        from twin.run.records import records_table

        table = records_table(inputs, loaded.communes, records, index)
    return ReplicationOutput(compute_all(inputs, records), table)


_WORKER_INPUTS: dict[str, tuple[LoadedScenario, ModelInputs]] = {}

#: Draws a run's figures: (plots folder, phase names, summary, title) -> files written.
Plotter = Callable[[Path, Sequence[str], Mapping[str, Any], str], Sequence[Path]]


def _worker_init(path: str, until_year: int | None) -> None:
    # Ctrl-C reaches the whole process group: the parent decides what to keep, workers finish their
    # replication (a few seconds) instead of dying half-way through a pipe write.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _WORKER_INPUTS[path] = compile_scenario(path, until_year)


def _worker_run(path: str, seed: np.random.SeedSequence, index: int, keep_records: bool) -> ReplicationOutput:
    loaded, inputs = _WORKER_INPUTS[path]
    return replication_output(loaded, inputs, seed, index, keep_records)


@dataclass(frozen=True)
class RunOutcome:
    """What :func:`run_scenario` produced.

    Attributes:
        folder: the run folder.
        summary: {phase: {kpi: {mean, ci95_half_width, n}}}.
        kpis: KPI names in report order.
        phases: phase names in order.
        replications_done: how many replications finished.
        interrupted: True if the run was stopped (KeyboardInterrupt) before all finished.
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


def _manifest(loaded: LoadedScenario, root_seed: int, n_rep: int, jobs: int) -> dict[str, Any]:
    """A new run's manifest (status ``running``)."""
    return {
        "scenario_name": loaded.spec.name,
        "scenario_file": str(loaded.path),
        "scenario_file_absolute": str(loaded.path.resolve()) if loaded.path is not None else None,
        "scenario_sha256": loaded.sha256,
        "seed": root_seed,
        "replications_requested": n_rep,
        "replications_done": 0,
        "jobs": jobs,
        "quality_model": loaded.spec.quality.model,
        "calibration_file": str(loaded.calibration_path) if loaded.calibration_path else None,
        "versions": package_versions(),
        "git_commit": git_commit(Path(__file__).resolve().parent),
        "started_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "ended_utc": None,
        "status": "running",
    }


@dataclass
class _RunRecorder:
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


def _run_in_pool(recorder: _RunRecorder, path: str, seeds: list[np.random.SeedSequence], jobs: int,
                 keep_records: bool, until_year: int | None) -> bool:
    """Run the replications on ``jobs`` worker processes, recording each as it finishes. Returns True
    if the run was stopped (signal, KeyboardInterrupt from the callback, a killed worker): the
    replications already running are then waited for and kept."""
    stop = threading.Event()
    with _stop_signals(stop), cf.ProcessPoolExecutor(
            max_workers=min(jobs, len(seeds)), initializer=_worker_init, initargs=(path, until_year)) as pool:
        futures = {pool.submit(_worker_run, path, child, i, keep_records): i for i, child in enumerate(seeds)}
        unrecorded = set(futures)  # a future leaves only once its replication is recorded
        try:
            while unrecorded and not stop.is_set():
                finished, _ = cf.wait(unrecorded, timeout=0.2, return_when=cf.FIRST_COMPLETED)
                for future in sorted(finished, key=futures.__getitem__):
                    recorder.record(futures[future], future.result())
                    unrecorded.discard(future)
        except KeyboardInterrupt:  # raised by on_replication, or a signal outside _stop_signals
            stop.set()
        except cf.process.BrokenProcessPool:
            # a worker was killed from outside (SIGTERM to the process group, out of memory):
            # the run stops, keeping what finished (collected below)
            stop.set()
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        if not stop.is_set():
            return False
        # keep what the workers are finishing: cancel the queue, wait for the running ones
        for future in unrecorded:
            future.cancel()
        for future in sorted(unrecorded, key=futures.__getitem__):
            if future.cancelled() or futures[future] in recorder.results:
                continue
            try:
                recorder.keep(futures[future], future.result())
            except (cf.CancelledError, cf.process.BrokenProcessPool):
                continue
        return True


def _write_aggregates(run: RunFolder, loaded: LoadedScenario, inputs: ModelInputs, phases: list[str],
                      kpis: list[str], summary: dict, ordered: list[ReplicationKpis]) -> list[HindcastRow]:
    """summary.json (with by_year and by_departement), sites.csv and, with observations, hindcast.csv
    (whose rows are returned)."""
    by_year = summarize_years([r.years for r in ordered])
    by_departement = summarize_departements([r.departements for r in ordered])
    run.write_summary(phases, kpis, summary, by_year=by_year, by_departement=by_departement,
                      full_years=summarize_full_years([r.years for r in ordered]))
    run.write_sites(summarize_sites(inputs, [r.sites for r in ordered]))
    rows = hindcast(loaded.spec.observations, summary, by_year, by_departement)
    if rows:
        run.write_hindcast(rows)
    return rows


def run_scenario(scenario_path: str | Path, replications: int | None = None, seed: int | None = None,
                 jobs: int = 1, out_dir: str | Path | None = None,
                 on_replication: Callable[[int, int], None] | None = None,
                 plot: Plotter | None = None, force: bool = False, records: bool = False,
                 until_year: int | None = None) -> RunOutcome:
    """Run a scenario's replications and write the run folder.

    Args:
        scenario_path: the YAML scenario.
        replications: number of replications (default: the scenario's simulation.replications).
        seed: root seed (default: the scenario's simulation.seed).
        jobs: worker processes (1: run in this process).
        out_dir: run folder (default ``results/<scenario>-<UTC time>``). Must not exist or be empty
            (:mod:`twin.run.outputs`).
        on_replication: callback(done, total) after each finished replication (for progress bars).
        plot: draws the run's figures into ``plots/`` once the summary is written (the presentation's
            :func:`twin.presentation.plots.write_rollout_plots`; the runner imports no presentation);
            None: no figures.
        force: replace an existing run folder (one twin wrote).
        records: also write one row per citizen need and replication (``records/``, Parquet).
        until_year: simulate through 31 December of this year as the status quo (nothing changes after
            the last phase; drivers hold their last value), so that plans are judged over the same years.

    Returns:
        A :class:`RunOutcome`. On KeyboardInterrupt the finished replications are kept, the summary and
        manifest say ``interrupted``, and the outcome is returned with ``interrupted=True``.

    Raises:
        twin.errors.TwinInputError: bad scenario, bad arguments, non-empty output folder.
    """
    loaded, inputs = compile_scenario(scenario_path, until_year)
    spec = loaded.spec
    n_rep, root_seed = _check_request(spec.simulation.replications, spec.simulation.seed, replications, seed, jobs)
    folder = Path(out_dir) if out_dir is not None else timestamped_path(spec.name)
    run = RunFolder(folder, force=force, inputs=[loaded.path] if loaded.path is not None else [])
    kpis = kpi_names(inputs.service_ids)
    phases = [cfg.window.name for cfg in inputs.phases]
    manifest = _manifest(loaded, root_seed, n_rep, jobs)
    manifest["until_year"] = until_year
    run.write_manifest(manifest)
    run.write_phases([{"name": cfg.window.name, "start_date": cfg.window.start_date.isoformat(),
                       "end_date": cfg.window.end_date.isoformat()} for cfg in inputs.phases])
    seeds = np.random.SeedSequence(root_seed).spawn(n_rep)
    recorder = _RunRecorder(run, manifest, kpis, n_rep, inputs.site_ids, on_replication)
    interrupted = False
    try:
        if jobs == 1:
            for i, child in enumerate(seeds):
                recorder.record(i, replication_output(loaded, inputs, child, i, records))
        else:
            interrupted = _run_in_pool(recorder, str(loaded.path), seeds, jobs, records, until_year)
    except KeyboardInterrupt:
        interrupted = True
    results = recorder.results
    ordered = [results[i] for i in sorted(results)]
    summary = summarize([r.phases for r in ordered])
    hindcast_rows = _write_aggregates(run, loaded, inputs, phases, kpis, summary, ordered)
    if plot is not None and ordered:
        plot(run.path / "plots", phases, summary, spec.name)
    manifest.update({
        "replications_done": len(results),
        "ended_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "status": "interrupted" if interrupted or len(results) < n_rep else "complete",
    })
    run.write_manifest(manifest)
    return RunOutcome(folder=run.path, summary=summary, kpis=kpis, phases=phases, replications_done=len(results),
                      interrupted=interrupted, hindcast=hindcast_rows,
                      by_year=summarize_years([r.years for r in ordered]),
                      full_years=summarize_full_years([r.years for r in ordered]))


@contextlib.contextmanager
def _stop_signals(stop: threading.Event):
    """While workers run, SIGINT and SIGTERM only set ``stop``: a KeyboardInterrupt raised inside
    fork or logging hooks of the pool would otherwise be swallowed ("Exception ignored") and the run
    would go on as if nothing happened. Outside the main thread, signals are left alone."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda signum, frame: stop.set())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def default_jobs() -> int:
    """Worker processes by default: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)
