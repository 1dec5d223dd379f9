"""Pictures and the shareable HTML report of a run or a comparison of runs.

Figures are built with :class:`matplotlib.figure.Figure` (no pyplot global state); every drawing
function takes an optional ``ax``. The HTML report is one self-contained file: PNGs embedded as base64
``data:`` URIs, inline CSS, no script, no external font, stylesheet or link, so it opens offline and can
be mailed as is. Statistics and alignment come from :mod:`twin.compare`.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import html
import io
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

import twin.model
from twin.errors import TwinInputError
from twin.presentation.compare import (
    ALPHA,
    COST_KPI,
    COUNT_KPIS,
    HEADLINE_KPIS,
    Comparison,
    compare_runs,
    comparison_json,
    expected_kiosk_demand_per_year,
)
from twin.presentation.plots import UNMET_LABELS
from twin.run.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from twin.run.outputs import check_output_file, prepare_output_folder
from twin.vocabulary import UNMET_REASONS

#: Tag in every report's head: a report file may only be overwritten by a later report.
REPORT_MARKER = "<meta name='generator' content='twin report'>"

RUN_COLORS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C")
REASON_COLORS = dict(zip(UNMET_REASONS, ("#DD8452", "#C44E52", "#8172B3", "#937860", "#DA8BC3")))
RUN_HATCHES = ("", "///", "...", "xxx", "\\\\\\", "ooo", "---", "+++")
GEN_COLORS = {1: "#E07B00", 2: "#1F5FAD"}
DEPARTEMENT_COLORS = ("#8fc1e3", "#97d38f", "#f8c18a", "#c5b8e0", "#f4a7a0", "#b8e0b0", "#cfcfcf", "#f7c6df")


# --------------------------------------------------------------------------------------------------
# Drawing helpers


def _new_ax(ax: Axes | None, figsize: tuple[float, float] = (7.5, 4.4)) -> Axes:
    if ax is not None:
        return ax
    fig = Figure(figsize=figsize, dpi=110, layout="constrained")
    return fig.add_subplot()


def figure_png(fig: Figure) -> bytes:
    """The figure rendered as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _run_legend_label(comparison: Comparison, r: int) -> str:
    run = comparison.runs[r]
    return run.label + (" (partial)" if run.partial else "")


def _count_unit(comparison: Comparison, kpi: str) -> str:
    suffix = comparison.kpi_label_suffix(kpi)
    return f" {suffix}" if suffix else ""


