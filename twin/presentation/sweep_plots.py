"""Figures of a sweep: each headline KPI against each swept parameter (means with 95% CI bars, one line
per combination of the other parameters), from the sweep's tidy table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from twin.presentation.kpimeta import kpi_meta
from twin.run.atomic import atomic_write_bytes

#: KPIs drawn against each parameter (the run summary's headline ones).
SWEEP_KPIS = ("interviews_served", "unmet_total", "wait_mean_min", "kiosk_utilisation")


def _period(rows: Sequence[Mapping[str, Any]], kpi: str) -> tuple[str, str]:
    """The period a KPI is shown for: its last calendar year when it has yearly values, else the last
    phase."""
    years = sorted({r["period"] for r in rows if r["period_kind"] == "year" and r["kpi"] == kpi})
    if years:
        return "year", years[-1]
    phases = [r["period"] for r in rows if r["period_kind"] == "phase" and r["kpi"] == kpi]
    return "phase", phases[-1]


def plot_kpi_against(rows: Sequence[Mapping[str, Any]], kpi: str, parameter: str, parameters: Sequence[str],
                     ax: Any) -> None:
    """Mean ± 95% CI of ``kpi`` against ``parameter`` on ``ax``; a line per value of the other parameters."""
    kind, period = _period(rows, kpi)
    cells = [r for r in rows if r["period_kind"] == kind and r["period"] == period and r["kpi"] == kpi]
    others = [p for p in parameters if p != parameter]
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in cells:
        groups.setdefault(tuple(row.get(p) for p in others), []).append(row)
    for key, group in groups.items():
        group = sorted(group, key=lambda r: (str(type(r[parameter])), r[parameter]))
        x = [str(r[parameter]) for r in group]
        y = [r["mean"] if r["mean"] is not None else float("nan") for r in group]
        err = [r["ci95_half_width"] or 0.0 for r in group]
        label = ", ".join(f"{p.split('.')[-1]}={v}" for p, v in zip(others, key)) or None
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=label)
    ax.set_title(f"{kpi_meta(kpi).label} ({kind} {period})", fontsize=9)
    ax.set_xlabel(parameter)
    ax.grid(alpha=0.3)
    if len(groups) > 1:
        ax.legend(fontsize=7)


def _png(fig: Figure, path: Path) -> Path:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return atomic_write_bytes(path, buffer.getvalue())


def write_sweep_plots(folder: Path, rows: Sequence[Mapping[str, Any]], parameters: Sequence[str]) -> list[Path]:
    """One PNG per swept parameter (``sweep-<parameter>.png``) with a panel per KPI of :data:`SWEEP_KPIS`."""
    written = []
    for parameter in parameters:
        fig = Figure(figsize=(12, 3.6), layout="constrained")
        axes = fig.subplots(1, len(SWEEP_KPIS))
        for ax, kpi in zip(axes, SWEEP_KPIS):
            plot_kpi_against(rows, kpi, parameter, parameters, ax)
            ax.set_ylabel(kpi_meta(kpi).header)
        fig.suptitle(f"sweep: KPIs against {parameter} (mean, 95% CI over replications)")
        written.append(_png(fig, Path(folder) / f"sweep-{parameter.replace('.', '_')}.png"))
    return written


__all__ = ["SWEEP_KPIS", "plot_kpi_against", "write_sweep_plots"]
