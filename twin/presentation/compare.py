"""Comparing run folders by calendar year: alignment, the status-quo extension, statistics, cost, verdict.

This module holds the *logic* of ``twin compare`` and ``twin report``; figures live in
:mod:`twin.presentation.figures`, the HTML in :mod:`twin.presentation.report`, the click commands in
:mod:`twin.cli.present`.

Alignment by calendar year. Every run folder holds each replication's KPIs per calendar year
(``replications_by_year.csv``: the model cuts its records at 1 January), so runs whose phases are cut
differently are compared year by year, never phase by phase:

1. The years compared are the union of the runs' years. Counts (interviews, unmet needs, travel
   avoided) are rates per year: a partially simulated year is scaled by days of the year / days
   simulated, so a 153-day pilot is not set against a full year. Years simulated for different numbers
   of days in two runs are compared as rates and said so.
2. A run that stops before another (a historical run ending in 2009 against a plan running to 2011) is
   extended with the status quo only when a run of the *same* scenario file, seed and replications made
   with ``twin run --until YEAR`` is among the runs compared: its later years stand in for the shorter
   run's (common random numbers make their shared years identical). Otherwise the years are listed in
   :attr:`Comparison.unaligned` with the command that would extend the run; nothing is dropped silently.
3. KPIs measured per phase only (coverage, utilisation, kiosk counts) are given per year as the mean
   over the phases overlapping the year, weighted by the days of overlap.

Statistics: :mod:`twin.presentation.statistics` (paired differences under common random numbers, else
Welch; bootstrap intervals of means bounded below by 0; Benjamini-Hochberg across the comparison; a
verdict per cell). Swapping two runs swaps the signs of the differences and better/worse, nothing else.

Cost (EUR; needs the run's scenario file, see :func:`scenario_for_run`): a period costs the kiosks'
capital expense amortised straight-line over ``amortisation_years`` (5 by default, an ASSUMPTION: usual
depreciation period of IT equipment) from the day each kiosk is installed or upgraded, plus the line
opex: each installed site's line offer's ``monthly_cost_eur`` (:func:`twin.line.get_offer`) times the
months it is installed in the period (months = days / 30.4375). Capex per site: the site's
``capex_eur`` if given, else the scenario's ``costs.user_kiosk_capex_eur`` or
``costs.expert_kiosk_capex_eur`` times ``kiosk_count``; an upgrade costs ``costs.upgrade_capex_eur``
(defaults and sources: docs/facts.md). Service offices' own lines and videoconference rooms are the
services' and not counted. Cost per interview served = the year's cost / interviews served in the year,
per replication.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from twin.errors import TwinInputError
from twin.line import get_offer
from twin.presentation.kpimeta import COST_KPI, HEADLINE, kpi_meta
from twin.presentation.statistics import (
    Difference,
    Interval,
    adjust_p_values,
    mean_interval,
    paired_difference,
    verdict,
    welch_difference,
)
from twin.run.folder import REPLICATIONS_BY_YEAR, RunData, read_run
from twin.scenario.loading import load_scenario
from twin.vocabulary import DAYS_PER_MONTH, UNMET_REASONS, YEAR_KPIS

#: Default straight-line amortisation period of kiosk capex, years (ASSUMPTION).
DEFAULT_AMORTISATION_YEARS = 5.0

#: Longest amortisation period accepted, years (a kiosk does not last a century).
MAX_AMORTISATION_YEARS = 100.0

#: Phase KPIs given per year as the day-weighted mean of the phases overlapping the year.
PHASE_LEVEL_KPIS = ("population_within_15km", "population_within_30km", "user_kiosks", "expert_kiosks",
                    "kiosk_utilisation")

#: Per-year KPIs of the comparison, in report order (agent utilisations are added per service).
YEAR_ORDER = ("interviews_served", "unmet_total", *(f"unmet_{r}" for r in UNMET_REASONS), COST_KPI,
              "wait_mean_min", "mos_mean", "share_mos_below_3", "travel_avoided_km", *PHASE_LEVEL_KPIS)


# --------------------------------------------------------------------------------------------------
# Phases and cost


@dataclass(frozen=True)
class PhaseWindowDates:
    """A period's name and dates (end exclusive), as in ``phases.json``."""

    name: str
    start_date: dt.date
    end_date: dt.date

    @property
    def days(self) -> int:
        return (self.end_date - self.start_date).days


def parse_phases(phases: Sequence[dict[str, Any]], where: str = "") -> list[PhaseWindowDates]:
    """``phases.json`` entries as :class:`PhaseWindowDates` (raises TwinInputError if malformed)."""
    out = []
    try:
        for p in phases:
            out.append(PhaseWindowDates(str(p["name"]), dt.date.fromisoformat(p["start_date"]),
                                        dt.date.fromisoformat(p["end_date"])))
    except (KeyError, TypeError, ValueError) as exc:
        raise TwinInputError(f"phases.json: malformed phase entry ({exc!r})", path=where or None) from None
    return out


@dataclass(frozen=True)
class PhaseCost:
    """Cost of one period (a phase or a year) of a rollout, EUR.

    Attributes:
        phase: the period's name.
        days: its length, days.
        capex_spent_eur: kiosk purchases and upgrades made in the period (cash view).
        capex_amortised_eur: capex of installed kiosks and upgrades amortised over the period's days.
        line_opex_eur: line offers' monthly costs of the sites installed, over the period's months.
    """

    phase: str
    days: int
    capex_spent_eur: float
    capex_amortised_eur: float
    line_opex_eur: float

    @property
    def total_eur(self) -> float:
        """Amortised capex plus line opex (the numerator of the cost per interview)."""
        return self.capex_amortised_eur + self.line_opex_eur