def plot_kpi_by_run(comparison: Comparison, kpi: str, *, ylabel: str, title: str, scale: float = 1.0,
                    ax: Axes | None = None, legend: bool = True) -> Axes:
    """Grouped bars: a KPI's mean per aligned phase, one bar per run, 95% CI error bars.

    Bars of runs whose difference from the reference is significant (Welch, 5%) carry a star.

    Args:
        comparison: from :func:`twin.compare.compare_runs` (one run is fine).
        kpi: KPI name (see :func:`twin.kpis.kpi_names`, or :data:`twin.compare.COST_KPI`).
        ylabel, title: axis label (with the unit) and title.
        scale: factor applied to values (e.g. 100 for percent, 1e-3 for thousands).
        ax: axes to draw on (default: a new figure's).
        legend: draw the run legend.
    """
    ax = _new_ax(ax)
    phases = [a.label for a in comparison.phases]
    n_runs = len(comparison.runs)
    x = np.arange(len(phases))
    width = 0.8 / n_runs
    for r in range(n_runs):
        stats_ = [comparison.stats(r, p, kpi) for p in phases]
        mean = np.array([s.mean for s in stats_]) * scale
        half = np.nan_to_num(np.array([s.ci95_half_width for s in stats_])) * scale
        pos = x - 0.4 + width * (r + 0.5)
        ax.bar(pos, np.nan_to_num(mean), width=width * 0.95, yerr=half, capsize=3, color=RUN_COLORS[r % 8],
               label=_run_legend_label(comparison, r), error_kw={"elinewidth": 1})
        if r > 0:
            for i, p in enumerate(phases):
                d = comparison.difference(r, p, kpi)
                if d is not None and d.test.significant and not math.isnan(mean[i]):
                    ax.annotate("*", (pos[i], mean[i] + half[i]), ha="center", va="bottom", fontsize=12,
                                fontweight="bold")
    ax.set_xticks(x, phases, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.margins(y=0.12)
    if legend:
        handles, labels = ax.get_legend_handles_labels()
        if n_runs > 1:
            handles.append(Line2D([], [], linestyle="none", marker="$*$", color="black", markersize=8))
            labels.append(f"significantly different from A (Welch, {ALPHA:.0%})")
        ax.legend(handles, labels, fontsize=8)
    return ax


def plot_unmet_by_run(comparison: Comparison, *, ax: Axes | None = None) -> Axes:
    """Unmet kiosk demand per aligned phase, stacked by reason (means), one hatched bar per run,
    with the 95% CI of the total."""
    ax = _new_ax(ax)
    phases = [a.label for a in comparison.phases]
    n_runs = len(comparison.runs)
    x = np.arange(len(phases))
    width = 0.8 / n_runs
    tops: list[float] = []
    for r in range(n_runs):
        pos = x - 0.4 + width * (r + 0.5)
        bottom = np.zeros(len(phases))
        for reason in UNMET_REASONS:
            mean = np.nan_to_num([comparison.stats(r, p, f"unmet_{reason}").mean for p in phases])
            ax.bar(pos, mean, bottom=bottom, width=width * 0.95, color=REASON_COLORS[reason],
                   hatch=RUN_HATCHES[r % 8], edgecolor="white" if r == 0 else "#333333", linewidth=0.3)
            bottom += mean
        total = [comparison.stats(r, p, "unmet_total") for p in phases]
        err = np.nan_to_num([s.ci95_half_width for s in total])
        ax.errorbar(pos, bottom, yerr=err, fmt="none", ecolor="black", capsize=3, elinewidth=1)
        tops.extend(bottom + err)
    handles: list[Any] = [Patch(color=REASON_COLORS[reason], label=UNMET_LABELS[reason]) for reason in UNMET_REASONS]
    if n_runs > 1:
        handles += [Patch(facecolor="white", edgecolor="#333333", hatch=RUN_HATCHES[r % 8],
                          label="run " + comparison.runs[r].label.split(":", 1)[0]
                          + (" (partial)" if comparison.runs[r].partial else "")) for r in range(n_runs)]
    top = max(tops, default=0.0)
    if top > 0:
        ax.set_ylim(0, top * 1.45)  # head room for the legend
    ax.legend(handles=handles, fontsize=7.5, ncol=3 if n_runs > 1 else 2, loc="upper center", framealpha=0.9,
              columnspacing=1.0, handlelength=1.5)
    ax.set_xticks(x, phases, rotation=20, ha="right")
    ax.set_ylabel(f"unmet kiosk needs{_count_unit(comparison, 'unmet_total')}")
    ax.set_title("Unmet demand by reason (error bar: 95% CI of the total)")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return ax


def _departement_names(loaded: Any) -> dict[str, str]:
    """Departement code -> name from the communes file's ``departement`` column (codes if absent)."""
    names: dict[str, str] = {}
    try:
        path = loaded.path.parent / loaded.spec.region.communes_file
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row.get("departement"):
                    names.setdefault(row["departement_code"], row["departement"])
    except (OSError, KeyError, AttributeError):
        pass
    return names


def network_state(loaded: Any, phase_name: str) -> dict[str, dict[str, Any]]:
    """Sites installed in a phase with their generation: {site id: {"kind", "generation", "upgraded"}}.

    Follows the scenario's phases (add, upgrade, remove) up to and including ``phase_name``.

    Raises:
        KeyError: no such phase in the scenario.
    """
    spec = loaded.spec
    if phase_name not in [p.name for p in spec.phases]:
        raise KeyError(phase_name)
    sites = {s.id: s for s in spec.sites}
    state: dict[str, dict[str, Any]] = {}
    for phase in spec.phases:
        for sid in phase.add:
            state[sid] = {"kind": sites[sid].kind, "generation": sites[sid].generation, "upgraded": False}
        for sid in phase.upgrade:
            state[sid].update(generation=2, upgraded=True)
        for sid in phase.remove:
            state.pop(sid, None)
        if phase.name == phase_name:
            break
    return state


def _draw_communes(ax: Axes, loaded: Any, label_towns: int) -> list[Any]:
    """Communes as points (area ∝ population) coloured by departement; the largest ones named."""
    communes = loaded.communes
    lon = np.array([c.lon for c in communes])
    lat = np.array([c.lat for c in communes])
    pop = np.array([c.population for c in communes], dtype=float)
    dep = np.array([c.departement_code for c in communes])
    names = _departement_names(loaded)
    size = 3.0 + 600.0 * pop / max(pop.max(), 1.0)
    handles: list[Any] = []
    for k, code in enumerate(sorted(set(dep))):
        sel = dep == code
        color = DEPARTEMENT_COLORS[k % len(DEPARTEMENT_COLORS)]
        ax.scatter(lon[sel], lat[sel], s=size[sel], color=color, edgecolors="#777777", linewidths=0.3,
                   alpha=0.85, zorder=1)
        handles.append(Line2D([], [], linestyle="none", marker="o", markersize=7, markerfacecolor=color,
                              markeredgecolor="#777777", label=f"communes of {names.get(code, code)} ({code})"))
    for i in np.argsort(pop)[::-1][:label_towns]:
        ax.annotate(communes[i].name, (lon[i], lat[i]), xytext=(4, 4), textcoords="offset points", fontsize=7.5,
                    color="#333333", zorder=5)
    return handles


def _draw_user_kiosks(ax: Axes, loaded: Any, state: Mapping[str, Mapping[str, Any]],
                      demand: Mapping[str, float]) -> list[Any]:
    """User kiosks coloured by generation (an orange ring: upgraded), sized by expected demand."""
    top = max(demand.values(), default=0.0)

    def kiosk_size(sid: str) -> float:
        if not demand or top <= 0:
            return 70.0
        return 25.0 + 330.0 * demand.get(sid, 0.0) / top

    handles: list[Any] = []
    users = [sid for sid, st in state.items() if st["kind"] == "user"]
    for gen in (1, 2):
        for upgraded in (False, True):
            ids = [sid for sid in users if state[sid]["generation"] == gen and state[sid]["upgraded"] == upgraded]
            if not ids:
                continue
            xy = np.array([loaded.site_latlon[sid] for sid in ids])
            ax.scatter(xy[:, 1], xy[:, 0], s=[kiosk_size(sid) for sid in ids], color=GEN_COLORS[gen],
                       edgecolors=GEN_COLORS[1] if upgraded else "white", linewidths=2.0 if upgraded else 0.8,
                       alpha=0.9, zorder=3)
            text = f"user kiosks, generation {gen}" + (" (upgraded from 1)" if upgraded else "")
            handles.append(Line2D([], [], linestyle="none", marker="o", markersize=8,
                                  markerfacecolor=GEN_COLORS[gen],
                                  markeredgecolor=GEN_COLORS[1] if upgraded else "white",
                                  markeredgewidth=2.0 if upgraded else 0.8, label=f"{text}: {len(ids)}"))
    if demand and top > 0:
        for ref in _nice_levels(top):
            handles.append(Line2D([], [], linestyle="none", marker="o", markersize=math.sqrt(25 + 330 * ref / top),
                                  markerfacecolor="#bbbbbb", markeredgecolor="white",
                                  label=f"kiosk size: {ref:,.0f} interviews/year expected"))
    return handles


def _draw_expert_kiosks(ax: Axes, loaded: Any, state: Mapping[str, Mapping[str, Any]]) -> list[Any]:
    """Expert kiosks as black squares sized by how many share the office."""
    experts: dict[tuple[float, float], int] = {}
    for sid, st in state.items():
        if st["kind"] == "expert":
            key = loaded.site_latlon[sid]
            experts[key] = experts.get(key, 0) + 1
    if not experts:
        return []
    xy = np.array(list(experts))
    ax.scatter(xy[:, 1], xy[:, 0], s=[30.0 + 25.0 * n for n in experts.values()], marker="s",
               color="black", alpha=0.8, zorder=4)
    return [Line2D([], [], linestyle="none", marker="s", markersize=7, color="black",
                   label=f"expert kiosks: {sum(experts.values())} (size: number at the office)")]


def plot_network_map(loaded: Any, phase_name: str, *, kiosk_demand_per_year: Mapping[str, float] | None = None,
                     ax: Axes | None = None, title: str | None = None, label_towns: int = 6) -> Axes:
    """Map of the network in a phase: communes and kiosks on plain lon/lat axes (no tiles).

    Communes are points whose area is proportional to population, coloured by departement (no offline
    departement border data is installed, so borders are not drawn). User kiosks are circles coloured
    by generation (an orange ring marks a generation-1 kiosk upgraded to generation 2), sized by
    ``kiosk_demand_per_year`` when given; expert kiosks are black squares sized by how many share the
    office. The aspect ratio is 1 / cos(mean latitude) so that distances look right.

    Args:
        loaded: a :class:`twin.scenario.spec.LoadedScenario`.
        phase_name: the phase whose network is drawn.
        kiosk_demand_per_year: user kiosk id -> expected interviews per year (optional).
        ax: axes to draw on (default: a new figure's).
        title: the title (default: scenario and phase).
        label_towns: how many of the most populous communes to name.
    """
    ax = _new_ax(ax, figsize=(11.5, 8.0))
    state = network_state(loaded, phase_name)
    handles = _draw_communes(ax, loaded, label_towns)
    handles += _draw_user_kiosks(ax, loaded, state, dict(kiosk_demand_per_year or {}))
    handles += _draw_expert_kiosks(ax, loaded, state)
    mean_lat = float(np.mean([c.lat for c in loaded.communes]))
    ax.set_aspect(1.0 / math.cos(math.radians(mean_lat)))
    ax.set_xlabel("longitude (° E)")
    ax.set_ylabel("latitude (° N)")
    ax.set_title(title or f"{loaded.spec.name}: network in phase {phase_name}")
    ax.grid(alpha=0.25)
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), framealpha=0.9,
              title="communes: area ∝ population, coloured by\ndépartement (no offline border data installed)",
              title_fontsize=8)
    return ax


