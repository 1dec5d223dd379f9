"""Comparing run folders: phase alignment by date, per-replication statistics, Welch tests and cost.

This module holds the *logic* of ``twin compare`` and ``twin report``; figures and HTML live in
:mod:`twin.presentation.report`, the click commands in :mod:`twin.cli.present`.

Phase alignment (runs of different scenarios may name and cut their phases differently):

1. The first run is the reference; its phases are the comparison's phases (the x axis of every plot).
2. For each other run and each reference phase with window [start, end) (``phases.json``; ``end_date``
   is exclusive), the matched phase is the other run's phase whose window contains the reference
   phase's midpoint ``start + (end - start) / 2``. A reference phase whose midpoint no phase of the other
   run covers has no match (shown as a gap). Two runs of the same scenario therefore match phase by
   phase; a run cut by calendar years matches a "2007" phase with "year-2007" whatever the names.
3. If any matched pair has different windows, every count KPI (interviews, unmet demand, travel
   avoided) of every run is converted to a yearly rate (x 365 / phase days) so that the comparison does
   not reward a longer phase; :attr:`Comparison.per_year` says so and labels carry "per year".

Statistics: each KPI's per-replication values come from ``replications.csv`` (NaN = undefined, left
out). Means with the half-width of the Student-t 95% confidence interval (as :func:`twin.kpis.summarize`);
differences "other minus reference" with Welch's unequal-variance t-test
(``scipy.stats.ttest_ind(equal_var=False)``) and the Welch-Satterthwaite 95% confidence interval of the
difference; significant when p < 0.05. A KPI that does not vary across replications in either run
(coverage, kiosk counts) has no test: its difference is exact (``deterministic``), significant when
non-zero.

Cost (EUR; needs the run's scenario file, see :func:`scenario_for_run`): a phase costs the kiosks'
capital expense amortised straight-line over ``amortisation_years`` (5 by default, an ASSUMPTION: usual
depreciation period of IT equipment) from the day each kiosk is installed or upgraded, plus the line
opex: each installed site's line offer's ``monthly_cost_eur`` (:func:`twin.line.get_offer`) times the
months it is installed in the phase (months = days / 30.4375). Capex per site: the site's
``capex_eur`` if given, else the scenario's ``costs.user_kiosk_capex_eur`` or
``costs.expert_kiosk_capex_eur`` times ``kiosk_count``; an upgrade costs ``costs.upgrade_capex_eur``.
Service offices' own lines and standard videoconference rooms are the services' and not counted.
Cost per interview served = phase cost / interviews served in the phase, per replication.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from twin.errors import TwinInputError
from twin.line import get_offer
from twin.model.inputs import prepare
from twin.quality import OpinionQualityModel
from twin.run.folder import RunData, read_run
from twin.scenario.loading import load_scenario
from twin.vocabulary import DAYS_PER_MONTH, UNMET_REASONS

#: Significance level of the Welch tests.
ALPHA = 0.05

#: Default straight-line amortisation period of kiosk capex, years (ASSUMPTION).
DEFAULT_AMORTISATION_YEARS = 5.0

#: Derived KPI: cost per interview served, EUR (only when the scenario file is available).
COST_KPI = "cost_per_interview_eur"

#: KPIs that count events over a phase (converted to yearly rates when phase windows differ).
COUNT_KPIS = ("interviews_served", *[f"unmet_{r}" for r in UNMET_REASONS], "unmet_total", "travel_avoided_km")

#: Headline KPIs of the terminal table and the report's first table: (kpi, label, format, unit).
HEADLINE_KPIS: tuple[tuple[str, str, str, str], ...] = (
    ("interviews_served", "interviews served", "{:,.0f}", "interviews"),
    ("unmet_total", "unmet demand", "{:,.0f}", "needs"),
    ("wait_mean_min", "mean wait", "{:,.1f}", "min"),
    ("wait_p95_min", "p95 wait", "{:,.1f}", "min"),
    ("share_mos_below_3", "share MOS<3", "{:.1%}", "share"),
    ("population_within_15km", "population within 15 km", "{:,.0f}", "inhabitants"),
    ("travel_avoided_km", "travel avoided", "{:,.0f}", "km"),
    (COST_KPI, "cost per interview", "{:,.2f}", "EUR"),
)


# --------------------------------------------------------------------------------------------------
# Statistics


@dataclass(frozen=True)
class MeanCI:
    """Mean over replications and half-width of its two-sided 95% Student-t CI (NaN when undefined)."""

    mean: float
    ci95_half_width: float
    n: int


def mean_ci(values: Sequence[float] | np.ndarray) -> MeanCI:
    """Mean and 95% CI half-width of per-replication values (NaNs ignored; half-width NaN if n < 2)."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = int(x.size)
    if n == 0:
        return MeanCI(math.nan, math.nan, 0)
    if n == 1:
        return MeanCI(float(x[0]), math.nan, 1)
    half = float(stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return MeanCI(float(x.mean()), half, n)


@dataclass(frozen=True)
class WelchResult:
    """Difference of means (other minus reference) and its test.

    Attributes:
        diff: mean(other) - mean(reference), in the KPI's unit (NaN if either side is undefined).
        ci_low, ci_high: 95% Welch-Satterthwaite CI of the difference (NaN when not computable).
        p_value: two-sided Welch t-test p-value (NaN when not computable or deterministic).
        significant: p < :data:`ALPHA`, or, when deterministic, a non-zero difference.
        deterministic: neither sample varies across replications: the difference is exact.
    """

    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    significant: bool
    deterministic: bool


def welch_test(reference: Sequence[float] | np.ndarray, other: Sequence[float] | np.ndarray) -> WelchResult:
    """Welch's t-test of ``other`` against ``reference`` (per-replication values; NaNs dropped).

    Uses ``scipy.stats.ttest_ind(other, reference, equal_var=False)``. With fewer than two values on a
    side nothing is tested (p NaN, not significant).
    """
    a = np.asarray(reference, dtype=float)
    b = np.asarray(other, dtype=float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    nan = math.nan
    if a.size == 0 or b.size == 0:
        return WelchResult(nan, nan, nan, nan, False, False)
    diff = float(b.mean() - a.mean())
    if a.size < 2 or b.size < 2:
        return WelchResult(diff, nan, nan, nan, False, False)
    va, vb = float(a.var(ddof=1)), float(b.var(ddof=1))
    se2 = va / a.size + vb / b.size
    scale = max(1.0, abs(float(a.mean())), abs(float(b.mean())))
    if se2 <= (1e-12 * scale) ** 2:
        exact = abs(diff) > 1e-9 * scale
        return WelchResult(diff, diff, diff, nan, exact, True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(stats.ttest_ind(b, a, equal_var=False).pvalue)
    df = se2**2 / ((va / a.size) ** 2 / (a.size - 1) + (vb / b.size) ** 2 / (b.size - 1))
    half = float(stats.t.ppf(0.975, df) * math.sqrt(se2))
    return WelchResult(diff, diff - half, diff + half, p, bool(p < ALPHA), False)


# --------------------------------------------------------------------------------------------------
# Phase alignment


@dataclass(frozen=True)
class PhaseWindowDates:
    """A phase's name and dates (end exclusive), as in ``phases.json``."""

    name: str
    start_date: dt.date
    end_date: dt.date

    @property
    def days(self) -> int:
        return (self.end_date - self.start_date).days

    @property
    def midpoint(self) -> dt.date:
        return self.start_date + dt.timedelta(days=self.days / 2)


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


def align_phases(reference: Sequence[PhaseWindowDates], other: Sequence[PhaseWindowDates]) -> list[str | None]:
    """For each reference phase, the name of the other run's phase containing its midpoint (or None).

    Args:
        reference: the reference run's phases, in order.
        other: the other run's phases, in order.

    Returns:
        A list as long as ``reference``: other-run phase names, None where no phase covers the midpoint.
    """
    matches: list[str | None] = []
    for ref in reference:
        mid = ref.midpoint
        found = next((o.name for o in other if o.start_date <= mid < o.end_date), None)
        matches.append(found)
    return matches


# --------------------------------------------------------------------------------------------------
# Scenario and cost


@dataclass(frozen=True)
class PhaseCost:
    """Cost of one phase of a rollout, EUR.

    Attributes:
        phase: phase name.
        days: phase length, days.
        capex_spent_eur: kiosk purchases and upgrades made at the phase's start (cash view).
        capex_amortised_eur: capex of installed kiosks and upgrades amortised over the phase's days.
        line_opex_eur: line offers' monthly costs of the sites installed, over the phase's months.
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


#: Longest amortisation period accepted, years (a kiosk does not last a century).
MAX_AMORTISATION_YEARS = 100.0


def phase_costs(loaded: Any, phases: Sequence[PhaseWindowDates],
                amortisation_years: float = DEFAULT_AMORTISATION_YEARS) -> dict[str, PhaseCost]:
    """Each phase's cost from a scenario's sites, rollout and ``costs`` section (see module docstring).

    Args:
        loaded: a :class:`twin.scenario.LoadedScenario` (its phases must be the run's phases).
        phases: the run's phase windows (``phases.json``), giving the last phase's end.
        amortisation_years: straight-line amortisation period of capex, years (> 0).

    Returns:
        {phase name: :class:`PhaseCost`}.

    Raises:
        TwinInputError: amortisation_years <= 0, or the scenario's phases differ from the run's.
    """
    if not 0 < amortisation_years <= MAX_AMORTISATION_YEARS:
        raise TwinInputError(f"--amortisation-years must be > 0 and <= {MAX_AMORTISATION_YEARS:g}, got {amortisation_years}")
    spec = loaded.spec
    if [p.name for p in spec.phases] != [p.name for p in phases]:
        raise TwinInputError("the scenario's phases differ from the run's phases.json")
    costs = spec.costs
    sites = {s.id: s for s in spec.sites}
    life_days = amortisation_years * 365.25

    def capex(site: Any) -> float:
        if site.capex_eur is not None:
            return float(site.capex_eur)
        unit = costs.user_kiosk_capex_eur if site.kind == "user" else costs.expert_kiosk_capex_eur
        return float(unit) * site.kiosk_count

    # (site, date from, date to or None) installations, and capex events (date, amount)
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
    for window in phases:
        spent = sum(amount for day, amount in capex_events if window.start_date <= day < window.end_date)
        amortised = 0.0
        for day, amount in capex_events:
            life_end = day + dt.timedelta(days=life_days)
            amortised += amount * overlap_days(window.start_date, window.end_date, day, life_end) / life_days
        opex = 0.0
        for sid, start, end in intervals:
            days = overlap_days(window.start_date, window.end_date, start, end)
            opex += get_offer(sites[sid].line.offer).monthly_cost_eur * days / DAYS_PER_MONTH
        out[window.name] = PhaseCost(window.name, window.days, float(spent), amortised, opex)
    return out


def scenario_for_run(run: RunData) -> tuple[Any | None, str | None]:
    """The run's scenario, loaded, if its file is still there and unchanged.

    The manifest's ``scenario_file`` is resolved as given if absolute, else against the current folder,
    the run folder and, failing those, the absolute path the run recorded. The file's SHA-256 must equal the manifest's
    ``scenario_sha256``.

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


def expected_kiosk_demand_per_year(loaded: Any, phase_name: str) -> dict[str, float]:
    """Expected reachable interviews per year at each user kiosk in a phase (the model's arrival rates).

    This is the twin's compiled demand (:func:`twin.model.prepare`: the Poisson rates of the demand
    streams routed to each kiosk), not a simulated count; it is what the maps size kiosks by.

    Returns:
        {site id: interviews per year}; kiosks with no reachable demand are absent.
    """
    inputs = prepare(loaded, OpinionQualityModel())  # quality is not used by the demand streams
    cfg = next(c for c in inputs.phases if c.window.name == phase_name)
    out: dict[str, float] = {}
    for stream in cfg.streams:
        sid = inputs.site_ids[stream.site]
        out[sid] = out.get(sid, 0.0) + stream.rate_per_year
    return out


# --------------------------------------------------------------------------------------------------
# Runs and comparisons


@dataclass(frozen=True)
class ComparedRun:
    """One run folder prepared for comparison.

    Attributes:
        data: the folder read back (:func:`twin.run.folder.read_run`).
        label: short label used in plots and tables ("A: auvergne-2008").
        phases: its phase windows.
        partial: the run did not complete (status not "complete", or fewer replications than asked).
        scenario: its LoadedScenario, or None (see ``scenario_note``).
        scenario_note: why the scenario (hence cost and map) is unavailable, or None.
        costs: {phase: PhaseCost}, empty when the scenario is unavailable.
    """

    data: RunData
    label: str
    phases: list[PhaseWindowDates]
    partial: bool
    scenario: Any | None
    scenario_note: str | None
    costs: dict[str, PhaseCost]

    @property
    def name(self) -> str:
        return str(self.data.manifest.get("scenario_name", self.data.path.name))

    @property
    def status_text(self) -> str:
        """The run's status and replications, e.g. ``complete, 10 of 10 replications``."""
        m = self.data.manifest
        return (f"{m.get('status', '?')}, {m.get('replications_done', '?')} of "
                f"{m.get('replications_requested', '?')} replications")


@dataclass(frozen=True)
class AlignedPhase:
    """A reference phase and, for every run (reference first), the phase matched to it (or None)."""

    label: str
    matches: tuple[str | None, ...]
    same_window: tuple[bool, ...]


@dataclass(frozen=True)
class KpiDifference:
    """A KPI in an aligned phase: run ``other`` against the reference run."""

    phase: str
    kpi: str
    other: int
    reference_stats: MeanCI
    other_stats: MeanCI
    test: WelchResult


@dataclass(frozen=True)
class Comparison:
    """Runs put side by side (the first is the reference).

    Attributes:
        runs: the runs, reference first.
        phases: the aligned phases (reference phases, in order).
        per_year: count KPIs are yearly rates (phase windows differ between runs), else per phase.
        kpis: KPI names available in every run, in the reference's order (plus :data:`COST_KPI` when at
            least one run has costs).
        values: values[run][phase label][kpi] -> per-replication array (NaN undefined); phase labels
            are the reference's; missing matches give no entry.
        differences: every (other run, phase, KPI) against the reference.
        notes: sentences to show the reader (partial runs, skipped costs, alignment).
        amortisation_years: capex amortisation period used for cost, years.
    """

    runs: list[ComparedRun]
    phases: list[AlignedPhase]
    per_year: bool
    kpis: list[str]
    values: list[dict[str, dict[str, np.ndarray]]]
    differences: list[KpiDifference] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    amortisation_years: float = DEFAULT_AMORTISATION_YEARS

    def stats(self, run: int, phase: str, kpi: str) -> MeanCI:
        """Mean and CI of a KPI for a run in an aligned phase (NaN mean when absent)."""
        values = self.values[run].get(phase, {}).get(kpi)
        return MeanCI(math.nan, math.nan, 0) if values is None else mean_ci(values)

    def difference(self, other: int, phase: str, kpi: str) -> KpiDifference | None:
        """The difference record of run ``other`` against the reference, or None."""
        for d in self.differences:
            if d.other == other and d.phase == phase and d.kpi == kpi:
                return d
        return None

    def kpi_label_suffix(self, kpi: str) -> str:
        """The unit suffix of a count KPI ("per year" or "per phase"); "" for other KPIs."""
        if kpi in COUNT_KPIS:
            return "per year" if self.per_year else "per phase"
        return ""


def load_compared_run(folder: str | Path | RunData, label: str,
                      amortisation_years: float = DEFAULT_AMORTISATION_YEARS) -> ComparedRun:
    """Read a run folder (or take one already read) for comparison; partial runs are accepted and flagged.

    Raises:
        TwinInputError: folder missing, a result file missing or malformed, or no finished replication.
    """
    data = folder if isinstance(folder, RunData) else read_run(folder)
    phases = parse_phases(data.phases, where=str(data.path))
    if not data.replications or not data.summary:
        raise TwinInputError("the run has no finished replication to compare", path=str(data.path))
    status = data.manifest.get("status")
    done = data.manifest.get("replications_done")
    requested = data.manifest.get("replications_requested")
    partial = status != "complete" or (done is not None and requested is not None and done < requested)
    loaded, note = scenario_for_run(data)
    costs: dict[str, PhaseCost] = {}
    if loaded is not None:
        try:
            costs = phase_costs(loaded, phases, amortisation_years)
        except TwinInputError as exc:
            if "amortisation" in str(exc):
                raise
            loaded, note = None, f"{exc}: cost and map skipped"
    return ComparedRun(data=data, label=label, phases=phases, partial=partial, scenario=loaded,
                       scenario_note=note, costs=costs)


def _run_labels(folders: Sequence[Path], names: Sequence[str]) -> list[str]:
    letters = [chr(ord("A") + i) if i < 26 else f"R{i + 1}" for i in range(len(folders))]
    labels = []
    for i, (folder, name) in enumerate(zip(folders, names)):
        text = name if names.count(name) == 1 else f"{name} ({folder.name})"
        labels.append(f"{letters[i]}: {text}")
    return labels


def _align(runs: list[ComparedRun]) -> tuple[list[AlignedPhase], bool, list[str]]:
    """Each reference phase matched in every run (by date), whether counts must become yearly rates
    (some matched windows differ), and the notes saying so."""
    ref = runs[0]
    aligned_names = [[p.name for p in ref.phases]] + [align_phases(ref.phases, r.phases) for r in runs[1:]]
    by_name = [{p.name: p for p in r.phases} for r in runs]
    aligned: list[AlignedPhase] = []
    per_year = False
    for k, ref_phase in enumerate(ref.phases):
        matches = tuple(names_[k] for names_ in aligned_names)
        same = []
        for r, match in enumerate(matches):
            if match is None:
                same.append(False)
                continue
            window = by_name[r][match]
            ok = (window.start_date, window.end_date) == (ref_phase.start_date, ref_phase.end_date)
            same.append(ok)
            per_year = per_year or not ok
        aligned.append(AlignedPhase(ref_phase.name, matches, tuple(same)))
    notes: list[str] = []
    if len(runs) > 1:
        renamed = [(a.label, runs[r].label, m) for a in aligned for r, m in enumerate(a.matches)
                   if r > 0 and m != a.label]
        if renamed or per_year:
            notes.append("Phases aligned by date: each phase of " + ref.label + " is matched with the "
                         "phase of every other run whose window contains its midpoint"
                         + (" (" + "; ".join(f"{a} <- {lab} {m or 'none'}" for a, lab, m in renamed) + ")"
                            if renamed else "") + ".")
        if per_year:
            notes.append("Matched phases have different windows: counts (interviews, unmet demand, travel "
                         "avoided) are shown as yearly rates.")
    return aligned, per_year, notes


def _run_values(run: ComparedRun, r: int, aligned: list[AlignedPhase], kpis: list[str],
                per_year: bool) -> dict[str, dict[str, np.ndarray]]:
    """Run ``r``'s per-replication values {reference phase: {kpi: array}} (counts as yearly rates when
    ``per_year``; the cost per interview from the phase's cost)."""
    by_name = {p.name: p for p in run.phases}
    per_run: dict[str, dict[str, np.ndarray]] = {}
    for a in aligned:
        match = a.matches[r]
        if match is None or match not in run.data.replications:
            continue
        window = by_name[match]
        reps = run.data.replications[match]
        cell: dict[str, np.ndarray] = {}
        for kpi in kpis:
            if kpi == COST_KPI:
                continue
            x = np.asarray(reps.get(kpi, []), dtype=float)
            if per_year and kpi in COUNT_KPIS:
                x = x * (365.0 / window.days)
            cell[kpi] = x
        if COST_KPI in kpis:
            served = np.asarray(reps.get("interviews_served", []), dtype=float)
            if match in run.costs:
                with np.errstate(divide="ignore", invalid="ignore"):
                    cost = np.where(served > 0, run.costs[match].total_eur / served, np.nan)
            else:
                cost = np.full(served.shape, np.nan)
            cell[COST_KPI] = cost
        per_run[a.label] = cell
    return per_run


def compare_runs(folders: Sequence[str | Path],
                 amortisation_years: float = DEFAULT_AMORTISATION_YEARS) -> Comparison:
    """Put run folders side by side, the first being the reference.

    Args:
        folders: one or more run folders written by ``twin run`` (one: a single-run report).
        amortisation_years: capex amortisation period for the cost per interview, years.

    Returns:
        A :class:`Comparison` (see the module docstring for alignment, statistics and cost).

    Raises:
        TwinInputError: no folder, or a folder that is missing, incomplete (missing files) or empty.
            Partial (interrupted) runs are compared and flagged in ``notes``.
    """
    if not folders:
        raise TwinInputError("give at least one run folder")
    paths = [Path(f) for f in folders]
    # read everything first so that a bad folder fails before any scenario is loaded
    datas = [read_run(p) for p in paths]
    names = [str(d.manifest.get("scenario_name", d.path.name)) for d in datas]
    labels = _run_labels(paths, names)
    runs = [load_compared_run(d, label, amortisation_years) for d, label in zip(datas, labels)]
    notes: list[str] = []
    for run in runs:
        if run.partial:
            notes.append(f"{run.label} is a partial run ({run.status_text}): compared on the replications "
                         "it finished.")
        if run.scenario_note:
            notes.append(f"{run.label}: {run.scenario_note}; cost per interview and map skipped.")
    aligned, per_year, align_notes = _align(runs)
    notes += align_notes
    kpis = [k for k in runs[0].data.kpis if all(k in r.data.kpis for r in runs)]
    if any(r.costs for r in runs):
        kpis.append(COST_KPI)
    values = [_run_values(run, r, aligned, kpis, per_year) for r, run in enumerate(runs)]
    differences = [KpiDifference(a.label, kpi, r, mean_ci(values[0][a.label][kpi]), mean_ci(values[r][a.label][kpi]),
                                 welch_test(values[0][a.label][kpi], values[r][a.label][kpi]))
                   for r in range(1, len(runs)) for a in aligned
                   if a.label in values[0] and a.label in values[r] for kpi in kpis]
    return Comparison(runs=runs, phases=aligned, per_year=per_year, kpis=kpis, values=values,
                      differences=differences, notes=notes, amortisation_years=amortisation_years)


def comparison_json(comparison: Comparison) -> dict[str, Any]:
    """A JSON-ready summary of a comparison (runs, alignment, differences), NaN written as null."""

    def num(x: float) -> float | None:
        return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)

    return {
        "reference": str(comparison.runs[0].data.path),
        "per_year": comparison.per_year,
        "amortisation_years": comparison.amortisation_years,
        "runs": [{"label": r.label, "folder": str(r.data.path), "scenario_name": r.name,
                  "status": r.data.manifest.get("status"), "partial": r.partial,
                  "replications_done": r.data.manifest.get("replications_done"),
                  "cost_note": r.scenario_note} for r in comparison.runs],
        "phases": [{"phase": a.label, "matches": list(a.matches), "same_window": list(a.same_window)}
                   for a in comparison.phases],
        "notes": list(comparison.notes),
        "differences": [{"phase": d.phase, "kpi": d.kpi, "run": comparison.runs[d.other].label,
                         "reference_mean": num(d.reference_stats.mean), "other_mean": num(d.other_stats.mean),
                         "diff": num(d.test.diff), "ci95_low": num(d.test.ci_low), "ci95_high": num(d.test.ci_high),
                         "p_value": num(d.test.p_value), "significant": d.test.significant,
                         "deterministic": d.test.deterministic} for d in comparison.differences],
    }


__all__ = [
    "ALPHA",
    "COST_KPI",
    "COUNT_KPIS",
    "DEFAULT_AMORTISATION_YEARS",
    "HEADLINE_KPIS",
    "AlignedPhase",
    "ComparedRun",
    "Comparison",
    "KpiDifference",
    "MeanCI",
    "PhaseCost",
    "PhaseWindowDates",
    "WelchResult",
    "align_phases",
    "compare_runs",
    "comparison_json",
    "expected_kiosk_demand_per_year",
    "load_compared_run",
    "mean_ci",
    "parse_phases",
    "phase_costs",
    "scenario_for_run",
    "welch_test",
]
