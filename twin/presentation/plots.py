"""Rollout plots of a run's summary (PNG). Each drawing function takes an optional matplotlib ``ax``.

Figures are built with :class:`matplotlib.figure.Figure` (no pyplot global state), so plotting works in
worker processes and headless machines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from twin.run.atomic import atomic_write_bytes
from twin.vocabulary import UNMET_REASONS

UNMET_LABELS = {
    "gen1_limit": "generation-1 service limit",
    "no_agent": "no agent reachable",
    "line_down": "line down",
    "too_far": "too far from a kiosk",
    "gave_up": "gave up waiting",
}


def _mean_ci(summary: Mapping[str, Any], phases: Sequence[str], kpi: str) -> tuple[np.ndarray, np.ndarray]:
    means, halves = [], []
    for phase in phases:
        cell = summary.get(phase, {}).get(kpi, {})
        mean = cell.get("mean")
        half = cell.get("ci95_half_width")
        means.append(np.nan if mean is None else mean)
        halves.append(0.0 if half is None else half)
    return np.array(means, dtype=float), np.array(halves, dtype=float)


def _new_ax(ax: Axes | None) -> tuple[Figure | None, Axes]:
    if ax is not None:
        return None, ax
    fig = Figure(figsize=(7.5, 4.2), dpi=110, layout="constrained")
    return fig, fig.add_subplot()


def plot_kpi(phases: Sequence[str], summary: Mapping[str, Any], kpi: str, *, ylabel: str, title: str,
             ax: Axes | None = None, label: str | None = None, scale: float = 1.0) -> Axes:
    """Bars of a KPI's mean per phase with 95% CI error bars."""
    _, ax = _new_ax(ax)
    mean, half = _mean_ci(summary, phases, kpi)
    x = np.arange(len(phases))
    ax.bar(x, mean * scale, yerr=half * scale, capsize=4, color="#4C72B0", label=label)
    ax.set_xticks(x, phases, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return ax


def plot_unmet(phases: Sequence[str], summary: Mapping[str, Any], *, ax: Axes | None = None,
               reasons: Sequence[str] = UNMET_REASONS) -> Axes:
    """Unmet kiosk demand per phase, stacked by reason (means)."""
    _, ax = _new_ax(ax)
    x = np.arange(len(phases))
    bottom = np.zeros(len(phases))
    palette = dict(zip(UNMET_REASONS, ["#DD8452", "#C44E52", "#8172B3", "#937860", "#DA8BC3"]))
    for reason in reasons:
        color = palette[reason]
        mean, _ = _mean_ci(summary, phases, f"unmet_{reason}")
        mean = np.nan_to_num(mean)
        ax.bar(x, mean, bottom=bottom, color=color, label=UNMET_LABELS[reason])
        bottom += mean
    ax.set_xticks(x, phases, rotation=20, ha="right")
    ax.set_ylabel("unmet kiosk demand (needs per phase)")
    ax.set_title("Unmet demand by reason")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return ax


def _save(fig: Figure, path: Path) -> Path:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return atomic_write_bytes(path, buffer.getvalue())


def write_rollout_plots(folder: Path, phases: Sequence[str], summary: Mapping[str, Any], title: str) -> list[Path]:
    """Write the standard rollout plots of a run summary into ``folder``; returns the PNG paths."""
    folder = Path(folder)
    written = []

    fig = Figure(figsize=(14, 7.5), dpi=100, layout="constrained")
    axes = fig.subplots(2, 3)
    plot_kpi(phases, summary, "interviews_served", ylabel="interviews per phase", title="Interviews served",
             ax=axes[0, 0])
    plot_unmet(phases, summary, ax=axes[0, 1], reasons=[r for r in UNMET_REASONS if r != "too_far"])
    axes[0, 1].set_title("Unmet demand at the kiosks, by reason")
    plot_kpi(phases, summary, "unmet_too_far", ylabel="needs per phase",
             title="Needs lost to distance (no kiosk near enough)", ax=axes[0, 2])
    plot_kpi(phases, summary, "wait_mean_min", ylabel="minutes", title="Mean waiting time", ax=axes[1, 0])
    plot_kpi(phases, summary, "mos_mean", ylabel="MOS (1-5)", title="Mean interview quality (MOS)", ax=axes[1, 1])
    axes[1, 1].set_ylim(1, 5)
    plot_kpi(phases, summary, "share_mos_below_3", ylabel="% of interviews", title="Interviews under MOS 3",
             ax=axes[1, 2], scale=100.0)
    fig.suptitle(f"{title}: rollout by phase (means, 95% CI over replications)")
    written.append(_save(fig, folder / "rollout.png"))

    fig = Figure(figsize=(11, 4), dpi=110, layout="constrained")
    axes = fig.subplots(1, 2)
    plot_kpi(phases, summary, "population_within_15km", ylabel="inhabitants (thousands)",
             title="Population within 15 km of a kiosk", ax=axes[0], scale=1e-3)
    plot_kpi(phases, summary, "travel_avoided_km", ylabel="km (thousands)", title="Travel avoided (round trips)",
             ax=axes[1], scale=1e-3)
    fig.suptitle(f"{title}: coverage and travel avoided")
    written.append(_save(fig, folder / "coverage.png"))
    return written