def _nice_levels(top: float) -> list[float]:
    """Two or three round reference values below ``top`` for a size legend."""
    exp = 10 ** math.floor(math.log10(top)) if top > 0 else 1
    levels = sorted({round(top / exp) * exp, round(top / exp / 2) * exp or exp, exp})
    return [v for v in levels if 0 < v <= top * 1.05][-3:]


# --------------------------------------------------------------------------------------------------
# Figure sets


def _overview_figure(c: Comparison, names: str, count: Mapping[str, str], has_cost: bool) -> Figure:
    """The six headline panels on one figure."""
    fig = Figure(figsize=(16, 9.5), dpi=100, layout="constrained")
    axes = fig.subplots(2, 3)
    plot_kpi_by_run(c, "interviews_served", ylabel=f"interviews{count['interviews_served']}",
                    title="Interviews served", ax=axes[0, 0])
    plot_unmet_by_run(c, ax=axes[0, 1])
    plot_kpi_by_run(c, "wait_mean_min", ylabel="minutes", title="Mean waiting time for an agent", ax=axes[0, 2],
                    legend=False)
    plot_kpi_by_run(c, "share_mos_below_3", ylabel="% of interviews", title="Interviews of poor quality (MOS < 3)",
                    scale=100.0, ax=axes[1, 0], legend=False)
    plot_kpi_by_run(c, "population_within_15km", ylabel="inhabitants (thousands)",
                    title="Population within 15 km of a kiosk", scale=1e-3, ax=axes[1, 1], legend=False)
    if has_cost:
        plot_kpi_by_run(c, COST_KPI, ylabel="EUR per interview served",
                        title=f"Cost per interview (capex over {c.amortisation_years:g} y + line opex)",
                        ax=axes[1, 2], legend=False)
    else:
        plot_kpi_by_run(c, "travel_avoided_km", ylabel="km (thousands)",
                        title=f"Travel avoided{count['travel_avoided_km']}", scale=1e-3, ax=axes[1, 2], legend=False)
    fig.suptitle(f"{names}: rollout by phase (means, 95% CI over replications)", fontsize=14)
    return fig


