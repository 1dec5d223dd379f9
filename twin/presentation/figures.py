"""Figures of runs and comparisons, by calendar year, in a colour-blind-safe palette.

Every chart across time shows rates per year (a partly simulated year scaled to a full one), never
totals per phase. Colours come from the Okabe-Ito palette (safe for the common colour-vision
deficiencies); better and worse are blue and vermillion and also carry a marker shape (▲ better,
▼ worse, ○ no practical difference, ◇ uncertain), so the meaning never rests on colour alone.

Figures are built with :class:`matplotlib.figure.Figure` (no pyplot global state); drawing functions
take an optional ``ax``. Per-run figures (``rollout.png``, ``map.png``) are drawn once by ``twin run``
into the run folder's ``plots/`` (:func:`write_run_figures`) and reused by ``twin compare`` and
``twin report``; a comparison draws only what depends on several runs (``differences.png``).

Maps: departement borders are derived from the communes file, with no outside border data: the
Voronoi cells of the communes (on longitude scaled by the cosine of the mean latitude, so cells are
roughly isotropic) are grouped by departement, and every Voronoi edge between two communes of different
departements is drawn, inside the convex hull of the communes. The line follows the real border to
within about half the distance between neighbouring communes (a few km in Auvergne). Labels are
placed greedily, most important first, each at the first of eight positions around its point whose box
overlaps no label already placed and no kiosk marker; a label that fits nowhere is left out.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.transforms import Bbox

from twin.presentation.compare import (
    FACTS_FILE,
    Comparison,
    compare_runs,
    departement_names,
    facts_json,
    parse_phases,
    scenario_for_run,
)
from twin.presentation.kpimeta import COST_KPI, kpi_meta, reason_label
from twin.presentation.statistics import BETTER, SAME, UNCERTAIN, WORSE
from twin.run.atomic import atomic_write_bytes, atomic_write_json
from twin.run.folder import read_run
from twin.vocabulary import UNMET_REASONS

#: Okabe-Ito colours (Okabe & Ito 2008, "Color Universal Design").
OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73", "yellow": "#F0E442",
             "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7", "grey": "#999999"}
#: A colour per run, in order.
RUN_COLORS = (OKABE_ITO["black"], OKABE_ITO["orange"], OKABE_ITO["sky"], OKABE_ITO["green"], OKABE_ITO["purple"],
              OKABE_ITO["yellow"])
RUN_MARKERS = ("o", "s", "D", "^", "v", "P")
#: Colour and marker of each verdict.
VERDICT_STYLE = {BETTER: (OKABE_ITO["blue"], "^"), WORSE: (OKABE_ITO["vermillion"], "v"),
                 SAME: (OKABE_ITO["grey"], "o"), UNCERTAIN: ("#BBBBBB", "D"), "higher": (OKABE_ITO["grey"], "^"),
                 "lower": (OKABE_ITO["grey"], "v"), "n/a": ("#DDDDDD", "x")}
REASON_COLORS = dict(zip(UNMET_REASONS, (OKABE_ITO["orange"], OKABE_ITO["purple"], OKABE_ITO["vermillion"],
                                         OKABE_ITO["sky"], OKABE_ITO["green"])))
GEN_COLORS = {1: OKABE_ITO["orange"], 2: OKABE_ITO["blue"]}
#: Map marker area per interview served a year, points² (one scale for every map, so maps compare).
KIOSK_AREA_PT2_PER_INTERVIEW = 1.2

#: KPIs of the per-year panels, in order: (kpi, scale, unit shown).
YEAR_PANELS = (("interviews_served", 1.0, "interviews per year"), ("unmet_total", 1.0, "unmet needs per year"),
               (COST_KPI, 1.0, "EUR per interview"), ("wait_mean_min", 1.0, "minutes"),
               ("share_mos_below_3", 100.0, "% of interviews"), ("travel_avoided_km", 1e-3, "thousand km per year"),
               ("population_within_15km", 1e-3, "thousand inhabitants"))


def figure_png(fig: Figure, dpi: float | None = None) -> bytes:
    """The figure rendered as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _new_ax(ax: Axes | None, figsize: tuple[float, float] = (6.0, 3.6)) -> Axes:
    if ax is not None:
        return ax
    return Figure(figsize=figsize, dpi=100, layout="constrained").add_subplot()


