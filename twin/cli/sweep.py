"""``twin sweep``: parse, run the sweep (twin.run.sweep) with the planners and the sweep figures passed
in, print the table's headline. No model logic here."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from twin.cli.options import force_option, no_plots_option, out_option

#: Keys of ``plan.placement.*`` a sweep may set (arguments of planners.plans.plan_placement).
PLACEMENT_KEYS = ("model", "p", "radius_km", "min_population", "fix_existing", "generation", "loop_length_m", "seed")


def plan_point(loaded: Any, plan_values: Mapping[str, Any]) -> dict[str, Any]:
    """Apply a point's ``plan.placement.*`` values: place the user kiosks and return the planned scenario
    data (the planner's default ``final`` mode: the last phase holds the planned network)."""
    from planners.plans import plan_placement
    from twin.errors import TwinInputError

    placement = {k.removeprefix("placement."): v for k, v in plan_values.items() if k.startswith("placement.")}
    unknown = sorted(set(plan_values) - {f"placement.{k}" for k in PLACEMENT_KEYS})
    if unknown:
        raise TwinInputError(f"unknown planner parameter(s) plan.{', plan.'.join(unknown)}; sweeps know "
                             f"plan.placement.{{{', '.join(PLACEMENT_KEYS)}}}")
    return plan_placement(loaded, **placement).data


@click.command("sweep")
@click.argument("sweep", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--jobs", "-j", type=int, default=None,
              help="Local worker processes on a Dask LocalCluster (default: the CPUs available; 1: in this process).")
@click.option("--scheduler", default=None, help="Address of a Dask scheduler to run on (tcp://host:8786).")
@out_option("Sweep folder", default_help="results/sweep-<name>; running the same sweep again continues it")
@force_option("sweep folder")
@no_plots_option()
def sweep_command(sweep: Path, jobs: int | None, scheduler: str | None, out: Path | None, force: bool,
                  no_plots: bool) -> None:
    """Run SWEEP (a base scenario and a grid of overrides): every point a run folder, one table of all."""
    from twin.scenario.yaml12 import check_yaml_file

    check_yaml_file(sweep, "sweep")  # before the slow imports below: an oversized file is refused at once
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from twin.presentation.sweep_plots import write_sweep_plots
    from twin.run.runner import default_jobs
    from twin.run.signals import StopRequest
    from twin.run.sweep import run_sweep

    console = Console(stderr=True)
    stop = StopRequest()
    with Progress(TextColumn("tasks"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                  transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("sweep", total=None)

        def on_engine(engine) -> None:
            if engine.dashboard:
                console.print(f"Dask dashboard: {engine.dashboard}", highlight=False)

        outcome = run_sweep(sweep, jobs=default_jobs() if jobs is None else jobs, out_dir=out, force=force,
                            scheduler=scheduler, planner=plan_point, plot=None if no_plots else write_sweep_plots,
                            on_task=lambda done, total: progress.update(task, completed=done, total=total),
                            stop=stop, on_engine=on_engine)
    if outcome.skipped:
        click.echo(f"{len(outcome.skipped)} point(s) already complete, kept as they were", err=True)
    click.echo(f"{len(outcome.points)} points, table: {outcome.folder / 'table.csv'}")
    if outcome.interrupted:
        click.echo(f"interrupted: the finished replications are kept in {outcome.folder} (run the same sweep "
                   "again to continue)", err=True)
    click.echo(str(outcome.folder))
    if outcome.interrupted:
        sys.exit(stop.interrupted().exit_status)


__all__ = ["plan_point", "sweep_command"]