def _pair_figure(c: Comparison, names: str, title: str, panels: list[tuple[str, str, str, float]]) -> Figure:
    """Two KPI panels side by side: (kpi, ylabel, title, scale) each."""
    fig = Figure(figsize=(13, 4.8), dpi=110, layout="constrained")
    axes = fig.subplots(1, 2)
    for i, (kpi, ylabel, panel_title, scale) in enumerate(panels):
        plot_kpi_by_run(c, kpi, ylabel=ylabel, title=panel_title, scale=scale, ax=axes[i], legend=i == 0)
    fig.suptitle(f"{names}: {title}")
    return fig


def _utilisation_figure(c: Comparison, names: str) -> Figure:
    """Kiosk utilisation and each service's agent utilisation, one panel each."""
    agent_kpis = [k for k in c.kpis if k.startswith("agent_utilisation_")]
    panels = ["kiosk_utilisation", *agent_kpis]
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(5.5 * cols, 3.9 * rows), dpi=100, layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for i, kpi in enumerate(panels):
        title = ("User kiosks (booth time / opening time)" if kpi == "kiosk_utilisation"
                 else f"Agents of {kpi.removeprefix('agent_utilisation_').upper()}")
        plot_kpi_by_run(c, kpi, ylabel="% of capacity", title=title, scale=100.0, ax=axes[i], legend=i == 0)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(f"{names}: utilisation (mean, 95% CI)")
    return fig


def _map_figures(c: Comparison) -> dict[str, Figure]:
    """One map per run whose scenario is available, of its last phase."""
    figs: dict[str, Figure] = {}
    for run in c.runs:
        if run.scenario is None:
            continue
        last = run.phases[-1].name
        try:
            demand = expected_kiosk_demand_per_year(run.scenario, last)
        except Exception:  # noqa: BLE001 - sizing is optional; the map is still useful without it
            demand = None
        ax = plot_network_map(run.scenario, last, kiosk_demand_per_year=demand,
                              title=f"{run.label}: network in phase {last}")
        letter = run.label.split(":", 1)[0]
        figs[f"map-{letter}.png"] = ax.figure
    return figs


