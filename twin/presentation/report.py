"""The shareable HTML report of a run or a comparison of runs, from Jinja2 templates.

Order (the answer first): the verdict and the headline table by calendar year (one screen), then the
charts, then the detail (every KPI, every year; costs; each run's phases), then the runs, the
assumptions, the KPI thresholds and the calibration, formatted. The HTML is one self-contained file
(PNGs as base64 ``data:`` URIs, inline CSS, no script, no external resource), rendered from
``templates/report.html.j2`` with autoescaping; numbers are formatted by
:mod:`twin.presentation.kpimeta` only. Per-run figures are taken from the run folders' ``plots/`` (drawn
by ``twin run``) and drawn here only when a run has none.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jinja2

import twin.model
from twin.errors import TwinInputError
from twin.presentation.compare import Comparison, PhaseCost, build_verdict, compare_runs, comparison_json
from twin.presentation.figures import differences_figure, figure_png, overview_figure, run_map_figure
from twin.presentation.kpimeta import KPIS, format_number, kpi_meta
from twin.presentation.statistics import ALPHA
from twin.run.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from twin.run.outputs import check_output_file, prepare_output_folder

#: Tag in every report's head: a report file may only be overwritten by a later report.
REPORT_MARKER = "<meta name='generator' content='twin report'>"

#: Told the name of each step as it starts (the CLI shows it as progress).
StepListener = Callable[[str], None]

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("twin.presentation", "templates"),
                          autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True,
                          undefined=jinja2.StrictUndefined)


def _value(x: float, kpi: str) -> str:
    return kpi_meta(kpi).value(x)


def _diff(x: float, kpi: str) -> str:
    return kpi_meta(kpi).diff(x)


def _p(p: float) -> str:
    if p is None or math.isnan(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


_ENV.filters.update(value=_value, diff=_diff, p=_p, number=format_number)


def demand_model_text() -> str:
    """The demand paragraph of :mod:`twin.model`'s docstring (a sentence or two), in plain text."""
    doc = twin.model.__doc__ or ""
    match = re.search(r"\*\*Demand\.\*\*(.*?)(?=\n- \*\*|\n\n)", doc, flags=re.DOTALL)
    if not match:
        return "See twin/model/__init__.py."
    return " ".join(match.group(1).replace("``", "").split())


def calibration_path(manifest: Mapping[str, Any]) -> Path | None:
    """The calibration file a run used, found as given, or relative to the folder the run was started in
    (the manifest's absolute scenario path less its relative one); None when absent."""
    given = manifest.get("calibration_file")
    if not given:
        return None
    candidates = [Path(given)]
    relative, absolute = manifest.get("scenario_file"), manifest.get("scenario_file_absolute")
    if relative and absolute and not Path(given).is_absolute() and absolute.endswith(relative.lstrip("./")):
        candidates.append(Path(absolute[: len(absolute) - len(relative.lstrip("./"))]) / given)
    return next((c for c in candidates if c.is_file()), None)


def calibration_rows(manifest: Mapping[str, Any], limit: int = 40) -> dict[str, Any] | None:
    """The calibration CSV of a run as a formatted table: {"path", "header", "rows", "total", "found"};
    numbers to 3 significant digits; None when the run used no calibration table."""
    path_text = manifest.get("calibration_file")
    if not path_text or manifest.get("quality_model") != "calibration":
        return None
    path = calibration_path(manifest)
    if path is None:
        return {"path": path_text, "header": [], "rows": [], "total": 0, "found": False}
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return None

    def cell(text: str) -> str:
        try:
            x = float(text)
        except ValueError:
            return text
        if not math.isfinite(x):
            return "–"  # not measured (e.g. no document in the call)
        return f"{x:,.0f}" if abs(x) >= 1000 or x == int(x) else f"{x:.3g}"

    return {"path": path_text, "header": rows[0], "rows": [[cell(v) for v in row] for row in rows[1:limit + 1]],
            "total": len(rows) - 1, "found": True}


#: Columns of the report's live-call table: (live_calls.csv column, heading, digits).
LIVE_COLUMNS = (("site", "kiosk", None), ("service", "service", None), ("media_start", "sample at", None),
                ("calls_on_kiosk_line", "calls on kiosk line", 0), ("calls_on_agent_line", "calls on agent line", 0),
                ("mos_measured", "MOS measured", 2), ("mos_predicted", "MOS predicted (one call)", 2),
                ("mos_predicted_shared", "MOS predicted (shared lines)", 2), ("fps_up", "fps up", 1),
                ("fps_down", "fps down", 1), ("p95_delay_ms_up", "p95 delay up ms", 0),
                ("p95_delay_ms_down", "p95 delay down ms", 0), ("cause", "call ended", None))


