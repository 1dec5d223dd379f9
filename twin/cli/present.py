"""Click commands ``twin compare`` and ``twin report``: parse, call :mod:`twin.presentation.compare` /
:mod:`twin.presentation.report`, print. No statistics or drawing here."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import click

from twin.cli.options import force_option, out_option
from twin.presentation.compare import DEFAULT_AMORTISATION_YEARS

_AMORTISATION = click.option(
    "--amortisation-years", type=float, default=DEFAULT_AMORTISATION_YEARS, show_default=True,
    help="Straight-line amortisation period of kiosk capex for the cost per interview, years.")

#: Verdict marks in the terminal (markers carry the meaning; colours are Okabe-Ito blue / vermillion).
_MARKS = {"better": "[#0072B2]▲ ", "worse": "[#D55E00]▼ ", "no practical difference": "[dim]○ ",
          "uncertain": "[dim italic]◇ ", "higher": "↑ ", "lower": "↓ "}


@contextlib.contextmanager
def _progress(what: str) -> Iterator:
    """A transient spinner on stderr when it is a terminal; yields a step(text) callback."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task(what, total=None)

        def step(text: str) -> None:
            progress.update(task, description=f"{what}: {text}")

        yield step


def _difference_rows(comparison, r: int) -> tuple[list[tuple[str, str]], list[list[str]]]:
    from twin.presentation.kpimeta import kpi_meta

    headline = [kpi_meta(k) for k in comparison.headline]
    columns = [("year", "left")] + [(m.short_header, "right") for m in headline]
    rows = []
    for year in comparison.years:
        row = [str(year) + ("\nstatus quo" if year in comparison.extended[0] or year in comparison.extended[r] else "")]
        for m in headline:
            cell = comparison.cell(r, year, m.name)
            if cell is None:
                row.append("not in " + (comparison.runs[0].letter if year not in comparison.values[0]
                                        else comparison.runs[r].letter))
                continue
            d = cell.difference
            interval = ("identical" if d.diff == 0 else "exact") if d.method == "exact" else (
                "–" if d.low != d.low else f"{m.diff(d.low)}..{m.diff(d.high)}")
            mark = _MARKS.get(cell.verdict, "")
            row.append(f"{mark}{m.diff(d.diff)}{'[/]' if mark.startswith('[') else ''}\n{interval}")
        rows.append(row)
    return columns, rows


@click.command("compare")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@out_option("Output folder", default_help="results/compare-<UTC time>")
@force_option("comparison folder")
@_AMORTISATION
def compare_command(runs: tuple[Path, ...], out: Path | None, force: bool, amortisation_years: float) -> None:
    """Compare RUN folders by calendar year (the first is the reference): verdict, charts, report.html.

    A run that ends before another is extended with the status quo when a run of the same scenario,
    seed and replications made with `twin run --until YEAR` is among the RUNS; years that cannot be
    aligned are listed.
    """
    from rich.console import Console

    from twin.errors import TwinInputError
    from twin.presentation.compare import build_verdict, compare_runs
    from twin.presentation.report import write_comparison
    from twin.presentation.tables import fitted_tables
    from twin.run.outputs import check_output_folder, timestamped_path

    if len(runs) < 2:
        raise TwinInputError("twin compare needs at least two run folders (twin report describes one run)")
    out = out if out is not None else timestamped_path("compare")
    check_output_folder(out, force=force, inputs=runs)  # before the work: a wrong --out is refused at once
    with _progress("comparing") as step:
        step("reading the runs")
        comparison = compare_runs(runs, amortisation_years=amortisation_years)
        write_comparison(comparison, out, force=force, on_step=step)

    console = Console(highlight=False, width=None if Console().is_terminal else 120)
    for sentence in build_verdict(comparison).sentences:
        console.print(sentence, soft_wrap=False)
    for r in range(1, len(comparison.runs)):
        how = "paired, common random numbers" if comparison.paired[r] else "Welch"
        columns, rows = _difference_rows(comparison, r)
        title = (f"{comparison.runs[r].label} minus {comparison.runs[0].label} per year ({how}; 95% interval; "
                 "▲ better ▼ worse ○ no practical difference ◇ uncertain)")
        for table in fitted_tables(title, columns, rows, console.width):
            console.print(table)
    for line in comparison.unaligned:
        click.echo(f"not aligned: {line}", err=True)
    for note in comparison.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(str(out))


@click.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
@out_option("HTML file", file=True, default_help="RUN_DIR/report.html")
@force_option("report")
@_AMORTISATION
def report_command(run_dir: Path, out: Path | None, force: bool, amortisation_years: float) -> None:
    """Write a self-contained HTML report (one file, images embedded) of the run in RUN_DIR."""
    from twin.presentation.report import write_run_report

    with _progress("report") as step:
        path = write_run_report(run_dir, out, amortisation_years=amortisation_years, force=force, on_step=step)
    click.echo(str(path))


__all__ = ["compare_command", "report_command"]