# --------------------------------------------------------------------------------------------------
# Charts by year


def plot_kpi_years(c: Comparison, kpi: str, *, scale: float = 1.0, unit: str = "", ax: Axes | None = None,
                   legend: bool = False) -> Axes:
    """A KPI's mean per year, one line per run, with its 95% interval as error bars (bootstrap percentile
    for KPIs bounded below by 0, so bars never cross 0). Status-quo years of an extended run are dashed."""
    ax = _new_ax(ax)
    for r, run in enumerate(c.runs):
        years = sorted(c.values[r])
        if not years:
            continue
        iv = [c.interval(r, y, kpi) for y in years]
        mean = np.array([i.mean for i in iv]) * scale
        low = np.array([i.low if not math.isnan(i.low) else i.mean for i in iv]) * scale
        high = np.array([i.high if not math.isnan(i.high) else i.mean for i in iv]) * scale
        x = np.array(years, dtype=float)
        color, marker = RUN_COLORS[r % len(RUN_COLORS)], RUN_MARKERS[r % len(RUN_MARKERS)]
        ax.fill_between(x, low, high, color=color, alpha=0.15, linewidth=0)
        ax.plot(x, mean, color=color, marker=marker, linewidth=1.6, markersize=4.5, label=run.label)
        quo = [k for k, y in enumerate(years) if y in c.extended[r]]
        if quo:
            ax.plot(x[quo], mean[quo], linestyle="none", marker=marker, markerfacecolor="white",
                    markeredgecolor=color, markersize=6)
    meta = kpi_meta(kpi)
    ax.set_title(meta.label[:1].upper() + meta.label[1:], fontsize=10)
    ax.set_ylabel(unit or meta.unit, fontsize=8.5)
    ax.set_xticks(c.years, [str(y) for y in c.years], fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    ax.grid(alpha=0.3)
    ax.set_axisbelow(True)
    if meta.nonnegative:
        ax.set_ylim(bottom=0)
    if legend:
        ax.legend(fontsize=7.5)
    return ax


def plot_unmet_years(c: Comparison, run: int = 0, *, ax: Axes | None = None) -> Axes:
    """A run's unmet needs per year, stacked by reason (means, rates per year)."""
    ax = _new_ax(ax)
    years = sorted(c.values[run])
    bottom = np.zeros(len(years))
    for reason in UNMET_REASONS:
        kpi = f"unmet_{reason}"
        mean = np.nan_to_num([c.interval(run, y, kpi).mean for y in years])
        ax.bar(years, mean, bottom=bottom, color=REASON_COLORS[reason], label=reason_label(reason), width=0.7)
        bottom += mean
    ax.set_title("Unmet kiosk needs by reason", fontsize=10)
    ax.set_ylabel("needs per year", fontsize=8.5)
    ax.set_xticks(years, [str(y) for y in years], fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    ax.set_ylim(0, max(float(bottom.max(initial=0.0)) * 1.5, 1.0))  # head room for the legend
    ax.legend(fontsize=7, loc="upper center", ncol=2, framealpha=0.85)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return ax


def plot_differences(c: Comparison, kpi: str, *, ax: Axes | None = None, scale: float = 1.0,
                     unit: str = "") -> Axes:
    """Each other run minus the reference per year, with the 95% interval (paired or Welch), the marker
    coloured and shaped by the verdict; the grey band is ± the practical threshold."""
    ax = _new_ax(ax)
    meta = kpi_meta(kpi)
    n = len(c.runs) - 1
    thresholds = []
    points: dict[str, list[tuple[float, float, float, float]]] = {}
    for r in range(1, len(c.runs)):
        for y in c.compared_years(r):
            cell = c.cell(r, y, kpi)
            if cell is None or math.isnan(cell.difference.diff):
                continue
            d = cell.difference
            x = y + (r - 1 - (n - 1) / 2) * 0.12
            low, high = (d.diff, d.diff) if math.isnan(d.low) else (d.low, d.high)
            points.setdefault(cell.verdict, []).append((x, d.diff * scale, low * scale, high * scale))
            thresholds.append(meta.threshold(cell.reference.mean) * scale)
    for v, rows in points.items():
        color, marker = VERDICT_STYLE.get(v, VERDICT_STYLE["n/a"])
        xs, ds_, lows, highs = (np.array(col) for col in zip(*rows))
        ax.vlines(xs, lows, highs, color=color, linewidth=2)
        ax.scatter(xs, ds_, marker=marker, color=color, s=40, zorder=3)
    if thresholds:
        t = float(np.median(thresholds))
        ax.axhspan(-t, t, color="#EEEEEE", zorder=0)
    ax.axhline(0, color="#555555", linewidth=0.8)
    ax.set_title(f"{meta.label[:1].upper() + meta.label[1:]}: difference", fontsize=10)
    ax.set_ylabel(unit or meta.unit, fontsize=8.5)
    ax.set_xticks(c.years, [str(y) for y in c.years], fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    ax.grid(alpha=0.3)
    return ax


def verdict_legend() -> list[Line2D]:
    """Legend handles of the verdict markers."""
    return [Line2D([], [], linestyle="none", marker=VERDICT_STYLE[v][1], color=VERDICT_STYLE[v][0], markersize=7,
                   label=v) for v in (BETTER, WORSE, SAME, UNCERTAIN)]


def _grid_figure(width_in: float, height_in: float) -> Figure:
    """A figure for a grid of panels with fixed margins (a constrained layout costs a second a figure)."""
    fig = Figure(figsize=(width_in, height_in), dpi=100)
    top = 1.0 - 0.75 / height_in
    # 0.95 in on the left: tick labels such as "7,000" and a y label ("interviews per year") fit
    fig.subplots_adjust(left=0.95 / width_in, right=0.985, bottom=0.35 / height_in, top=top, hspace=0.42,
                        wspace=0.3)
    return fig


def overview_figure(c: Comparison) -> Figure:
    """The headline KPIs per year, one line per run (rates per year, 95% intervals)."""
    panels = [p for p in YEAR_PANELS if p[0] in c.kpis]
    cols = 3
    rows = math.ceil((len(panels) + (1 if len(c.runs) == 1 else 0)) / cols)
    fig = _grid_figure(13, 3.3 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for i, (kpi, scale, unit) in enumerate(panels):
        plot_kpi_years(c, kpi, scale=scale, unit=unit, ax=axes[i])
    used = len(panels)
    if len(c.runs) == 1:
        plot_unmet_years(c, 0, ax=axes[used])
        used += 1
    for ax in axes[used:]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    if any(c.extended):
        handles.append(Line2D([], [], linestyle="none", marker="o", markerfacecolor="white", markeredgecolor="black"))
        labels.append("status quo (a --until run)")
    if len(labels) > 1:
        fig.legend(handles, labels, loc="upper center", ncol=min(4, len(labels)), fontsize=8.5, frameon=False)
    return fig


def differences_figure(c: Comparison) -> Figure:
    """Each headline KPI's difference from the reference per year, coloured by verdict."""
    panels = [p for p in YEAR_PANELS if p[0] in c.kpis]
    cols = 3
    rows = math.ceil(len(panels) / cols)
    fig = _grid_figure(13, 3.3 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for i, (kpi, scale, unit) in enumerate(panels):
        plot_differences(c, kpi, scale=scale, unit=unit, ax=axes[i])
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    others = ", ".join(run.label for run in c.runs[1:])
    handles = verdict_legend()
    fig.legend(handles=handles, loc="upper center", ncol=4, fontsize=8.5, frameon=False,
               title=f"{others} minus {c.runs[0].label} (bar: 95% interval; grey band: ± practical threshold)",
               title_fontsize=9)
    return fig


# --------------------------------------------------------------------------------------------------
# Maps


def network_state(loaded: Any, phase_name: str) -> dict[str, dict[str, Any]]:
    """Sites installed in a phase with their generation: {site id: {"kind", "generation", "upgraded"}}.

    Follows the scenario's phases (add, upgrade, remove) up to and including ``phase_name`` (an extended
    run's last phase has the scenario's last phase's network).

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


def departement_borders(lon: np.ndarray, lat: np.ndarray, departement: Sequence[str]) -> list[np.ndarray]:
    """Border segments between departements, from the Voronoi cells of the communes (module docstring).

    Args:
        lon, lat: commune coordinates, degrees.
        departement: each commune's departement code.

    Returns:
        Segments as 2x2 arrays [[lon0, lat0], [lon1, lat1]], inside the communes' convex hull.
    """
    from scipy.spatial import Delaunay, Voronoi

    if len(lon) < 4:
        return []
    k = math.cos(math.radians(float(np.mean(lat))))
    points = np.column_stack([lon * k, lat])
    vor = Voronoi(points)
    hull = Delaunay(points)
    segments = []
    for (p, q), ridge in zip(vor.ridge_points, vor.ridge_vertices):
        if departement[p] == departement[q] or -1 in ridge:
            continue
        seg = vor.vertices[ridge]
        if hull.find_simplex(seg.mean(axis=0)) < 0:
            continue
        segments.append(np.column_stack([seg[:, 0] / k, seg[:, 1]]))
    return segments


def _renderer(fig: Any) -> Any:
    """The figure's Agg renderer (a bare Figure gets an Agg canvas first)."""
    if not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)
    return fig.canvas.get_renderer()


def place_labels(ax: Axes, items: Sequence[tuple[float, float, str]], fontsize: float = 7.5,
                 avoid: Sequence[Bbox] = (), radii_pt: Sequence[float] | None = None) -> list[Any]:
    """Place text labels near points without overlaps, in the order given (most important first).

    Each label tries eight offsets around its point (pushed out by the point's marker radius,
    ``radii_pt``, points) and keeps the first whose box overlaps no label placed before (nor ``avoid``);
    labels that fit nowhere are not drawn.

    Returns:
        The :class:`matplotlib.text.Text` objects drawn.
    """
    renderer = _renderer(ax.figure)
    offsets = ((5, 4, "left", "bottom"), (5, -4, "left", "top"), (-5, 4, "right", "bottom"),
               (-5, -4, "right", "top"), (0, 7, "center", "bottom"), (0, -7, "center", "top"),
               (8, 0, "left", "center"), (-8, 0, "right", "center"))
    placed: list[Bbox] = list(avoid)
    drawn = []
    for k, (x, y, text) in enumerate(items):
        push = 0.0 if radii_pt is None else 0.7 * radii_pt[k]
        for dx, dy, ha, va in offsets:
            dx, dy = dx + math.copysign(push, dx) * (dx != 0), dy + math.copysign(push, dy) * (dy != 0)
            label = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                                fontsize=fontsize, color="#222222", zorder=6,
                                bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "alpha": 0.6,
                                      "linewidth": 0})
            box = label.get_window_extent(renderer).expanded(1.05, 1.1)
            if not any(box.overlaps(other) for other in placed):
                placed.append(box)
                drawn.append(label)
                break
            label.remove()
    return drawn


def site_interviews_per_year(run_dir: Path, phase: Any) -> dict[str, float]:
    """User kiosks' interviews per year in a phase, from the run's ``sites.csv`` (mean x 365 / days)."""
    path = Path(run_dir) / "sites.csv"
    out: dict[str, float] = {}
    if not path.is_file():
        return out
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["phase"] == phase.name and row["kind"] == "user" and row.get("interviews_served_mean"):
                out[row["site_id"]] = float(row["interviews_served_mean"]) * 365.0 / max(phase.days, 1)
    return out


def plot_network_map(loaded: Any, phase_name: str, *, interviews_per_year: Mapping[str, float] | None = None,
                     ax: Axes | None = None, title: str | None = None, label_kiosks: int = 12) -> Axes:
    """Map of the network in a phase on plain lon/lat axes (no tiles; aspect 1 / cos(mean latitude)).

    Departement borders from the communes (module docstring) with their names; communes as light grey
    points (area ∝ population); user kiosks as circles coloured by generation (an orange ring: upgraded
    from generation 1), area ∝ interviews served per year when ``interviews_per_year`` is given;
    expert kiosks as black squares. The busiest kiosks are named without collisions.
    """
    ax = _new_ax(ax, figsize=(10.5, 8.0))
    state = network_state(loaded, phase_name)
    communes = loaded.communes
    lon = np.array([c.lon for c in communes])
    lat = np.array([c.lat for c in communes])
    pop = np.array([c.population for c in communes], dtype=float)
    dep = [c.departement_code for c in communes]
    for seg in departement_borders(lon, lat, dep):
        ax.plot(seg[:, 0], seg[:, 1], color="#555555", linewidth=1.3, zorder=1)
    ax.scatter(lon, lat, s=2 + 120 * pop / max(pop.max(), 1.0), color="#CCCCCC", linewidths=0, zorder=0)
    names = departement_names(loaded)
    handles: list[Any] = [Line2D([], [], color="#555555", linewidth=1.3, label="departement border (from communes)"),
                          Line2D([], [], linestyle="none", marker="o", color="#CCCCCC",
                                 label="communes (area ∝ population)")]
    served = dict(interviews_per_year or {})
    top = max(served.values(), default=0.0)

    def size(sid: str) -> float:
        return 70.0 if top <= 0 else 12.0 + KIOSK_AREA_PT2_PER_INTERVIEW * served.get(sid, 0.0)

    users = [sid for sid, st in state.items() if st["kind"] == "user"]
    for gen in (1, 2):
        for upgraded in (False, True):
            ids = [s for s in users if state[s]["generation"] == gen and state[s]["upgraded"] == upgraded]
            if not ids:
                continue
            xy = np.array([loaded.site_latlon[s] for s in ids])
            edge = GEN_COLORS[1] if upgraded else "white"
            ax.scatter(xy[:, 1], xy[:, 0], s=[size(s) for s in ids], color=GEN_COLORS[gen], edgecolors=edge,
                       linewidths=2.0 if upgraded else 0.7, alpha=0.9, zorder=3)
            handles.append(Line2D([], [], linestyle="none", marker="o", markersize=8, markerfacecolor=GEN_COLORS[gen],
                                  markeredgecolor=edge, markeredgewidth=2.0 if upgraded else 0.7,
                                  label=f"user kiosks, generation {gen}" + (" (upgraded)" if upgraded else "")
                                  + f": {len(ids)}"))
    experts = sorted({loaded.site_latlon[s] for s, st in state.items() if st["kind"] == "expert"})
    if experts:
        xy = np.array(experts)
        ax.scatter(xy[:, 1], xy[:, 0], s=28, marker="s", color="black", zorder=4)
        handles.append(Line2D([], [], linestyle="none", marker="s", color="black", markersize=6,
                              label="service offices with expert kiosks"))
    if top > 0:
        for ref in _nice_levels(top):
            handles.append(Line2D([], [], linestyle="none", marker="o",
                                  markersize=math.sqrt(12 + KIOSK_AREA_PT2_PER_INTERVIEW * ref),
                                  markerfacecolor="#BBBBBB", markeredgecolor="white",
                                  label=f"{ref:,.0f} interviews a year"))
    mean_lat = float(np.mean(lat))
    ax.set_aspect(1.0 / math.cos(math.radians(mean_lat)))
    ax.set_xlabel("longitude (° E)", fontsize=8.5)
    ax.set_ylabel("latitude (° N)", fontsize=8.5)
    ax.tick_params(labelsize=8)
    ax.set_title(title or f"{loaded.spec.name}: network in {phase_name}", fontsize=11)
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), framealpha=0.9)
    _renderer(ax.figure)
    ax.figure.canvas.draw()  # fixes the axes' limits and layout before labels are measured
    dep_items = []
    for code in sorted(set(dep)):
        sel = np.array([d == code for d in dep])
        dep_items.append((float(np.average(lon[sel], weights=pop[sel])), float(np.average(lat[sel], weights=pop[sel])),
                          names.get(code, code).upper()))
    markers = [_marker_box(ax, loaded.site_latlon[s][1], loaded.site_latlon[s][0], size(s)) for s in users]
    avoid = [t.get_window_extent().expanded(1.05, 1.1) for t in place_labels(ax, dep_items, fontsize=9, avoid=markers)]
    ranked = sorted(users, key=lambda s: -served.get(s, 0.0))[:label_kiosks]
    sites = {s.id: s for s in loaded.spec.sites}
    items = [(loaded.site_latlon[s][1], loaded.site_latlon[s][0], _site_name(sites.get(s), s)) for s in ranked]
    place_labels(ax, items, avoid=avoid + markers, radii_pt=[math.sqrt(size(s)) / 2 for s in ranked])
    return ax