def live_calls(run_path: Path, limit: int = 40) -> dict[str, Any] | None:
    """The live calls of a hybrid run (``live_calls.csv``, ``live.json``) as a formatted table, with the
    measured minus predicted MOS (mean, and the largest differences first); None without live calls."""
    csv_path, json_path = run_path / "live_calls.csv", run_path / "live.json"
    if not csv_path.is_file() or not json_path.is_file():
        return None
    import json

    summary = json.loads(json_path.read_text(encoding="utf-8"))
    with csv_path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))

    def number(text: str) -> float:
        try:
            return float(text)
        except (TypeError, ValueError):
            return math.nan

    def gap(row: dict) -> float:
        return number(row.get("mos_measured")) - number(row.get("mos_predicted_shared"))

    rows.sort(key=lambda r: -abs(gap(r)) if not math.isnan(gap(r)) else 0.0)
    gaps = [g for g in (gap(r) for r in rows) if not math.isnan(g)]
    one_call = [number(r["mos_measured"]) - number(r["mos_predicted"]) for r in rows
                if not math.isnan(number(r.get("mos_measured")))]
    table = []
    for row in rows[:limit]:
        cells = []
        for column, _, digits in LIVE_COLUMNS:
            text = row.get(column, "")
            cells.append(text if digits is None or text == "" else f"{number(text):,.{digits}f}")
        table.append(cells)
    return {"summary": summary, "header": [h for _, h, _ in LIVE_COLUMNS], "rows": table, "total": len(rows),
            "mean_gap_shared": sum(gaps) / len(gaps) if gaps else None,
            "mean_gap_one_call": sum(one_call) / len(one_call) if one_call else None}


def _png_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _year_costs(c: Comparison) -> list[tuple[str, list[PhaseCost]]]:
    return [(run.label, [run.facts.year_costs[y] for y in sorted(run.facts.year_costs)])
            for run in c.runs if run.facts.year_costs]


def _phase_rows(c: Comparison) -> dict[str, Any]:
    """Each run's per-phase summary (mean ± CI half-width) for the detail section."""
    kpis = ["interviews_served", "unmet_total", "wait_mean_min", "wait_p95_min", "mos_mean", "share_mos_below_3",
            "kiosk_utilisation", "population_within_15km", "user_kiosks"]
    out = []
    for run in c.runs:
        rows = []
        for phase in run.phases:
            cells = run.data.summary.get(phase.name, {})
            row = []
            for kpi in kpis:
                cell = cells.get(kpi) or {}
                mean, half = cell.get("mean"), cell.get("ci95_half_width")
                text = _value(math.nan if mean is None else mean, kpi)
                if half:
                    text += " ± " + _value(half, kpi)
                row.append(text)
            rows.append({"phase": phase.name, "dates": f"{phase.start_date} – {phase.end_date - dt.timedelta(days=1)}",
                         "days": phase.days, "cells": row})
        out.append({"label": run.label, "rows": rows})
    return {"kpis": [kpi_meta(k) for k in kpis], "runs": out}


def render_html(comparison: Comparison, pngs: Mapping[str, bytes], title: str | None = None,
                generated_utc: str | None = None) -> str:
    """The self-contained HTML report of a comparison (or of a single run when it has one run).

    Args:
        comparison: from :func:`twin.presentation.compare.compare_runs`.
        pngs: {file name: PNG bytes} of :func:`comparison_pngs`.
        title: page title (default from the runs).
        generated_utc: time stamp to print (default: now).
    """
    c = comparison
    single = len(c.runs) == 1
    title = title or (f"twin run report: {c.runs[0].name}" if single
                      else "twin comparison: " + " vs ".join(r.label for r in c.runs))
    quality = []
    for run in c.runs:
        m = run.data.manifest
        quality.append({"label": run.label, "model": m.get("quality_model"), "calibration": calibration_rows(m)})
    captions = {
        "rollout": "Headline indicators of {run} per calendar year (rates per year; a partly simulated year is "
                   "scaled to a full one); shaded: 95% intervals (bootstrap percentile for quantities that cannot "
                   "be negative). Drawn by twin run.",
        "map": "{run}: network in the last phase; departement borders derived from the communes, user kiosks by "
               "generation with area ∝ interviews served a year, service offices as squares. Drawn by twin run.",
        "differences.png": "Difference from run A per year with its 95% interval (paired under common random "
                           "numbers, else Welch), coloured by verdict: blue ▲ better, vermillion ▼ worse, grey ○ no "
                           "practical difference, light ◇ uncertain. Grey band: ± the practical threshold.",
    }
    labels = {run.letter: run.label for run in c.runs}

    def caption(name: str) -> str:
        kind, _, rest = name.removesuffix(".png").partition("-")
        return captions.get(name) or captions.get(kind, name).format(run=labels.get(rest, rest))

    figures = [{"uri": _png_uri(png), "name": name, "caption": caption(name)} for name, png in pngs.items()]
    template = _ENV.get_template("report.html.j2")
    return template.render(
        title=title, marker=jinja2.utils.markupsafe.Markup(REPORT_MARKER), single=single, c=c,
        generated=generated_utc or dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        verdict=build_verdict(c), headline=[kpi_meta(k) for k in c.headline],
        kpis=[kpi_meta(k) for k in c.kpis], figures=figures, demand=demand_model_text(), quality=quality,
        year_costs=_year_costs(c), phases=_phase_rows(c), alpha=ALPHA,
        thresholds=[m for m in KPIS.values() if m.name in c.kpis],
        live=[{"label": run.label, **table} for run in c.runs
              if (table := live_calls(run.data.path)) is not None],
    )