def comparison_figures(comparison: Comparison, with_maps: bool = True) -> dict[str, Figure]:
    """All the figures of a comparison (or of a single run), keyed by PNG file name.

    Returns:
        {"overview.png", "interviews_served.png", "unmet_by_reason.png", "waiting_time.png",
        "quality_mos_below_3.png", "coverage.png", "travel_avoided.png", "utilisation.png",
        "cost_per_interview.png" (when costs exist), "map-<letter>.png" per run with a scenario}.
    """
    c = comparison
    names = " vs ".join(r.label for r in c.runs)
    count = {k: _count_unit(c, k) for k in COUNT_KPIS}
    has_cost = COST_KPI in c.kpis and any(r.costs for r in c.runs)

    def single(kpi: str, ylabel: str, title: str, scale: float = 1.0) -> Figure:
        ax = _new_ax(None, figsize=(8.5, 4.8))
        plot_kpi_by_run(c, kpi, ylabel=ylabel, title=title, scale=scale, ax=ax)
        ax.figure.suptitle(names, fontsize=9)
        return ax.figure

    figs: dict[str, Figure] = {"overview.png": _overview_figure(c, names, count, has_cost)}
    figs["interviews_served.png"] = single("interviews_served", f"interviews{count['interviews_served']}",
                                           "Interviews served (mean, 95% CI)")
    ax = _new_ax(None, figsize=(9.5, 5.2))
    plot_unmet_by_run(c, ax=ax)
    ax.figure.suptitle(names, fontsize=9)
    figs["unmet_by_reason.png"] = ax.figure
    figs["waiting_time.png"] = _pair_figure(c, names, "waiting time (mean, 95% CI)", [
        ("wait_mean_min", "minutes", "Mean waiting time for an agent", 1.0),
        ("wait_p95_min", "minutes", "95th percentile of waiting time", 1.0)])
    figs["quality_mos_below_3.png"] = single("share_mos_below_3", "% of interviews",
                                             "Share of interviews under MOS 3 (poor quality)", scale=100.0)
    figs["coverage.png"] = _pair_figure(c, names, "coverage", [
        ("population_within_15km", "inhabitants (thousands)", "Population within 15 km (road) of a kiosk", 1e-3),
        ("population_within_30km", "inhabitants (thousands)", "Population within 30 km (road) of a kiosk", 1e-3)])
    figs["travel_avoided.png"] = single("travel_avoided_km", f"km (thousands){count['travel_avoided_km']}",
                                        "Travel avoided by citizens (round trips to the office)", scale=1e-3)
    figs["utilisation.png"] = _utilisation_figure(c, names)
    if has_cost:
        figs["cost_per_interview.png"] = single(
            COST_KPI, "EUR per interview served",
            f"Cost per interview served (kiosk capex amortised over {c.amortisation_years:g} years + line opex)")
    if with_maps:
        figs.update(_map_figures(c))
    return figs


# --------------------------------------------------------------------------------------------------
# HTML


CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1200px;
       color: #222; line-height: 1.4; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.88em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.55em; text-align: right; vertical-align: top; }
