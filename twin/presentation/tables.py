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


__all__ = ["HEADLINE_KPIS", "mean_ci_cell", "run_summary_table"]