def window_costs(loaded: Any, windows: Sequence[PhaseWindowDates],
                 amortisation_years: float = DEFAULT_AMORTISATION_YEARS) -> dict[str, PhaseCost]:
    """Each period's cost from a scenario's sites, rollout and ``costs`` section (module docstring).

    Args:
        loaded: a :class:`twin.scenario.LoadedScenario`.
        windows: the periods (phases or calendar years), any dates.
        amortisation_years: straight-line amortisation period of capex, years (> 0).

    Raises:
        TwinInputError: amortisation_years out of (0, 100].
    """
    if not 0 < amortisation_years <= MAX_AMORTISATION_YEARS:
        raise TwinInputError(f"--amortisation-years must be > 0 and <= {MAX_AMORTISATION_YEARS:g}, got {amortisation_years}")
    spec = loaded.spec
    costs = spec.costs
    sites = {s.id: s for s in spec.sites}
    life_days = amortisation_years * 365.25

    def capex(site: Any) -> float:
        if site.capex_eur is not None:
            return float(site.capex_eur)
        unit = costs.user_kiosk_capex_eur if site.kind == "user" else costs.expert_kiosk_capex_eur
        return float(unit) * site.kiosk_count

    installed_from: dict[str, dt.date] = {}
    intervals: list[tuple[str, dt.date, dt.date | None]] = []
    capex_events: list[tuple[dt.date, float]] = []
    for phase in spec.phases:
        for sid in phase.add:
            installed_from[sid] = phase.start_date
            capex_events.append((phase.start_date, capex(sites[sid])))
        for _sid in phase.upgrade:
            capex_events.append((phase.start_date, float(costs.upgrade_capex_eur)))
        for sid in phase.remove:
            intervals.append((sid, installed_from.pop(sid), phase.start_date))
    intervals += [(sid, start, None) for sid, start in installed_from.items()]

    def overlap_days(a0: dt.date, a1: dt.date, b0: dt.date, b1: dt.date | None) -> float:
        end = a1 if b1 is None else min(a1, b1)
        return max(0.0, float((end - max(a0, b0)).days))

    out: dict[str, PhaseCost] = {}
    for window in windows:
        spent = sum(amount for day, amount in capex_events if window.start_date <= day < window.end_date)
        amortised = sum(amount * overlap_days(window.start_date, window.end_date, day,
                                              day + dt.timedelta(days=life_days)) / life_days
                        for day, amount in capex_events)
        opex = sum(get_offer(sites[sid].line.offer).monthly_cost_eur
                   * overlap_days(window.start_date, window.end_date, start, end) / DAYS_PER_MONTH
                   for sid, start, end in intervals)
        out[window.name] = PhaseCost(window.name, window.days, float(spent), amortised, opex)
    return out


def phase_costs(loaded: Any, phases: Sequence[PhaseWindowDates],
                amortisation_years: float = DEFAULT_AMORTISATION_YEARS) -> dict[str, PhaseCost]:
    """Each phase's cost (:func:`window_costs` over the run's phases).

    Raises:
        TwinInputError: amortisation_years out of range, or the scenario's phases differ from the run's.
    """
    if [p.name for p in loaded.spec.phases] != [p.name for p in phases]:
        raise TwinInputError("the scenario's phases differ from the run's phases.json")
    return window_costs(loaded, phases, amortisation_years)


def scenario_for_run(run: RunData) -> tuple[Any | None, str | None]:
    """The run's scenario, loaded, if its file is still there and unchanged.

    The manifest's ``scenario_file`` is resolved as given if absolute, else against the current folder,
    the run folder and, failing those, the absolute path the run recorded. The file's SHA-256 must equal
    the manifest's ``scenario_sha256``.

    Returns:
        (LoadedScenario, None), or (None, a sentence saying why not: missing, changed, invalid).
    """
    name = run.manifest.get("scenario_file")
    if not name:
        return None, "the manifest names no scenario file"
    given = Path(name)
    candidates = [given] if given.is_absolute() else [Path.cwd() / given, run.path / given]
    if run.manifest.get("scenario_file_absolute"):
        candidates.append(Path(run.manifest["scenario_file_absolute"]))
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        return None, f"scenario file {name} not found (looked in the current folder and the run folder)"
    digest = hashlib.sha256(found.read_bytes()).hexdigest()
    expected = run.manifest.get("scenario_sha256")
    if expected and digest != expected:
        return None, f"scenario file {found} has changed since the run (SHA-256 differs)"
    try:
        return load_scenario(found), None
    except TwinInputError as exc:
        return None, f"scenario file {found} no longer loads ({exc})"


#: Facts of a run the presentation needs from its scenario, written by ``twin run`` beside its figures so
#: that compare and report do not parse the scenario again (``plots/facts.json``).
FACTS_FILE = "facts.json"


@dataclass(frozen=True)
class RunFacts:
    """What the presentation takes from a run's scenario.

    Attributes:
        region: the communes file's name (runs of different regions are not compared), or None.
        departement_names: departement code -> name.
        description: the scenario's description.
        year_costs: {year: PhaseCost of the simulated part of the year} (empty without the scenario).
        note: why the scenario, hence cost, is unavailable, or None.
    """

    region: str | None
    departement_names: dict[str, str]
    description: str
    year_costs: dict[int, PhaseCost]
    note: str | None = None


