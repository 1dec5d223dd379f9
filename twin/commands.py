"""Click commands of the core: ``twin run`` and ``twin schema``. They parse, call one library
function, and print; no model logic lives here."""

from __future__ import annotations

import json
import math
import signal
import sys
from pathlib import Path

import click

HEADLINE_KPIS = (
    ("interviews_served", "interviews", "{:,.0f}"),
    ("unmet_total", "unmet", "{:,.0f}"),
    ("wait_mean_min", "wait min", "{:.1f}"),
    ("wait_p95_min", "p95 wait", "{:.1f}"),
    ("kiosk_utilisation", "kiosk use", "{:.1%}"),
    ("population_within_15km", "pop<15km", "{:,.0f}"),
    ("mos_mean", "MOS", "{:.2f}"),
    ("share_mos_below_3", "MOS<3", "{:.1%}"),
)


def _cell(summary: dict, phase: str, kpi: str, fmt: str) -> str:
    cell = summary.get(phase, {}).get(kpi)
    if cell is None:
        return "-"
    mean, half = cell["mean"], cell["ci95_half_width"]
    if mean is None:
        return "-"
    text = fmt.format(mean)
    if half is not None and half > 0 and not math.isclose(half, 0.0):
        text += " ±" + fmt.format(half).lstrip("+")
    return text


def _terminate_as_interrupt(signum: int, frame: object) -> None:
    """SIGTERM (a scheduler's or timeout's stop) ends a run like Ctrl-C: keep the finished replications."""
    raise KeyboardInterrupt


@click.command("run")
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--replications", "-r", type=int, default=None, help="Replications (default: the scenario's).")
@click.option("--seed", "-s", type=int, default=None, help="Root seed (default: the scenario's).")
@click.option("--jobs", "-j", type=int, default=None, help="Worker processes (default: the CPUs available).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run folder (default: results/<scenario>-<time>).")
@click.option("--no-plots", is_flag=True, help="Skip the PNG plots.")
def run_command(scenario: Path, replications: int | None, seed: int | None, jobs: int | None,
                out_dir: Path | None, no_plots: bool) -> None:
    """Simulate SCENARIO's rollout with replications and write a run folder."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.table import Table

    from twin.runner import default_jobs, run_scenario

    console = Console(stderr=True)
    jobs = default_jobs() if jobs is None else jobs
    with Progress(TextColumn("replications"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("run", total=None)

        def on_replication(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        previous = signal.signal(signal.SIGTERM, _terminate_as_interrupt)
        try:
            outcome = run_scenario(scenario, replications=replications, seed=seed, jobs=jobs, out_dir=out_dir,
                                   on_replication=on_replication, make_plots=not no_plots)
        finally:
            signal.signal(signal.SIGTERM, previous)
    out = Console(highlight=False, width=None if Console().is_terminal else 150)
    table = Table(title=f"{scenario.name}: {outcome.replications_done} replications (mean ± 95% CI)")
    table.add_column("phase")
    for _, label, _ in HEADLINE_KPIS:
        table.add_column(label, justify="right")
    for phase in outcome.phases:
        table.add_row(phase, *(_cell(outcome.summary, phase, kpi, fmt) for kpi, _, fmt in HEADLINE_KPIS))
    out.print(table)
    if outcome.interrupted:
        click.echo(f"interrupted: kept {outcome.replications_done} finished replications", err=True)
    click.echo(str(outcome.folder))
    if outcome.interrupted:
        sys.exit(130)


@click.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of scenario files."""
    from twin.scenario import scenario_json_schema

    click.echo(json.dumps(scenario_json_schema(), indent=2))


__all__ = ["run_command", "schema_command"]