th { background: #f0f0f0; } td.l, th.l { text-align: left; }
td.sig { background: #fff2cc; font-weight: bold; }
.note { background: #fff8e1; border-left: 4px solid #f0ad4e; padding: 0.5em 1em; margin: 0.5em 0; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #555; }
.small { font-size: 0.85em; color: #555; }
"""


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _fmt(value: float, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return fmt.format(value)


def _kpi_format(kpi: str) -> str:
    for name, _, fmt, _ in HEADLINE_KPIS:
        if name == kpi:
            return fmt
    if "utilisation" in kpi or kpi.startswith("share_"):
        return "{:.1%}"
    if kpi == "mos_mean":
        return "{:.2f}"
    if kpi.endswith("_min"):
        return "{:,.1f}"
    return "{:,.0f}"


def _mean_ci_text(stats_: Any, fmt: str) -> str:
    if math.isnan(stats_.mean):
        return "–"
    text = _fmt(stats_.mean, fmt)
    if not math.isnan(stats_.ci95_half_width) and stats_.ci95_half_width > 0:
        text += " ± " + _fmt(stats_.ci95_half_width, fmt)
    return text


def _p_text(p: float) -> str:
    if math.isnan(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def demand_model_text() -> str:
    """The demand paragraph of :mod:`twin.model`'s docstring (a sentence or two), in plain text."""
    doc = twin.model.__doc__ or ""
    match = re.search(r"\*\*Demand\.\*\*(.*?)(?=\n- \*\*|\n\n)", doc, flags=re.DOTALL)
    if not match:
        return "See twin/model/__init__.py."
    return " ".join(match.group(1).replace("``", "").split())


def _calibration_html(path_text: str | None) -> str:
    if not path_text:
        return ""
    path = Path(path_text)
    if not path.is_file():
        return f"<p class='small'>Calibration table {_esc(path_text)} is not available here.</p>"
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return ""
    shown = rows[1:41]
    out = [f"<p class='small'>Calibration table {_esc(path_text)} ({len(rows) - 1} rows"
           + (", first 40 shown" if len(rows) > 41 else "") + "):</p><table><tr>"]
    out += [f"<th>{_esc(h)}</th>" for h in rows[0]]
    out.append("</tr>")
    for row in shown:
        out.append("<tr>" + "".join(f"<td>{_esc(v)}</td>" for v in row) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _img(png: bytes, alt: str, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f"<figure><img alt='{_esc(alt)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{_esc(caption)}</figcaption></figure>")


FIGURE_CAPTIONS = {
    "overview.png": "Overview: the headline indicators per phase. Error bars: 95% confidence intervals over "
                    "replications; a star marks a significant difference from run A (Welch t-test, 5%).",
    "interviews_served.png": "Video interviews served per phase.",
    "unmet_by_reason.png": "Kiosk needs that were not met, by reason (generation-1 service limit, no agent "
                           "reachable, line down, too far from a kiosk, gave up waiting).",
    "waiting_time.png": "Waiting time for an agent once at the kiosk: mean and 95th percentile.",
    "quality_mos_below_3.png": "Share of interviews whose quality score (MOS, 1-5) is under 3 ('fair').",
    "coverage.png": "Inhabitants whose nearest kiosk is within 15 or 30 km by road.",
    "travel_avoided.png": "Kilometres citizens did not drive to a service office thanks to the kiosks.",
    "utilisation.png": "Share of opening time the user kiosks are busy, and of slot time each service's agents "
                       "are busy.",
    "cost_per_interview.png": "Cost per interview served: kiosk capex amortised straight-line plus line opex, "
                              "divided by the interviews served in the phase.",
}


def _runs_html(c: Comparison) -> list[str]:
    """The runs: scenario, folder, seed, replications, status, versions, descriptions."""
    h: list[str] = []
    h.append("<h2>Runs</h2><table><tr><th class='l'>run</th><th class='l'>scenario</th><th class='l'>scenario file"
             "</th><th class='l'>run folder</th><th>seed</th><th>replications</th><th class='l'>status</th>"
             "<th class='l'>quality model</th><th class='l'>git commit</th><th class='l'>started (UTC)</th></tr>")
    for run in c.runs:
        m = run.data.manifest
        h.append("<tr>" + "".join(f"<td class='l'>{_esc(v)}</td>" for v in (run.label, run.name, m.get("scenario_file"),
                                                                             run.data.path))
                 + f"<td>{_esc(m.get('seed'))}</td><td>{_esc(m.get('replications_done'))} of "
                 f"{_esc(m.get('replications_requested'))}</td>"
                 + "".join(f"<td class='l'>{_esc(v)}</td>" for v in (
                     m.get("status"), m.get("quality_model"), (m.get("git_commit") or "unknown")[:12],
                     m.get("started_utc")))
                 + "</tr>")
    h.append("</table>")
    versions = [(run.label, run.data.manifest.get("versions") or {}) for run in c.runs]
    h.append("<p class='small'>Package versions: " + "; ".join(
        f"{_esc(label)}: " + ", ".join(f"{_esc(k)} {_esc(v)}" for k, v in sorted(vs.items())) for label, vs in versions)
        + "</p>")
    for run in c.runs:
        desc = getattr(getattr(run.scenario, "spec", None), "description", "")
        if desc:
            h.append(f"<p class='small'><b>{_esc(run.label)}</b>: {_esc(desc.strip())}</p>")
    return h


def _assumptions_html(c: Comparison, single: bool) -> list[str]:
    """The model assumptions: demand, quality, cost, statistics, alignment."""
    h: list[str] = []
    h.append("<h2>Model assumptions</h2><ul>")
    h.append(f"<li><b>Demand</b>: {_esc(demand_model_text())}</li>")
    for run in c.runs:
        m = run.data.manifest
        model = m.get("quality_model")
        if model == "calibration":
            text = ("calibration table measured by the emulators (twin calibrate), file "
                    f"{m.get('calibration_file')}")
        else:
            text = ("opinion model: ITU-T G.1070 video quality and G.107 E-model speech quality, computed from "
                    "the lines' cell-taxed capacity (twin.quality.OpinionQualityModel)")
        h.append(f"<li><b>Quality ({_esc(run.label)})</b>: {_esc(text)}. An interview counts as poor under "
                 f"MOS 3.{_calibration_html(m.get('calibration_file') if model == 'calibration' else None)}</li>")
    h.append(f"<li><b>Cost</b>: kiosk capex (the scenario's <code>costs</code> section, or a site's "
             f"<code>capex_eur</code>) amortised straight-line over {c.amortisation_years:g} years from "
             "installation or upgrade, plus each installed site's line offer monthly cost over the phase's "
             "months; divided by the interviews served in the phase. Line prices are order-of-magnitude "
             "assumptions (twin.line.OFFERS).</li>")
    h.append("<li><b>Statistics</b>: means over independent replications with 95% Student-t confidence "
             "intervals; differences are 'run minus A' with Welch's t-test on the per-replication values "
             f"(significant when p &lt; {ALPHA}). KPIs that do not vary between replications (coverage, kiosk "
             "counts) have exact differences and no p-value. Runs made with the same seed share random numbers "
             "(common random numbers): Welch's test ignores that pairing, so it is conservative.</li>")
    if not single:
        h.append("<li><b>Phase alignment</b>: the phases of run A are the reference; each other run's phase is "
                 "the one whose dates contain the midpoint of A's phase. When matched phases have different "
                 "dates, counts are compared as yearly rates.</li>")
    h.append("</ul>")
    return h


def _headline_html(c: Comparison, single: bool) -> list[str]:
    """Headline differences of each run against run A."""
    h: list[str] = []
    if not single:
        h.append("<h2>Headline differences</h2>")
        headline = [k for k in HEADLINE_KPIS if k[0] in c.kpis]
        for r in range(1, len(c.runs)):
            h.append(f"<p><b>{_esc(c.runs[r].label)} minus {_esc(c.runs[0].label)}</b>, per phase of A; cells: "
                     "difference [95% CI], p-value; highlighted when significant at 5%.</p><table><tr>"
                     "<th class='l'>phase</th><th class='l'>matched phase</th>")
            h.extend(f"<th>{_esc(label)} ({_esc(unit)}{_esc(_count_unit(c, kpi))})</th>"
                     for kpi, label, _, unit in headline)
            h.append("</tr>")
            for a in c.phases:
                h.append(f"<tr><td class='l'>{_esc(a.label)}</td><td class='l'>{_esc(a.matches[r] or 'none')}</td>")
                for kpi, _, fmt, _ in headline:
                    d = c.difference(r, a.label, kpi)
                    if d is None or math.isnan(d.test.diff):
                        h.append("<td>–</td>")
                        continue
                    cell = ("+" if d.test.diff > 0 else "") + _fmt(d.test.diff, fmt)
                    if d.test.deterministic:
                        cell += "<br><span class='small'>exact</span>"
                    else:
                        cell += (f"<br><span class='small'>[{_esc(_fmt(d.test.ci_low, fmt))}, "
                                 f"{_esc(_fmt(d.test.ci_high, fmt))}] p={_p_text(d.test.p_value)}</span>")
                    h.append(f"<td class='{'sig' if d.test.significant else ''}'>{cell}</td>")
                h.append("</tr>")
            h.append("</table>")
    return h


def _summary_html(c: Comparison, single: bool) -> list[str]:
    """Summary tables (mean and 95% CI half-width; differences and p-values against A)."""
    h: list[str] = []
    h.append("<h2>Summary tables (mean ± 95% CI half-width)</h2>")
    if single:
        phases = [a.label for a in c.phases]
        h.append("<table><tr><th class='l'>KPI</th>" + "".join(f"<th>{_esc(p)}</th>" for p in phases) + "</tr>")
        for kpi in c.kpis:
            fmt = _kpi_format(kpi)
            h.append(f"<tr><td class='l'>{_esc(kpi)}{_esc(_count_unit(c, kpi))}</td>"
                     + "".join(f"<td>{_esc(_mean_ci_text(c.stats(0, p, kpi), fmt))}</td>" for p in phases) + "</tr>")
        h.append("</table>")
    else:
        for a in c.phases:
            h.append(f"<h3>Phase {_esc(a.label)}</h3><table><tr><th class='l'>KPI</th>"
                     + "".join(f"<th>{_esc(run.label)}"
                               + (f" ({_esc(a.matches[r])})" if a.matches[r] not in (None, a.label) else "")
                               + "</th>" for r, run in enumerate(c.runs))
                     + "".join(f"<th>{_esc(c.runs[r].label.split(':')[0])} − A</th><th>p</th>"
                               for r in range(1, len(c.runs))) + "</tr>")
            for kpi in c.kpis:
                fmt = _kpi_format(kpi)
                row = f"<tr><td class='l'>{_esc(kpi)}{_esc(_count_unit(c, kpi))}</td>"
                row += "".join(f"<td>{_esc(_mean_ci_text(c.stats(r, a.label, kpi), fmt))}</td>"
                               for r in range(len(c.runs)))
                for r in range(1, len(c.runs)):
                    d = c.difference(r, a.label, kpi)
                    if d is None or math.isnan(d.test.diff):
                        row += "<td>–</td><td>–</td>"
                        continue
                    cls = "sig" if d.test.significant else ""
                    p = "exact" if d.test.deterministic else _p_text(d.test.p_value)
                    row += (f"<td class='{cls}'>{'+' if d.test.diff > 0 else ''}{_esc(_fmt(d.test.diff, fmt))}</td>"
                            f"<td class='{cls}'>{p}</td>")
                h.append(row + "</tr>")
            h.append("</table>")
    return h


def _costs_html(c: Comparison) -> list[str]:
    """Cost of each phase of each run."""
    h: list[str] = []
    if any(run.costs for run in c.runs):
        h.append("<h2>Cost by phase (EUR)</h2>")
        for run in c.runs:
            if not run.costs:
                continue
            h.append(f"<p><b>{_esc(run.label)}</b></p><table><tr><th class='l'>phase</th><th>days</th>"
                     "<th>capex spent</th><th>capex amortised</th><th>line opex</th><th>cost of the phase</th></tr>")
            for pc in run.costs.values():
                h.append(f"<tr><td class='l'>{_esc(pc.phase)}</td><td>{pc.days}</td><td>{pc.capex_spent_eur:,.0f}</td>"
                         f"<td>{pc.capex_amortised_eur:,.0f}</td><td>{pc.line_opex_eur:,.0f}</td>"
                         f"<td>{pc.total_eur:,.0f}</td></tr>")
            h.append("</table>")
    return h


def _figures_html(pngs: Mapping[str, bytes]) -> list[str]:
    """The figures, embedded with their captions."""
    h: list[str] = []
    h.append("<h2>Figures</h2>")
    for name, png in pngs.items():
        if name.startswith("map-"):
            caption = ("Map of the network in the last phase: communes (area ∝ population, coloured by département; "
                       "no border data is used), user kiosks by generation, sized by expected interviews per year, "
                       "expert kiosks as squares. Plain longitude/latitude axes, no map tiles.")
        else:
            caption = FIGURE_CAPTIONS.get(name, name)
        h.append(_img(png, name, caption))
    return h


def render_html(comparison: Comparison, pngs: Mapping[str, bytes], title: str | None = None,
                generated_utc: str | None = None) -> str:
    """The self-contained HTML report of a comparison (or of a single run when it has one run).

    Args:
        comparison: from :func:`twin.compare.compare_runs`.
        pngs: {file name: PNG bytes} of :func:`comparison_figures`, embedded in order.
        title: page title (default from the runs).
        generated_utc: time stamp to print (default: now).
    """
    c = comparison
    single = len(c.runs) == 1
    title = title or (f"twin run report: {c.runs[0].name}" if single
                      else "twin comparison: " + " vs ".join(r.label for r in c.runs))
    generated_utc = generated_utc or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    h: list[str] = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>", REPORT_MARKER,
                    f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>",
                    (f"<h1>{_esc(title)}</h1><p class='small'>Generated {_esc(generated_utc)} by twin "
                     f"(digital twin of the Auvergne videoconference kiosk network).</p>")]
    for note in c.notes:
        h.append(f"<div class='note'>{_esc(note)}</div>")

    h += _runs_html(c)
    h += _assumptions_html(c, single)
    h += _headline_html(c, single)
    h += _summary_html(c, single)
    h += _costs_html(c)
    h += _figures_html(pngs)
    h.append("</body></html>\n")
    return "\n".join(h)


# --------------------------------------------------------------------------------------------------
# Writing


def write_comparison(comparison: Comparison, out_dir: str | Path, *, force: bool = False) -> list[Path]:
    """Write a comparison's PNGs, ``comparison.json`` and ``report.html`` into ``out_dir``.

    Raises:
        TwinInputError: ``out_dir`` is a file, or a non-empty folder (unless ``force`` and twin wrote it;
            :func:`twin.run.outputs.prepare_output_folder`).
    """
    out = prepare_output_folder(out_dir, "compare", force=force, inputs=[run.data.path for run in comparison.runs])
    written: list[Path] = []
    pngs = {name: figure_png(fig) for name, fig in comparison_figures(comparison).items()}
    for name, png in pngs.items():
        written.append(atomic_write_bytes(out / name, png))
    written.append(atomic_write_json(out / "comparison.json", comparison_json(comparison)))
    written.append(atomic_write_text(out / "report.html", render_html(comparison, pngs)))
    return written


def write_run_report(run_dir: str | Path, out_file: str | Path | None = None,
                     amortisation_years: float | None = None, *, force: bool = False) -> Path:
    """Write the self-contained HTML report of one run folder (default ``RUN_DIR/report.html``).

    Raises:
        TwinInputError: missing or incomplete run folder; the report file exists (unless ``force`` and
            it is a twin report) or does not end in .html.
    """
    target = Path(out_file) if out_file is not None else Path(run_dir) / "report.html"
    check_output_file(target, marker=REPORT_MARKER.encode(), force=force, suffixes=(".html", ".htm"))
    kwargs = {} if amortisation_years is None else {"amortisation_years": amortisation_years}
    comparison = compare_runs([run_dir], **kwargs)
    pngs = {name: figure_png(fig) for name, fig in comparison_figures(comparison).items()}
    try:
        return atomic_write_text(target, render_html(comparison, pngs))
    except OSError as exc:
        raise TwinInputError(f"cannot write the report: {exc.strerror or exc}", path=str(target)) from None


__all__ = [
    "comparison_figures",
    "demand_model_text",
    "figure_png",
    "network_state",
    "plot_kpi_by_run",
    "plot_network_map",
    "plot_unmet_by_run",
    "render_html",
    "write_comparison",
    "write_run_report",
]