def year_windows(phases: Sequence[PhaseWindowDates]) -> list[PhaseWindowDates]:
    """The simulated part of each calendar year of a run (named by the year)."""
    start, end = phases[0].start_date, phases[-1].end_date
    return [PhaseWindowDates(str(y), max(dt.date(y, 1, 1), start), min(dt.date(y + 1, 1, 1), end))
            for y in range(start.year, (end - dt.timedelta(days=1)).year + 1)]


def facts_from_scenario(loaded: Any, phases: Sequence[PhaseWindowDates],
                        amortisation_years: float = DEFAULT_AMORTISATION_YEARS) -> RunFacts:
    """A run's :class:`RunFacts` computed from its loaded scenario."""
    costs = window_costs(loaded, year_windows(phases), amortisation_years)
    return RunFacts(region=Path(loaded.spec.region.communes_file).name, departement_names=departement_names(loaded),
                    description=(loaded.spec.description or "").strip(),
                    year_costs={int(k): v for k, v in costs.items()})


def facts_json(facts: RunFacts, sha256: str | None, amortisation_years: float) -> dict[str, Any]:
    """:class:`RunFacts` as JSON-ready data (what ``plots/facts.json`` holds)."""
    return {"scenario_sha256": sha256, "amortisation_years": amortisation_years, "region": facts.region,
            "departement_names": facts.departement_names, "description": facts.description,
            "year_costs": {str(y): {"days": c.days, "capex_spent_eur": c.capex_spent_eur,
                                    "capex_amortised_eur": c.capex_amortised_eur, "line_opex_eur": c.line_opex_eur}
                           for y, c in facts.year_costs.items()}}


def _cached_facts(data: RunData, amortisation_years: float) -> RunFacts | None:
    path = data.path / "plots" / FACTS_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc["scenario_sha256"] != data.manifest.get("scenario_sha256") or \
                doc["amortisation_years"] != amortisation_years:
            return None
        costs = {int(y): PhaseCost(y, int(c["days"]), float(c["capex_spent_eur"]), float(c["capex_amortised_eur"]),
                                   float(c["line_opex_eur"])) for y, c in doc["year_costs"].items()}
        return RunFacts(doc["region"], dict(doc["departement_names"]), str(doc["description"]), costs)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def run_facts(data: RunData, phases: Sequence[PhaseWindowDates],
              amortisation_years: float = DEFAULT_AMORTISATION_YEARS) -> RunFacts:
    """A run's :class:`RunFacts`: from ``plots/facts.json`` when it matches the scenario's SHA-256 and the
    amortisation period, else from the scenario file (:func:`scenario_for_run`), else empty with a note."""
    cached = _cached_facts(data, amortisation_years)
    if cached is not None:
        return cached
    loaded, note = scenario_for_run(data)
    if loaded is None:
        return RunFacts(None, {}, "", {}, note)
    return facts_from_scenario(loaded, phases, amortisation_years)


# --------------------------------------------------------------------------------------------------
# Runs


@dataclass(frozen=True)
class ComparedRun:
    """One run folder prepared for comparison.

    Attributes:
        data: the folder read back (:func:`twin.run.folder.read_run`).
        label: short label used in plots and tables ("A: auvergne-2008").
        phases: its phase windows.
        partial: the run did not complete (status not "complete", or fewer replications than asked).
        facts: what the presentation takes from its scenario (:class:`RunFacts`).
        reps: replication indices, ascending (the order of every per-replication array).
        years: {year: {kpi: per-replication array}} (raw values of ``replications_by_year.csv``).
    """

    data: RunData
    label: str
    phases: list[PhaseWindowDates]
    partial: bool
    facts: RunFacts
    reps: tuple[int, ...]
    years: dict[int, dict[str, np.ndarray]]

    @property
    def name(self) -> str:
        return str(self.data.manifest.get("scenario_name", self.data.path.name))

    @property
    def letter(self) -> str:
        return self.label.split(":", 1)[0]

    @property
    def status_text(self) -> str:
        """The run's status and replications, e.g. ``complete, 10 of 10 replications``."""
        m = self.data.manifest
        requested = m.get('replications_requested', '?')
        return f"{m.get('status', '?')}, {m.get('replications_done', '?')} of {_replications(requested)}"

    @property
    def end_date(self) -> dt.date:
        """The day after the run's last simulated day."""
        return self.phases[-1].end_date


def read_years(path: Path) -> tuple[tuple[int, ...], dict[int, dict[str, np.ndarray]]]:
    """A run folder's ``replications_by_year.csv``: (replication indices, {year: {kpi: array}}).

    Raises:
        TwinInputError: the file is missing (a run folder of an older twin) or malformed.
    """
    file = path / REPLICATIONS_BY_YEAR
    if not file.is_file():
        raise TwinInputError(f"no {REPLICATIONS_BY_YEAR}: a run folder from an older version of twin (before "
                             "results per calendar year); run its scenario again with this version", path=str(path))
    cells: dict[tuple[int, str], dict[int, float]] = {}
    reps: set[int] = set()
    try:
        with file.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames != ["replication", "year", "kpi", "value"]:
                raise TwinInputError(f"{REPLICATIONS_BY_YEAR} has unexpected columns {reader.fieldnames}",
                                     path=str(path))
            for row in reader:
                rep = int(row["replication"])
                reps.add(rep)
                value = float(row["value"]) if row["value"] else math.nan
                cells.setdefault((int(row["year"]), row["kpi"]), {})[rep] = value
    except (ValueError, TypeError, UnicodeDecodeError, csv.Error) as exc:
        raise TwinInputError(f"{REPLICATIONS_BY_YEAR} is malformed ({exc})", path=str(path)) from None
    order = tuple(sorted(reps))
    years: dict[int, dict[str, np.ndarray]] = {}
    for (year, kpi), by_rep in sorted(cells.items()):
        years.setdefault(year, {})[kpi] = np.array([by_rep.get(r, math.nan) for r in order])
    if not years:
        raise TwinInputError(f"{REPLICATIONS_BY_YEAR} holds no year", path=str(path))
    return order, years