# --------------------------------------------------------------------------------------------------
# Figures and writing


def _stored_or_drawn(run: Any, name: str, draw: Callable[[], Any], on_step: StepListener | None) -> bytes | None:
    """A run's ``plots/<name>`` as drawn by ``twin run``, or drawn now when the folder has none."""
    stored = run.data.path / "plots" / name
    if stored.is_file():
        return stored.read_bytes()
    if on_step is not None:
        on_step(f"drawing {name} of {run.label} (its run folder has none)")
    fig = draw()
    return None if fig is None else figure_png(fig)


def comparison_pngs(c: Comparison, on_step: StepListener | None = None) -> dict[str, bytes]:
    """The report's PNGs: ``differences.png`` (drawn: it depends on several runs), then each run's
    ``rollout-<letter>.png`` and ``map-<letter>.png`` taken from its run folder (drawn by ``twin run``;
    drawn here only when missing)."""
    pngs: dict[str, bytes] = {}
    if len(c.runs) > 1:
        if on_step is not None:
            on_step("drawing the differences by year")
        pngs["differences.png"] = figure_png(differences_figure(c))
    for r, run in enumerate(c.runs):
        single = Comparison(runs=[run], years=sorted(c.values[r]), values=[c.values[r]], extended=[c.extended[r]],
                            paired=[True], kpis=c.kpis, amortisation_years=c.amortisation_years)
        rollout = _stored_or_drawn(run, "rollout.png", lambda single=single: overview_figure(single), on_step)
        if rollout is not None:
            pngs[f"rollout-{run.letter}.png"] = rollout
    for run in c.runs:
        drawn = _stored_or_drawn(run, "map.png", lambda run=run: run_map_figure(run.data.path), on_step)
        if drawn is not None:
            pngs[f"map-{run.letter}.png"] = drawn
    return pngs


def write_comparison(comparison: Comparison, out_dir: str | Path, *, force: bool = False,
                     on_step: StepListener | None = None) -> list[Path]:
    """Write a comparison's PNGs, ``comparison.json`` and ``report.html`` into ``out_dir``.

    Raises:
        TwinInputError: ``out_dir`` is a file, or a non-empty folder (unless ``force`` and twin wrote it;
            :func:`twin.run.outputs.prepare_output_folder`).
    """
    out = prepare_output_folder(out_dir, "compare", force=force, inputs=[run.data.path for run in comparison.runs])
    pngs = comparison_pngs(comparison, on_step)
    written = [atomic_write_bytes(out / name, png) for name, png in pngs.items()]
    if on_step is not None:
        on_step("writing the report")
    written.append(atomic_write_json(out / "comparison.json", comparison_json(comparison)))
    written.append(atomic_write_text(out / "report.html", render_html(comparison, pngs)))
    return written


def write_run_report(run_dir: str | Path, out_file: str | Path | None = None,
                     amortisation_years: float | None = None, *, force: bool = False,
                     on_step: StepListener | None = None) -> Path:
    """Write the self-contained HTML report of one run folder (default ``RUN_DIR/report.html``).

    Raises:
        TwinInputError: missing or incomplete run folder; the report file exists (unless ``force`` and
            it is a twin report) or does not end in .html.
    """
    if not Path(run_dir).is_dir():  # before the report's folder is made: a mistyped RUN_DIR is not created
        raise TwinInputError("run folder not found", path=str(run_dir))
    target = Path(out_file) if out_file is not None else Path(run_dir) / "report.html"
    check_output_file(target, marker=REPORT_MARKER.encode(), force=force, suffixes=(".html", ".htm"))
    kwargs = {} if amortisation_years is None else {"amortisation_years": amortisation_years}
    comparison = compare_runs([run_dir], **kwargs)
    pngs = comparison_pngs(comparison, on_step)
    try:
        return atomic_write_text(target, render_html(comparison, pngs))
    except OSError as exc:
        raise TwinInputError(f"cannot write the report: {exc.strerror or exc}", path=str(target)) from None


__all__ = [
    "REPORT_MARKER",
    "calibration_path",
    "calibration_rows",
    "comparison_pngs",
    "demand_model_text",
    "render_html",
    "write_comparison",
    "write_run_report",
]
