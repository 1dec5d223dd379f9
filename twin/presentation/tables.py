"""Terminal tables: the run summary ``twin run`` prints (rich), with the formatters of its cells."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table

from twin.presentation.kpimeta import kpi_meta

#: Columns of the run summary (names, headers and formats from :mod:`twin.presentation.kpimeta`).
HEADLINE_KPIS = ("interviews_served", "unmet_total", "wait_mean_min", "wait_p95_min", "kiosk_utilisation",
                 "population_within_15km", "mos_mean", "share_mos_below_3", "share_usable")


def mean_ci_cell(summary: Mapping[str, Any], phase: str, kpi: str) -> str:
    """``mean ±half-width`` of a summary cell in the KPI's format (``-`` when undefined; no ``±`` when the
    half-width is 0)."""
    cell = summary.get(phase, {}).get(kpi)
    if cell is None:
        return "-"
    mean, half = cell["mean"], cell["ci95_half_width"]
    if mean is None:
        return "-"
    meta = kpi_meta(kpi)
    text = meta.value(mean)
    if half is not None and half > 0 and not math.isclose(half, 0.0):
        text += " ±" + meta.value(half)
    return text


class FittedTable:
    """A rich renderable: :func:`fitted_tables` cut to the width it is printed at (numbers never cut)."""

    def __init__(self, title: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[str]],
                 first: int = 1) -> None:
        self.title, self.columns, self.rows, self.first = title, list(columns), [list(r) for r in rows], first

    def __rich_console__(self, console: Any, options: Any) -> Any:
        """Yield the column groups that fit ``options.max_width`` (one table when it fits; else with each
        ``±`` half-width on a second line, then in column groups)."""
        tables = fitted_tables(self.title, self.columns, self.rows, options.max_width, self.first)
        if len(tables) > 1:
            folded = [[str(c).replace(" ±", "\n±") for c in row] for row in self.rows]
            tables = fitted_tables(self.title, self.columns, folded, options.max_width, self.first)
        yield from tables


def run_summary_table(title: str, phases: Sequence[str], summary: Mapping[str, Any]) -> FittedTable:
    """The run summary: one row per phase, the :data:`HEADLINE_KPIS` as mean ± 95% CI half-width (the
    half-width on a second line); split into column groups on a narrow terminal."""
    columns = [("phase", "left")] + [(kpi_meta(kpi).short, "right") for kpi in HEADLINE_KPIS]
    rows = [[phase, *(mean_ci_cell(summary, phase, kpi) for kpi in HEADLINE_KPIS)] for phase in phases]
    return FittedTable(title, columns, rows)


def years_table(by_year: Mapping[str, Any], full_years: Mapping[str, Any]) -> Table:
    """Interviews, unmet needs and travel avoided per calendar year, and their total over the full years."""
    table = Table(title="per calendar year (mean ± 95% CI; a partial year: days simulated)")
    for name in ("year", "days", "interviews", "unmet", "travel avoided km"):
        table.add_column(name, justify="left" if name == "year" else "right")
    kpis = ("interviews_served", "unmet_total", "travel_avoided_km")
    for year, cells in by_year.items():
        days = cells["days_simulated"]["mean"]
        table.add_row(year, f"{days:.0f}", *(mean_ci_cell(by_year, year, kpi) for kpi in kpis))
    years = full_years.get("years") or []
    if years:
        table.add_row(f"{years[0]}-{years[-1]} total", "", *(mean_ci_cell({"t": full_years}, "t", kpi)
                                                             for kpi in kpis), end_section=True)
    return table


def hindcast_table(rows: Sequence[Any]) -> Table:
    """Observed figures beside the twin's predictions (:class:`twin.kpis.HindcastRow`)."""
    table = Table(title="hindcast: observed in the real system vs predicted by the twin (mean ± 95% CI)")
    for name, justify in (("phase/year", "left"), ("KPI", "left"), ("observed", "right"), ("predicted", "right"),
                          ("ratio", "right"), ("in CI", "center"), ("source", "left")):
        table.add_column(name, justify=justify, overflow="fold")
    relation = {"at_least": "≥ ", "about": "≈ ", "equals": ""}
    for r in rows:
        predicted = "-" if r.predicted is None else f"{r.predicted:,.0f}" + (
            f" ±{r.ci95_half_width:,.0f}" if r.ci95_half_width else "")
        table.add_row(r.what, kpi_meta(r.kpi).label, relation.get(r.relation, "") + f"{r.observed:,.0f}", predicted,
                      "-" if r.ratio is None else f"{r.ratio:.2f}",
                      "-" if r.in_ci is None else ("yes" if r.in_ci else "NO"), r.source)
    return table


def unstable_lines(phases: Sequence[str], summary: Mapping[str, Any], service_ids: Sequence[str]) -> list[str]:
    """One line per phase and service whose offered load reaches its stations (``unstable_<service>``)."""
    lines = []
    for phase in phases:
        for sid in service_ids:
            cell = summary.get(phase, {}).get(f"unstable_{sid}")
            if cell and cell.get("mean"):
                load = summary[phase].get(f"offered_load_{sid}", {}).get("mean")
                lines.append(f"unstable: {sid} in {phase}: {load:.1f} erlangs offered, as many as its stations or more "
                             "(the queue grows with the horizon; waits are not steady-state)")
    return lines


def fitted_tables(title: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[str]], width: int,
                  first: int = 1) -> list[Table]:
    """A table cut into column groups that each fit ``width`` characters, never cutting a number.

    The first ``first`` columns (row labels) repeat in every group; headers wrap on spaces (and are
    short names from :mod:`twin.presentation.kpimeta`); each cell keeps its full width (numbers are
    never truncated: a column's width is its longest cell line).

    Args:
        title: the title of the first group (later groups say "(continued)").
        columns: (header, justify) per column.
        rows: cells (text, lines split on newlines) per row.
        width: console width, characters.
        first: leading label columns repeated in every group.
    """
    def cell_width(i: int) -> int:
        lines = [line for row in rows for line in str(row[i]).split("\n")]
        head = max((len(w) for w in columns[i][0].split()), default=1)
        return max([head, *(len(_plain(line)) for line in lines)])

    widths = [cell_width(i) for i in range(len(columns))]
    fixed = sum(widths[:first]) + 3 * first + 1
    groups: list[list[int]] = []
    current: list[int] = []
    used = fixed
    for i in range(first, len(columns)):
        need = widths[i] + 3
        if current and used + need > width:
            groups.append(current)
            current, used = [], fixed
        current.append(i)
        used += need
    if current or not groups:
        groups.append(current)
    tables = []
    for g, group in enumerate(groups):
        table = Table(title=title if g == 0 else f"{title} (continued)", show_lines=any("\n" in str(c) for r in rows
                                                                                        for c in r))
        for i in [*range(first), *group]:
            header, justify = columns[i]
            table.add_column(header, justify=justify, overflow="fold", width=widths[i])
        for row in rows:
            table.add_row(*(str(row[i]) for i in [*range(first), *group]))
        tables.append(table)
    return tables


def _plain(text: str) -> str:
    """Text without rich markup (``[b]...[/]``)."""
    return re.sub(r"\[/?[A-Za-z #0-9]*\]", "", text)


__all__ = ["HEADLINE_KPIS", "FittedTable", "fitted_tables", "hindcast_table", "mean_ci_cell", "run_summary_table", "unstable_lines",
           "years_table"]