def load_compared_run(folder: str | Path | RunData, label: str,
                      amortisation_years: float = DEFAULT_AMORTISATION_YEARS) -> ComparedRun:
    """Read a run folder (or take one already read) for comparison; partial runs are accepted and flagged.

    Raises:
        TwinInputError: folder missing, a result file missing or malformed, a folder of an older twin, or
            no finished replication.
    """
    data = folder if isinstance(folder, RunData) else read_run(folder)
    phases = parse_phases(data.phases, where=str(data.path))
    if not data.replications or not data.summary or not phases:
        raise TwinInputError("the run has no finished replication to compare", path=str(data.path))
    reps, years = read_years(data.path)
    status = data.manifest.get("status")
    done = data.manifest.get("replications_done")
    requested = data.manifest.get("replications_requested")
    partial = status != "complete" or (done is not None and requested is not None and done < requested)
    return ComparedRun(data=data, label=label, phases=phases, partial=partial,
                       facts=run_facts(data, phases, amortisation_years), reps=reps, years=years)


def _run_labels(folders: Sequence[Path], names: Sequence[str]) -> list[str]:
    letters = [chr(ord("A") + i) if i < 26 else f"R{i + 1}" for i in range(len(folders))]
    labels = []
    for i, (folder, name) in enumerate(zip(folders, names)):
        text = name if names.count(name) == 1 else f"{name} ({folder.name})"
        labels.append(f"{letters[i]}: {text}")
    return labels


# --------------------------------------------------------------------------------------------------
# Per-year values


def _replications(n: Any) -> str:
    """``"1 replication"``, ``"10 replications"``."""
    return f"{n} replication" + ("" if n == 1 else "s")


def _days_in_year(year: int) -> int:
    return (dt.date(year + 1, 1, 1) - dt.date(year, 1, 1)).days


def year_values(source: ComparedRun, year: int) -> dict[str, np.ndarray]:
    """``source``'s per-replication KPIs of ``year`` as the comparison shows them: counts as rates per
    year, cost per interview, phase-level KPIs weighted by days (module docstring)."""
    raw = source.years[year]
    days = raw.get("days_simulated")
    simulated = float(np.nanmax(days)) if days is not None and days.size else float(_days_in_year(year))
    factor = _days_in_year(year) / simulated if simulated > 0 else math.nan
    out: dict[str, np.ndarray] = {}
    for kpi in YEAR_KPIS:
        if kpi not in raw or kpi == "days_simulated":
            continue
        out[kpi] = raw[kpi] * factor if kpi_meta(kpi).rate else raw[kpi]
    window = next(w for w in year_windows(source.phases) if w.name == str(year))
    cost = source.facts.year_costs.get(year)
    if cost is not None:
        served = raw.get("interviews_served", np.array([]))
        with np.errstate(divide="ignore", invalid="ignore"):
            out[COST_KPI] = np.where(served > 0, cost.total_eur / served, math.nan)
    phase_kpis = [k for k in source.data.kpis if k in PHASE_LEVEL_KPIS or k.startswith("agent_utilisation_")]
    weights = []
    for phase in source.phases:
        overlap = (min(phase.end_date, window.end_date) - max(phase.start_date, window.start_date)).days
        if overlap > 0 and phase.name in source.data.replications:
            weights.append((phase.name, overlap))
    total = sum(w for _, w in weights)
    if total > 0:
        for kpi in phase_kpis:
            arrays = [np.asarray(source.data.replications[p].get(kpi, []), dtype=float) for p, _ in weights]
            if all(a.size == len(source.reps) for a in arrays):
                out[kpi] = sum(a * w for a, (_, w) in zip(arrays, weights)) / total
    out["days_simulated"] = np.full(len(source.reps), simulated)
    return out


# --------------------------------------------------------------------------------------------------
# The comparison


@dataclass(frozen=True)
class Cell:
    """A KPI in a year: run ``other`` against the reference run.

    Attributes:
        year, kpi, other: where.
        reference, value: the two runs' means (intervals of levels: :meth:`Comparison.interval`).
        difference: other minus reference (:class:`twin.presentation.statistics.Difference`).
        p_adjusted: Benjamini-Hochberg adjusted p-value over the whole comparison (NaN when not tested).
        verdict: better / worse / no practical difference / uncertain / higher / lower / n/a.
    """

    year: int
    kpi: str
    other: int
    reference: Interval
    value: Interval
    difference: Difference
    p_adjusted: float
    verdict: str