def _marker_box(ax: Axes, x: float, y: float, area_pt2: float) -> Bbox:
    """The display box of a scatter marker of area ``area_pt2`` (points²) at data (x, y)."""
    cx, cy = ax.transData.transform((x, y))
    r = math.sqrt(area_pt2) / 2 * ax.figure.dpi / 72.0
    return Bbox([[cx - r, cy - r], [cx + r, cy + r]])


def _site_name(site: Any, sid: str) -> str:
    place = getattr(site, "place", None)
    return str(getattr(place, "commune", None) or sid)


def _nice_levels(top: float) -> list[float]:
    """Two or three round reference values below ``top`` for a size legend."""
    exp = 10 ** math.floor(math.log10(top)) if top > 0 else 1
    levels = sorted({round(top / exp) * exp, round(top / exp / 2) * exp or exp, exp})
    return [v for v in levels if 0 < v <= top * 1.05][-3:]


# --------------------------------------------------------------------------------------------------
# Per-run figures, drawn once by twin run


def run_map_figure(run_dir: Path) -> Figure | None:
    """The map of a run's last phase (kiosks sized by interviews served a year), or None without its
    scenario file."""
    data = read_run(run_dir)
    loaded, _ = scenario_for_run(data)
    if loaded is None:
        return None
    phases = parse_phases(data.phases)
    scenario_phases = [p.name for p in loaded.spec.phases]
    last = next((p for p in reversed(phases) if p.name in scenario_phases), None)
    if last is None:
        return None
    ax = plot_network_map(loaded, last.name, interviews_per_year=site_interviews_per_year(run_dir, last),
                          title=f"{loaded.spec.name}: network in {last.name} (kiosk area ∝ interviews a year)")
    return ax.figure


