"""Terminal tables: the run summary ``twin run`` prints (rich), with the formatters of its cells."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table

#: Columns of the run summary: (KPI, column label, format of its value).
HEADLINE_KPIS = (
    ("interviews_served", "interviews", "{:,.0f}"),
    ("unmet_total", "unmet", "{:,.0f}"),
    ("wait_mean_min", "wait min", "{:.1f}"),
    ("wait_p95_min", "p95 wait", "{:.1f}"),
    ("kiosk_utilisation", "kiosk use", "{:.1%}"),
    ("population_within_15km", "pop<15km", "{:,.0f}"),
    ("mos_mean", "MOS", "{:.2f}"),
    ("share_mos_below_3", "MOS<3", "{:.1%}"),
    ("share_usable", "usable", "{:.0%}"),
)


def mean_ci_cell(summary: Mapping[str, Any], phase: str, kpi: str, fmt: str) -> str:
    """``mean ±half-width`` of a summary cell (``-`` when undefined; no ``±`` when the half-width is 0)."""
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


def run_summary_table(title: str, phases: Sequence[str], summary: Mapping[str, Any]) -> Table:
    """The run summary: one row per phase, the :data:`HEADLINE_KPIS` as mean ± 95% CI half-width."""
    table = Table(title=title)
    table.add_column("phase")
    for _, label, _ in HEADLINE_KPIS:
        table.add_column(label, justify="right")
    for phase in phases:
        table.add_row(phase, *(mean_ci_cell(summary, phase, kpi, fmt) for kpi, _, fmt in HEADLINE_KPIS))
    return table


def years_table(by_year: Mapping[str, Any], full_years: Mapping[str, Any]) -> Table:
    """Interviews, unmet needs and travel avoided per calendar year, and their total over the full years."""
    table = Table(title="per calendar year (mean ± 95% CI; a partial year: days simulated)")
    for name in ("year", "days", "interviews", "unmet", "travel avoided km"):
        table.add_column(name, justify="left" if name == "year" else "right")
    kpis = (("interviews_served", "{:,.0f}"), ("unmet_total", "{:,.0f}"), ("travel_avoided_km", "{:,.0f}"))
    for year, cells in by_year.items():
        days = cells["days_simulated"]["mean"]
        table.add_row(year, f"{days:.0f}", *(mean_ci_cell(by_year, year, kpi, fmt) for kpi, fmt in kpis))
    years = full_years.get("years") or []
    if years:
        table.add_row(f"{years[0]}-{years[-1]} total", "", *(mean_ci_cell({"t": full_years}, "t", kpi, fmt)
                                                             for kpi, fmt in kpis), end_section=True)
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
        table.add_row(r.what, r.kpi, relation.get(r.relation, "") + f"{r.observed:,.0f}", predicted,
                      "-" if r.ratio is None else f"{r.ratio:.2f}",
                      "-" if r.in_ci is None else ("yes" if r.in_ci else "NO"), r.source[:60])
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


__all__ = ["HEADLINE_KPIS", "hindcast_table", "mean_ci_cell", "run_summary_table", "unstable_lines", "years_table"]