@dataclass(frozen=True)
class Comparison:
    """Runs put side by side by calendar year (the first is the reference).

    Attributes:
        runs: the runs, reference first.
        years: every year of every run, ascending.
        values: values[run][year][kpi] -> per-replication array (rates per year; absent: the run has no
            such year, even extended).
        extended: extended[run] = {year: label of the ``--until`` run standing in for it (status quo)}.
        paired: paired[run] is True when the run shares its random numbers with the reference (same seed
            and replications: paired differences), False for Welch (paired[0] is True).
        kpis: per-year KPIs every run has, in report order.
        cells: every (other run, year, KPI) against the reference.
        unaligned: sentences listing the years not compared and why.
        notes: other sentences for the reader (partial runs, missing costs, rates, pairing).
        amortisation_years: capex amortisation period used for cost, years.
        sources: sources[run] = {year: the ``--until`` run standing in for it}.
    """

    runs: list[ComparedRun]
    years: list[int]
    values: list[dict[int, dict[str, np.ndarray]]]
    extended: list[dict[int, str]]
    paired: list[bool]
    kpis: list[str]
    cells: list[Cell] = field(default_factory=list)
    unaligned: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    amortisation_years: float = DEFAULT_AMORTISATION_YEARS
    sources: list[dict[int, ComparedRun]] = field(default_factory=list)
    #: Memo of :meth:`interval` (bootstrap intervals are computed once, when first shown).
    _intervals: dict[tuple[int, int, str], Interval] = field(default_factory=dict, init=False, repr=False,
                                                             compare=False)
    #: :attr:`cells` by (other, year, kpi).
    _index: dict[tuple[int, int, str], Cell] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._index.update({(c.other, c.year, c.kpi): c for c in self.cells})

    def source(self, run: int, year: int) -> ComparedRun:
        """The run folder whose results stand for run ``run`` in ``year`` (its ``--until`` extension, or itself)."""
        return (self.sources[run] if run < len(self.sources) else {}).get(year, self.runs[run])

    def interval(self, run: int, year: int, kpi: str) -> Interval:
        """Mean and interval of a KPI for a run in a year (NaN mean when absent)."""
        key = (run, year, kpi)
        if key not in self._intervals:
            values = self.values[run].get(year, {}).get(kpi)
            self._intervals[key] = (Interval(math.nan, math.nan, math.nan, 0, "none") if values is None
                                    else mean_interval(values, kpi_meta(kpi).nonnegative))
        return self._intervals[key]

    def cell(self, other: int, year: int, kpi: str) -> Cell | None:
        """The cell of run ``other`` against the reference, or None."""
        return self._index.get((other, year, kpi))

    def compared_years(self, other: int) -> list[int]:
        """Years in which run ``other`` and the reference both have values."""
        return [y for y in self.years if y in self.values[0] and y in self.values[other]]

    @property
    def headline(self) -> list[str]:
        """The headline KPIs present, in order."""
        return [k for k in HEADLINE if k in self.kpis]


def _extensions(runs: list[ComparedRun]) -> list[dict[int, int]]:
    """For each run, {year it lacks: index of the ``--until`` run of the same scenario, seed and
    replications that has it}."""
    out: list[dict[int, int]] = []
    for run in runs:
        m = run.data.manifest
        found: dict[int, int] = {}
        for j, other in enumerate(runs):
            n = other.data.manifest
            if other is run or not n.get("until_year") or other.reps != run.reps:
                continue
            if (n.get("scenario_sha256"), n.get("seed")) != (m.get("scenario_sha256"), m.get("seed")):
                continue
            for year in other.years:
                if year not in run.years and dt.date(year, 1, 1) >= run.end_date:
                    found.setdefault(year, j)
        out.append(found)
    return out


def _check_regions(runs: list[ComparedRun]) -> None:
    """Refuse runs of different regions (their years cannot be set side by side)."""
    def region(run: ComparedRun) -> str:
        if run.facts.region is not None:
            return run.facts.region
        deps = sorted({d for phase in run.data.by_departement.values() for d in phase})
        return "departements " + ", ".join(deps) if deps else "?"

    regions = [region(r) for r in runs]
    kinds = {r.startswith("departements") for r in regions}
    if len(kinds) == 1 and len(set(regions)) > 1:
        raise TwinInputError("the runs are of different regions and cannot be compared: "
                             + "; ".join(f"{run.label} covers {reg}" for run, reg in zip(runs, regions)))


def _is_paired(reference: ComparedRun, other: ComparedRun) -> bool:
    a, b = reference.data.manifest, other.data.manifest
    return a.get("seed") is not None and a.get("seed") == b.get("seed") and bool(set(reference.reps) & set(other.reps))