def write_run_figures(folder: Path, _phases: Sequence[str] | None = None, _summary: Mapping[str, Any] | None = None,
                      title: str = "") -> list[Path]:
    """Draw a run's figures into its ``plots/`` folder: ``rollout.png`` (headline KPIs per calendar
    year) and ``map.png`` (the last phase's network), with ``facts.json`` (the costs per year and names
    compare and report need from the scenario). The plotter ``twin run`` passes to the runner; it
    reads the run folder (``folder`` is its ``plots/``), so the phases and summary it is given are not needed."""
    folder = Path(folder)
    run_dir = folder.parent
    comparison = compare_runs([run_dir])
    fig = overview_figure(comparison)
    fig.suptitle(f"{title or comparison.runs[0].name}: per calendar year (rates per year; 95% intervals)",
                 fontsize=12)
    written = [atomic_write_bytes(folder / "rollout.png", figure_png(fig))]
    run = comparison.runs[0]
    if run.facts.note is None:
        written.append(atomic_write_json(folder / FACTS_FILE, facts_json(
            run.facts, run.data.manifest.get("scenario_sha256"), comparison.amortisation_years)))
    map_fig = run_map_figure(run_dir)
    if map_fig is not None:
        written.append(atomic_write_bytes(folder / "map.png", figure_png(map_fig)))
    return written


__all__ = [
    "GEN_COLORS",
    "OKABE_ITO",
    "RUN_COLORS",
    "VERDICT_STYLE",
    "departement_borders",
    "differences_figure",
    "figure_png",
    "network_state",
    "overview_figure",
    "place_labels",
    "plot_differences",
    "plot_kpi_years",
    "plot_network_map",
    "plot_unmet_years",
    "run_map_figure",
    "site_interviews_per_year",
    "verdict_legend",
    "write_run_figures",
]
