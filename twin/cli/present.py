"""Click commands ``twin compare`` and ``twin report``: parse, call :mod:`twin.presentation.compare` /
:mod:`twin.presentation.report`, print. No statistics or drawing here."""

from __future__ import annotations

import math
from pathlib import Path

import click

from twin.cli.options import force_option, out_option
from twin.presentation.compare import DEFAULT_AMORTISATION_YEARS, HEADLINE_KPIS

_AMORTISATION = click.option(
    "--amortisation-years", type=float, default=DEFAULT_AMORTISATION_YEARS, show_default=True,
    help="Straight-line amortisation period of kiosk capex for the cost per interview, years.")


def _difference_cell(comparison, other: int, phase: str, kpi: str, fmt: str) -> str:
    d = comparison.difference(other, phase, kpi)
    if d is None or math.isnan(d.test.diff):
        return "-"
    text = ("+" if d.test.diff > 0 else "") + fmt.format(d.test.diff)
    if d.test.deterministic:
        text += "\nexact"
    elif math.isnan(d.test.p_value):
        text += "\np n/a"
    else:
        text += "\np<0.001" if d.test.p_value < 0.001 else f"\np={d.test.p_value:.3f}"
    if d.test.significant:
        text = f"[bold yellow]{text} *[/]"
    return text


@click.command("compare")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@out_option("Output folder", default_help="results/compare-<UTC time>")
@force_option("comparison folder")
@_AMORTISATION
def compare_command(runs: tuple[Path, ...], out: Path | None, force: bool, amortisation_years: float) -> None:
    """Compare RUN folders side by side (the first is the reference): plots, maps, report.html."""
    from rich.console import Console
    from rich.table import Table

    from twin.errors import TwinInputError
    from twin.presentation.compare import compare_runs
    from twin.presentation.report import write_comparison
    from twin.run.outputs import check_output_folder, timestamped_path

    if len(runs) < 2:
        raise TwinInputError("twin compare needs at least two run folders (twin report describes one run)")
    out = out if out is not None else timestamped_path("compare")
    check_output_folder(out, force=force, inputs=runs)  # before the work: a wrong --out is refused at once
    comparison = compare_runs(runs, amortisation_years=amortisation_years)
    write_comparison(comparison, out, force=force)

    console = Console(highlight=False, width=None if Console().is_terminal else 160)
    unit = " per year" if comparison.per_year else ""
    headline = [k for k in HEADLINE_KPIS if k[0] in comparison.kpis]
    for r in range(1, len(comparison.runs)):
        table = Table(title=f"{comparison.runs[r].label} minus {comparison.runs[0].label}: difference of means, "
                            "Welch p-value (* significant at 5%)", show_lines=True)
        table.add_column("phase")
        for kpi, label, _, kpi_unit in headline:
            suffix = unit if kpi in ("interviews_served", "unmet_total", "travel_avoided_km") else ""
            table.add_column(f"{label}\n({kpi_unit}{suffix})", justify="right")
        for a in comparison.phases:
            name = a.label if a.matches[r] in (None, a.label) else f"{a.label}\n(= {a.matches[r]})"
            table.add_row(name, *(_difference_cell(comparison, r, a.label, kpi, fmt) for kpi, _, fmt, _ in headline))
        console.print(table)
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

    click.echo(str(write_run_report(run_dir, out, amortisation_years=amortisation_years, force=force)))


__all__ = ["compare_command", "report_command"]