def _pair_arrays(reference: ComparedRun, other: ComparedRun, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    common = sorted(set(reference.reps) & set(other.reps))
    ia = [reference.reps.index(r) for r in common]
    ib = [other.reps.index(r) for r in common]
    return a[ia], b[ib]


def _unaligned_text(runs: list[ComparedRun], values: list[dict[int, dict[str, np.ndarray]]]) -> list[str]:
    lines = []
    all_years = sorted({y for v in values for y in v})
    for r, run in enumerate(runs):
        missing = [y for y in all_years if y not in values[r]]
        if not missing:
            continue
        later = [y for y in missing if dt.date(y, 1, 1) >= run.end_date]
        earlier = [y for y in missing if y not in later]
        if later:
            scenario = run.data.manifest.get("scenario_file", "SCENARIO")
            lines.append(f"{_years_text(later)}: not compared with {run.label}, which ends on "
                         f"{run.end_date - dt.timedelta(days=1):%d %B %Y}; run `twin run {scenario} --until "
                         f"{later[-1]} --seed {run.data.manifest.get('seed')} -r {len(run.reps)}` and add that run "
                         "folder to extend it with the status quo (nothing changes).")
        if earlier:
            lines.append(f"{_years_text(earlier)}: not compared with {run.label}, which starts on "
                         f"{run.phases[0].start_date:%d %B %Y}.")
    return lines


def _years_text(years: Sequence[int]) -> str:
    if len(years) > 1 and list(years) == list(range(years[0], years[-1] + 1)):
        return f"{years[0]}-{years[-1]}"
    return ", ".join(map(str, years))


def _notes(runs: list[ComparedRun], paired: list[bool], values: list[dict[int, dict[str, np.ndarray]]]) -> list[str]:
    notes = []
    for run in runs:
        if run.partial:
            notes.append(f"{run.label} is a partial run ({run.status_text}): compared on the replications it "
                         "finished.")
        if run.facts.note:
            notes.append(f"{run.label}: {run.facts.note}; cost per interview skipped.")
    for r in range(1, len(runs)):
        if paired[r]:
            notes.append(f"{runs[r].label} and {runs[0].label} share their random numbers (same seed "
                         f"{runs[0].data.manifest.get('seed')}): differences are paired replication by "
                         "replication (common random numbers).")
        else:
            notes.append(f"{runs[r].label} and {runs[0].label} were run with different seeds: differences use "
                         "Welch's test for independent samples.")
    partial_years = sorted({y for v in values for y, cells in v.items()
                            if cells.get("days_simulated") is not None and cells["days_simulated"].size
                            and float(np.nanmax(cells["days_simulated"])) < _days_in_year(y)})
    for year in sorted({y for v in values for y in v}):
        days = {float(np.nanmax(v[year]["days_simulated"])) for v in values if year in v}
        if len(days) > 1:
            notes.append(f"{year} was simulated for different numbers of days ("
                         + ", ".join(f"{runs[r].letter} {float(np.nanmax(v[year]['days_simulated'])):.0f}"
                                     for r, v in enumerate(values) if year in v)
                         + "): its counts are compared as rates per year.")
    if partial_years:
        notes.append(f"Partly simulated years ({_years_text(partial_years)}) are shown as rates per year "
                     "(counts x days in the year / days simulated).")
    return notes


def compare_runs(folders: Sequence[str | Path | RunData],
                 amortisation_years: float = DEFAULT_AMORTISATION_YEARS) -> Comparison:
    """Put run folders side by side by calendar year, the first being the reference.

    Args:
        folders: one or more run folders written by ``twin run`` (one: a single-run report).
        amortisation_years: capex amortisation period for the cost per interview, years.

    Returns:
        A :class:`Comparison` (module docstring: alignment, extension, statistics, cost).

    Raises:
        TwinInputError: no folder; a folder missing, incomplete, empty or from an older twin; runs of
            different regions; amortisation out of range.
    """
    if not folders:
        raise TwinInputError("give at least one run folder")
    if not 0 < amortisation_years <= MAX_AMORTISATION_YEARS:
        raise TwinInputError(f"--amortisation-years must be > 0 and <= {MAX_AMORTISATION_YEARS:g}, got {amortisation_years}")
    datas = [f if isinstance(f, RunData) else read_run(f) for f in folders]  # a bad folder fails first
    names = [str(d.manifest.get("scenario_name", d.path.name)) for d in datas]
    runs = [load_compared_run(d, label, amortisation_years)
            for d, label in zip(datas, _run_labels([d.path for d in datas], names))]
    _check_regions(runs)
    runs, extensions, extension_notes = _fold_extensions(runs, _extensions(runs))
    values: list[dict[int, dict[str, np.ndarray]]] = []
    extended: list[dict[int, str]] = []
    for r, run in enumerate(runs):
        own = {y: year_values(run, y) for y in run.years}
        borrowed = {y: year_values(source, y) for y, source in extensions[r].items()}
        values.append({**own, **borrowed})
        extended.append({y: f"{source.data.path.name} (--until {source.data.manifest.get('until_year')})"
                         for y, source in extensions[r].items()})
    kpi_sets = [set().union(*(set(v) for v in vals.values())) for vals in values]
    agents = sorted({k for k in kpi_sets[0] if k.startswith("agent_utilisation_")})
    kpis = [k for k in (*YEAR_ORDER, *agents) if all(k in s for s in kpi_sets)]
    paired = [True] + [_is_paired(runs[0], run) for run in runs[1:]]
    cells = _cells(runs, values, kpis, paired)
    years = sorted({y for v in values for y in v})
    return Comparison(runs=runs, years=years, values=values, extended=extended, paired=paired, kpis=kpis,
                      cells=cells, unaligned=_unaligned_text(runs, values),
                      notes=extension_notes + _notes(runs, paired, values), amortisation_years=amortisation_years,
                      sources=extensions)


def _fold_extensions(runs: list[ComparedRun], extensions: list[dict[int, int]]
                     ) -> tuple[list[ComparedRun], list[dict[int, ComparedRun]], list[str]]:
    """Runs given only to extend another with the status quo (a ``--until`` run holding every year of the
    run it extends, and more) are folded into it rather than shown as runs of their own; the reference run
    is always shown. Returns the runs shown (relabelled A, B, ...), each one's {year: run standing in},
    and notes saying which folder extends which run."""
    folded = {j for r, ext in enumerate(extensions) for j in ext.values()
              if j != 0 and set(runs[j].years) >= set(runs[r].years)}
    keep = [i for i in range(len(runs)) if i not in folded]
    labels = _run_labels([runs[i].data.path for i in keep], [runs[i].name for i in keep])
    shown = {i: dataclasses.replace(runs[i], label=label) for i, label in zip(keep, labels)}
    notes = []
    out_ext: list[dict[int, ComparedRun]] = []
    for i in keep:
        ext = {y: runs[j] for y, j in extensions[i].items()}
        out_ext.append(ext)
        for source in {id(s): s for s in ext.values()}.values():
            years = sorted(y for y, s in ext.items() if s is source)
            notes.append(f"{shown[i].label} is extended with the status quo through {years[-1]} by run folder "
                         f"{source.data.path} (twin run --until {source.data.manifest.get('until_year')}: same "
                         "scenario, seed and replications, nothing changes after the last phase).")
    return [shown[i] for i in keep], out_ext, notes


def _mean_only(values: np.ndarray) -> Interval:
    """The mean of per-replication values without an interval (cells need only means; intervals of
    levels are computed on demand by :meth:`Comparison.interval`)."""
    x = values[~np.isnan(values)]
    mean = float(x.mean()) if x.size else math.nan
    return Interval(mean, math.nan, math.nan, int(x.size), "none")


def _cells(runs: list[ComparedRun], values: list[dict[int, dict[str, np.ndarray]]], kpis: list[str],
           paired: list[bool]) -> list[Cell]:
    """Every (other run, year, KPI) cell, its test, BH-adjusted p-values and verdict."""
    raw: list[tuple[int, int, str, Interval, Interval, Difference]] = []
    for r in range(1, len(runs)):
        for year in sorted(set(values[0]) & set(values[r])):
            for kpi in kpis:
                a, b = values[0][year].get(kpi), values[r][year].get(kpi)
                if a is None or b is None:
                    continue
                if paired[r]:
                    pa, pb = _pair_arrays(runs[0], runs[r], a, b)
                    d = paired_difference(pa, pb)
                else:
                    d = welch_difference(a, b)
                raw.append((r, year, kpi, _mean_only(a), _mean_only(b), d))
    adjusted = adjust_p_values([d.p_value for *_, d in raw])
    return [Cell(year, kpi, r, ia, ib, d, p, verdict(kpi_meta(kpi), ia.mean, d, p))
            for (r, year, kpi, ia, ib, d), p in zip(raw, adjusted)]


# --------------------------------------------------------------------------------------------------
# The verdict


@dataclass(frozen=True)
class Verdict:
    """The answer first: what a decision-maker reads before anything else.

    Attributes:
        year: the year the verdict speaks of (the last year every run has, preferably a full one).
        sentences: plain sentences (one per other run, or a summary of a single run).
        where: per run, the departements by interviews in ``year``'s phase: [(name, per-year rate)].
    """

    year: int | None
    sentences: list[str]
    where: list[list[tuple[str, float]]]


def verdict_year(c: Comparison) -> int | None:
    """The last year every run has values for, a full year if there is one."""
    common = [y for y in c.years if all(y in v for v in c.values)]
    full = [y for y in common if all(float(np.nanmax(v[y]["days_simulated"])) >= _days_in_year(y) for v in c.values)]
    return (full or common or [None])[-1]


def departements_in_year(run: ComparedRun, year: int) -> list[tuple[str, float]]:
    """Interviews per year by departement in the phase covering the middle of ``year`` (largest first)."""
    mid = dt.date(year, 7, 1)
    phase = next((p for p in run.phases if p.start_date <= mid < p.end_date), run.phases[-1])
    cells = run.data.by_departement.get(phase.name, {})
    factor = _days_in_year(year) / phase.days if phase.days else math.nan  # 366 in a leap year, as by_year
    names = run.facts.departement_names
    rows = [(names.get(code, code), float(kpis["interviews_served"]["mean"]) * factor)
            for code, kpis in cells.items() if kpis.get("interviews_served", {}).get("mean") is not None]
    return sorted(rows, key=lambda row: -row[1])


def departement_names(loaded: Any) -> dict[str, str]:
    """Departement code -> name from the communes file's ``departement`` column (codes if absent)."""
    names: dict[str, str] = {}
    try:
        path = loaded.path.parent / loaded.spec.region.communes_file
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row.get("departement"):
                    names.setdefault(row["departement_code"], row["departement"])
    except (OSError, KeyError, AttributeError, TypeError):
        pass
    return names


#: What follows a number of each formatter kind in a sentence.
_SUFFIX = {"count": "", "minutes": " min", "eur": " EUR", "share": "", "mos": "", "erlang": " erlangs"}


def _phrase(c: Comparison, r: int, year: int, kpi: str) -> str:
    """One KPI's difference in words: "interviews served +477 a year (+6.8%; 95% CI +461 to +492): better"."""
    meta = kpi_meta(kpi)
    cell = c.cell(r, year, kpi)
    if cell is None or math.isnan(cell.difference.diff):
        return ""
    d = cell.difference
    suffix = " a year" if meta.rate else _SUFFIX.get(meta.kind, "")
    if d.method == "exact" and d.diff == 0:
        return f"{meta.label} unchanged at {meta.value(cell.reference.mean)}{suffix} (identical in every replication)"
    details = [f"{d.diff / cell.reference.mean:+.1%}"] if cell.reference.mean and meta.kind == "count" else []
    if d.method == "exact":
        details.append("the same in every replication")
    elif not math.isnan(d.low):
        details.append(f"95% CI {meta.diff(d.low)} to {meta.diff(d.high)}")
    return f"{meta.label} {meta.diff(d.diff)}{suffix} ({'; '.join(details)}): {cell.verdict}"


def build_verdict(c: Comparison) -> Verdict:
    """The verdict of a comparison (or the summary of a single run)."""
    year = verdict_year(c)
    if year is None:
        return Verdict(None, ["The runs have no calendar year in common: nothing can be compared."], [])
    where = [departements_in_year(c.source(r, year), year) for r in range(len(c.runs))]
    sentences = []
    if len(c.runs) == 1:
        run = c.runs[0]
        served = c.interval(0, year, "interviews_served")
        text = f"In {year} the network serves {kpi_meta('interviews_served').value(served.mean)} interviews"
        if not (math.isnan(served.low) or math.isnan(served.high)):
            text += (f" (95% CI {kpi_meta('interviews_served').value(served.low)} to "
                     f"{kpi_meta('interviews_served').value(served.high)})")
        cost = c.interval(0, year, COST_KPI)
        if not math.isnan(cost.mean):
            text += f" at {kpi_meta(COST_KPI).value(cost.mean)} EUR per interview"
        poor = c.interval(0, year, "share_mos_below_3")
        text += f"; {kpi_meta('share_mos_below_3').value(poor.mean)} of them of poor quality (MOS < 3)"
        if where[0]:
            text += f"; the most in {where[0][0][0]} ({where[0][0][1]:,.0f} a year)"
        sentences.append(text + f" ({run.label}, {_replications(len(run.reps))}"
                         + ("; one replication gives no interval" if len(run.reps) == 1 else "") + ").")
        return Verdict(year, sentences, where)
    for r in range(1, len(c.runs)):
        served = c.cell(r, year, "interviews_served")
        if served is None:
            continue
        more = served.difference.diff
        who = (f"{c.runs[r].label} serves more citizens than {c.runs[0].label}" if served.verdict == "better" else
               f"{c.runs[r].label} serves fewer citizens than {c.runs[0].label}" if served.verdict == "worse" else
               f"{c.runs[r].label} and {c.runs[0].label} serve about as many citizens")
        parts = [_phrase(c, r, year, "interviews_served")]
        cost_a, cost_b = c.interval(0, year, COST_KPI), c.interval(r, year, COST_KPI)
        if not math.isnan(cost_a.mean) and not math.isnan(cost_b.mean):
            cost = c.cell(r, year, COST_KPI)
            parts.append(f"cost per interview {kpi_meta(COST_KPI).value(cost_b.mean)} EUR against "
                         f"{kpi_meta(COST_KPI).value(cost_a.mean)} EUR" + (f" ({cost.verdict})" if cost else ""))
        parts += [p for p in (_phrase(c, r, year, "share_mos_below_3"), _phrase(c, r, year, "wait_mean_min")) if p]
        gains = _departement_gains(where[0], where[r])
        if gains and abs(more) > 0:
            parts.append("most of the change in " + ", ".join(f"{name} ({g:+,.0f} interviews a year)"
                                                              for name, g in gains[:2]))
        sentences.append(f"In {year}, {who}: " + "; ".join(p for p in parts if p) + ".")
    return Verdict(year, sentences, where)


def _departement_gains(a: list[tuple[str, float]], b: list[tuple[str, float]]) -> list[tuple[str, float]]:
    ref = dict(a)
    gains = [(name, value - ref.get(name, 0.0)) for name, value in b]
    return sorted(gains, key=lambda g: -abs(g[1]))


# --------------------------------------------------------------------------------------------------
# JSON


def comparison_json(comparison: Comparison) -> dict[str, Any]:
    """A JSON-ready summary of a comparison (runs, years, cells), NaN written as null."""

    def num(x: float) -> float | None:
        return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)

    c = comparison
    return {
        "reference": str(c.runs[0].data.path),
        "amortisation_years": c.amortisation_years,
        "runs": [{"label": r.label, "folder": str(r.data.path), "scenario_name": r.name,
                  "status": r.data.manifest.get("status"), "partial": r.partial, "replications": len(r.reps),
                  "seed": r.data.manifest.get("seed"), "paired_with_reference": c.paired[i],
                  "years": sorted(c.values[i]), "extended_years": {str(y): lab for y, lab in c.extended[i].items()},
                  "cost_note": r.facts.note} for i, r in enumerate(c.runs)],
        "years": c.years,
        "unaligned": list(c.unaligned),
        "notes": list(c.notes),
        "verdict": build_verdict(c).sentences,
        "cells": [{"year": x.year, "kpi": x.kpi, "run": c.runs[x.other].label,
                   "reference_mean": num(x.reference.mean), "other_mean": num(x.value.mean),
                   "diff": num(x.difference.diff), "ci95_low": num(x.difference.low),
                   "ci95_high": num(x.difference.high), "method": x.difference.method,
                   "p_value": num(x.difference.p_value), "p_adjusted_bh": num(x.p_adjusted),
                   "verdict": x.verdict} for x in c.cells],
    }


__all__ = [
    "DEFAULT_AMORTISATION_YEARS",
    "Cell",
    "ComparedRun",
    "Comparison",
    "PhaseCost",
    "PhaseWindowDates",
    "Verdict",
    "build_verdict",
    "compare_runs",
    "comparison_json",
    "departement_names",
    "departements_in_year",
    "load_compared_run",
    "parse_phases",
    "phase_costs",
    "read_years",
    "scenario_for_run",
    "verdict_year",
    "window_costs",
    "year_values",
]
