"""``twin run`` and ``twin schema``: parse, call one library function, print. No model logic here."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from twin.cli.options import force_option, no_plots_option, out_option


@click.command("run")
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--replications", "-r", type=int, default=None, help="Replications (default: the scenario's).")
@click.option("--seed", "-s", type=int, default=None, help="Root seed (default: the scenario's).")
@click.option("--jobs", "-j", type=int, default=None,
              help="Local worker processes on a Dask LocalCluster (default: the CPUs available; 1: in this process).")
@click.option("--scheduler", default=None, help="Address of a Dask scheduler to run on (tcp://host:8786).")
@out_option("Run folder", default_help="results/<scenario>-<UTC time>")
@force_option("run folder")
@no_plots_option()
@click.option("--until", "until_year", type=click.IntRange(1950, 2100), default=None,
              help="Simulate through 31 December of YEAR as the status quo: nothing changes after the last phase, "
                   "demand drivers hold their last value.")
@click.option("--records", is_flag=True,
              help="Also write one row per citizen need and replication (records/*.parquet), for analysts.")
@click.option("--live", "live_sites", default=None, metavar="SITE[,SITE...]",
              help="Hybrid twin: in replication 1, the interviews of these user kiosks inside --live-window run as "
                   "real emulated calls (aiortc, virtual time) on the model's clock; live_calls.csv in the folder.")
@click.option("--live-window", default=None, metavar="START/END",
              help="The live window, ISO dates or date-times of the simulated calendar (e.g. 2006-03-01/2006-03-15).")
@click.option("--live-media-s", type=click.FloatRange(1, 3600), default=60.0, show_default=True,
              help="Seconds of media per live call (the rest of a longer interview is modelled time).")
@click.option("--live-sample-min", type=click.FloatRange(0, 1440), default=0.0, show_default=True,
              help="Start each live call at the next sampling instant (every N minutes from the window's start) "
                   "if it fits in the interview, so interviews in progress meet live; 0: at the interview's start.")
@click.option("--live-max-calls", type=click.IntRange(1, 200), default=20, show_default=True,
              help="Most live calls in the window (later interviews are modelled and counted).")
@click.option("--no-live", is_flag=True, help="Run the model alone, without the scenario's live window.")
@click.option("--resume", "resume", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Continue the interrupted, killed or partial run in this folder (same seeds; no SCENARIO).")
def run_command(scenario: Path | None, replications: int | None, seed: int | None, jobs: int | None,
                scheduler: str | None, out: Path | None, force: bool, no_plots: bool, until_year: int | None,
                records: bool, live_sites: str | None, live_window: str | None, live_media_s: float,
                live_sample_min: float, live_max_calls: int, no_live: bool, resume: Path | None) -> None:
    """Simulate SCENARIO's rollout with replications and write a run folder."""
    from twin.scenario.yaml12 import check_yaml_file

    if scenario is not None:
        check_yaml_file(scenario)  # before the slow imports below: an oversized file is refused at once
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from twin.errors import TwinInputError
    from twin.presentation.plots import write_rollout_plots
    from twin.presentation.tables import hindcast_table, run_summary_table, unstable_lines, years_table
    from twin.run.runner import default_jobs, resume_run, run_scenario
    from twin.run.signals import StopRequest

    if (scenario is None) == (resume is None):
        raise TwinInputError("give a SCENARIO to run, or --resume FOLDER (not both)")
    if resume is not None and (replications, seed, out, until_year) != (None, None, None, None) or (resume and records):
        raise TwinInputError("--resume continues a run as it was started: no --replications, --seed, --out, --until "
                             "or --records with it")
    first = _live_replication(live_sites, live_window, live_media_s, live_max_calls, live_sample_min, resume)
    console = Console(stderr=True)
    jobs = default_jobs() if jobs is None else jobs
    stop = StopRequest()
    plot = None if no_plots else write_rollout_plots
    with Progress(TextColumn("replications"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("run", total=None)

        def on_replication(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        def on_engine(engine) -> None:
            if engine.dashboard:
                console.print(f"Dask dashboard: {engine.dashboard}", highlight=False)

        if resume is not None:
            outcome = resume_run(resume, jobs=jobs, on_replication=on_replication, plot=plot, scheduler=scheduler,
                                 stop=stop, on_engine=on_engine, first=_live_from_manifest)
        else:
            outcome = run_scenario(scenario, replications=replications, seed=seed, jobs=jobs, out_dir=out,
                                   on_replication=on_replication, force=force, records=records,
                                   until_year=until_year, plot=plot, scheduler=scheduler, stop=stop,
                                   on_engine=on_engine, first=first,
                                   scenario_first=None if no_live else _live_from_scenario)
    printer = Console(highlight=False, width=None if Console().is_terminal else 150)
    name = scenario.name if scenario is not None else outcome.folder.name
    printer.print(run_summary_table(f"{name}: {outcome.replications_done} replication{'' if outcome.replications_done == 1 else 's'} "
                                    f"({'one run: no interval' if outcome.replications_done == 1 else 'mean ± 95% CI'})",
                                    outcome.phases, outcome.summary))
    if len(outcome.by_year) > 1:
        printer.print(years_table(outcome.by_year, outcome.full_years))
    services = [k.removeprefix("unstable_") for k in outcome.kpis if k.startswith("unstable_")]
    for line in unstable_lines(outcome.phases, outcome.summary, services):
        click.echo(line, err=True)
    if outcome.hindcast:
        printer.print(hindcast_table(outcome.hindcast))
    _print_live(outcome.folder)
    if outcome.interrupted:
        click.echo(f"interrupted: kept {outcome.replications_done} finished replications in {outcome.folder} "
                   f"(twin run --resume {outcome.folder} continues it)", err=True)
    click.echo(str(outcome.folder))
    if outcome.interrupted:
        sys.exit(stop.interrupted().exit_status)


def _print_live(folder: Path) -> None:
    """One line on the live calls of a hybrid run (``live.json``), if it has any."""
    import json

    path = folder / "live.json"
    if not path.is_file():
        return
    live = json.loads(path.read_text(encoding="utf-8"))
    measured, predicted = live.get("mos_measured_mean"), live.get("mos_predicted_mean")
    mos = (f"; MOS measured {measured:.2f} against {predicted:.2f} predicted for one call"
           if measured is not None and predicted is not None else "")
    calls = live.get("calls")
    click.echo(f"live calls (replication 1): {calls} call{'' if calls == 1 else 's'} of at most {live.get('media_s'):g} s "
               f"of media each, at most "
               f"{live.get('max_calls_on_one_line')} at once on one line, {live.get('wall_s', 0):.0f} s of wall time"
               f"{mos}: {folder / 'live_calls.csv'}", err=True)


def _live_replication(live_sites: str | None, live_window: str | None, media_s: float, max_calls: int,
                      sample_min: float, resume: Path | None):
    """The hybrid twin's first replication from the --live options, or None without them."""
    from twin.errors import TwinInputError

    if (live_sites is None) != (live_window is None):
        raise TwinInputError("--live and --live-window go together")
    if live_sites is None:
        return None
    if resume is not None:
        raise TwinInputError("--resume continues a run as it was started: no --live with it")
    from emulators.hybrid import LiveReplication, LiveWindow

    return LiveReplication(LiveWindow.parse(live_sites, live_window, media_s, max_calls, sample_min))


def _live_from_scenario(live):
    from emulators.hybrid import LiveReplication

    return LiveReplication.from_spec(live)


def _live_from_manifest(described):
    from emulators.hybrid import LiveReplication

    return LiveReplication.from_manifest(described)


@click.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of scenario files."""
    from twin.scenario.spec import scenario_json_schema

    click.echo(json.dumps(scenario_json_schema(), indent=2))


__all__ = ["run_command", "schema_command"]
