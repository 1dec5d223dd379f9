"""Key performance indicators of one replication's records, and their summary over replications.

Per phase (:func:`compute_kpis`), per calendar year (:func:`compute_year_kpis`: the needs arriving in the
year, whatever the phase), per site (:func:`compute_site_kpis`) and per departement
(:func:`departement_kpis`, sums over the departement's user kiosks); :func:`compute_all` gives them
together as a :class:`ReplicationKpis`.

KPI names carry their unit. Undefined values (a waiting time when nothing was served) are NaN and are
left out of the summary's mean (its ``n`` says how many replications defined the KPI).

Summary statistics: the mean over replications and the half-width of the two-sided 95% confidence
interval of the mean from Student's t distribution with n-1 degrees of freedom (independent
replications; Law, "Simulation Modeling and Analysis", 5th ed., section 9.4).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from twin.model.inputs import ModelInputs
from twin.model.records import ReplicationRecords
from twin.vocabulary import DEPARTEMENT_KPIS, NO_KIOSK, SITE_KPIS, UNMET_REASONS, kpi_names

#: MOS under which an interview counts as poor (ITU-T P.800 scale: 3 = "fair").
POOR_MOS_THRESHOLD = 3.0


def compute_kpis(inputs: ModelInputs, records: ReplicationRecords) -> dict[str, dict[str, float]]:
    """KPIs of one replication: {phase name: {kpi name: value}} (values are floats, NaN if undefined)."""
    out: dict[str, dict[str, float]] = {}
    served = records.served
    for cfg in inputs.phases:
        p = cfg.window.index
        sel = served["phase"] == p
        waits = served["wait_min"][sel]
        mos = served["mos"][sel]
        n_served = int(sel.sum())
        years = cfg.window.duration_days / 365.0
        k: dict[str, float] = {
            "interviews_served": float(n_served),
            "interviews_served_per_year": n_served / years if years > 0 else math.nan,
        }
        total = 0
        for reason in UNMET_REASONS:
            count = sum(v for (ph, _svc, r), v in records.unmet.items() if ph == p and r == reason)
            k[f"unmet_{reason}"] = float(count)
            total += count
        k["unmet_total"] = float(total)
        arrived = sum(v for (ph, *_rest), v in records.arrived.items() if ph == p)
        simulated_unmet = k["unmet_gave_up"] + k["unmet_line_down"]
        k["pending_at_end"] = float(arrived - n_served - simulated_unmet)
        k["needs_arrived"] = float(n_served + total + k["pending_at_end"])
        k["interviews_cut_by_outage"] = float(records.cut_by_outage[p]) if records.cut_by_outage is not None else 0.0
        k["wait_mean_min"] = float(waits.mean()) if n_served else math.nan
        k["wait_p95_min"] = float(np.percentile(waits, 95)) if n_served else math.nan
        for s, sid in enumerate(inputs.service_ids):
            capacity = len(cfg.stations[s]) * cfg.slot_minutes[s]
            k[f"agent_utilisation_{sid}"] = records.agent_busy_min[p, s] / capacity if capacity > 0 else math.nan
        for s, sid in enumerate(inputs.service_ids):
            k[f"offered_load_{sid}"] = cfg.offered_erlangs[s] if cfg.offered_erlangs else math.nan
        for s, sid in enumerate(inputs.service_ids):
            k[f"unstable_{sid}"] = float(cfg.unstable(s)) if cfg.offered_erlangs else math.nan
        k["kiosk_utilisation"] = (float(records.kiosk_busy_min[p].sum()) / cfg.kiosk_open_minutes
                                  if cfg.kiosk_open_minutes > 0 else math.nan)
        k["population_within_15km"] = cfg.population_within_15km
        k["population_within_30km"] = cfg.population_within_30km
        k["travel_avoided_km"] = float(served["travel_avoided_km"][sel].sum())
        k["mos_mean"] = float(mos.mean()) if n_served else math.nan
        k["share_mos_below_3"] = float((mos < POOR_MOS_THRESHOLD).mean()) if n_served else math.nan
        k.update(_quality_kpis(served, sel, n_served))
        k["user_kiosks"] = float(len(cfg.installed_user))
        k["expert_kiosks"] = float(len(cfg.installed_expert))
        out[cfg.window.name] = k
    return out


def _quality_kpis(served: dict[str, np.ndarray], sel: np.ndarray, n: int) -> dict[str, float]:
    """Mean speech and video MOS of the interviews selected, and the share usable (the mean of each
    interview's usable share: the expected share of usable interviews)."""
    if not n:
        return {"speech_mos_mean": math.nan, "video_mos_mean": math.nan, "share_usable": math.nan}
    return {"speech_mos_mean": float(served["speech_mos"][sel].mean()),
            "video_mos_mean": float(served["video_mos"][sel].mean()),
            "share_usable": float(served["usable"][sel].mean())}


def _unmet_by(records: ReplicationRecords, key_of) -> dict:
    """Unmet counts summed by ``key_of(phase, year, site, service, reason)``."""
    out: dict = {}
    for (phase, year, site, service, reason), n in records.unmet_counts.items():
        key = key_of(phase, year, site, service, reason)
        out[key] = out.get(key, 0) + n
    return out


def compute_year_kpis(inputs: ModelInputs, records: ReplicationRecords) -> dict[int, dict[str, float]]:
    """KPIs per calendar year (:data:`twin.vocabulary.YEAR_KPIS`): needs arriving in the year, over the
    simulated days of the year after the warm-up (``days_simulated``). {year: {kpi: value}}."""
    served = records.served
    unmet = _unmet_by(records, lambda phase, year, site, service, reason: (year, reason))
    start, end = inputs.phases[0].window.start_date, inputs.phases[-1].window.end_date
    out: dict[int, dict[str, float]] = {}
    for year in range(start.year, (end - dt.timedelta(days=1)).year + 1):
        first, last = max(start, dt.date(year, 1, 1)), min(end, dt.date(year + 1, 1, 1))
        sel = served["year"] == year
        n = int(sel.sum())
        k: dict[str, float] = {"interviews_served": float(n)}
        for reason in UNMET_REASONS:
            k[f"unmet_{reason}"] = float(unmet.get((year, reason), 0))
        k["unmet_total"] = float(sum(k[f"unmet_{r}"] for r in UNMET_REASONS))
        k["travel_avoided_km"] = float(served["travel_avoided_km"][sel].sum())
        k["wait_mean_min"] = float(served["wait_min"][sel].mean()) if n else math.nan
        mos = served["mos"][sel]
        k["mos_mean"] = float(mos.mean()) if n else math.nan
        k["share_mos_below_3"] = float((mos < POOR_MOS_THRESHOLD).mean()) if n else math.nan
        k.update(_quality_kpis(served, sel, n))
        k["days_simulated"] = float((last - first).days)
        out[year] = k
    return out


def compute_site_kpis(inputs: ModelInputs, records: ReplicationRecords) -> dict[str, dict[int, dict[str, float]]]:
    """KPIs per phase and site (:data:`twin.vocabulary.SITE_KPIS`), for the sites installed in the phase
    plus site -1 (needs too far from any kiosk, when no kiosk is installed). User kiosks count the needs
    of their citizens; expert kiosks the interviews their agents answered (``interviews_served``) and
    their agents' utilisation. {phase: {site index: {kpi: value}}}. Per-site sums are accumulated with
    ``numpy.bincount`` (one pass over the interviews, whatever the number of sites)."""
    served = records.served
    unmet = _unmet_by(records, lambda phase, year, site, service, reason: (phase, site, reason))
    n_sites = len(inputs.site_ids)
    out: dict[str, dict[int, dict[str, float]]] = {}
    for cfg in inputs.phases:
        p = cfg.window.index
        in_phase = served["phase"] == p
        by_user = _sums_by(served, in_phase, "site", n_sites)
        by_station = _sums_by(served, in_phase, "station_site", n_sites)
        sites: dict[int, dict[str, float]] = {}
        owners = list(cfg.installed_user) + ([-1] if any(k[0] == -1 for k in cfg.unmet_rate_per_year) else [])
        for site in owners:
            k = _site_counts(by_user, site)
            for reason in UNMET_REASONS:
                k[f"unmet_{reason}"] = float(unmet.get((p, site, reason), 0))
            k["unmet_total"] = float(sum(k[f"unmet_{r}"] for r in UNMET_REASONS))
            opening = cfg.site_open_minutes.get(site, 0.0)
            k["utilisation"] = float(records.kiosk_busy_min[p, site]) / opening if site >= 0 and opening > 0 else math.nan
            sites[site] = k
        for site in cfg.installed_expert:
            k = _site_counts(by_station, site)
            k.update({f"unmet_{r}": 0.0 for r in UNMET_REASONS}, unmet_total=0.0)
            opening = cfg.site_open_minutes.get(site, 0.0)
            k["utilisation"] = float(records.station_busy_min[p, site]) / opening if opening > 0 else math.nan
            sites[site] = k
        out[cfg.window.name] = dict(sorted(sites.items()))  # canonical order: by site index, -1 first
    return out


def _sums_by(served: Mapping[str, np.ndarray], sel: np.ndarray, column: str, n_sites: int) -> tuple[np.ndarray, ...]:
    """Interviews, travel avoided and total wait per site (``column``: the user kiosk or the station)."""
    idx = served[column][sel]
    idx = np.where(idx >= 0, idx, n_sites)  # -1 (a videoconference room) to a bin of its own
    return (np.bincount(idx, minlength=n_sites + 1),
            np.bincount(idx, weights=served["travel_avoided_km"][sel], minlength=n_sites + 1),
            np.bincount(idx, weights=served["wait_min"][sel], minlength=n_sites + 1))


def _site_counts(sums: tuple[np.ndarray, ...], site: int) -> dict[str, float]:
    if site < 0:
        return {"interviews_served": 0.0, "travel_avoided_km": 0.0, "wait_mean_min": math.nan}
    n, travel, wait = int(sums[0][site]), float(sums[1][site]), float(sums[2][site])
    return {"interviews_served": float(n), "travel_avoided_km": travel, "wait_mean_min": wait / n if n else math.nan}


def departement_kpis(inputs: ModelInputs, sites: Mapping[str, Mapping[int, Mapping[str, float]]],
                     ) -> dict[str, dict[str, dict[str, float]]]:
    """KPIs per phase and departement (:data:`twin.vocabulary.DEPARTEMENT_KPIS`): sums over the
    departement's user kiosks (where the kiosk stands); needs too far from any kiosk when none is
    installed go under ``none``. {phase: {departement code: {kpi: value}}}."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for phase, by_site in sites.items():
        deps: dict[str, dict[str, float]] = {}
        for site, k in by_site.items():
            if site >= 0 and inputs.site_kind[site] != "user":
                continue
            code = inputs.site_departement[site] if site >= 0 else "none"
            cell = deps.setdefault(code, dict.fromkeys(DEPARTEMENT_KPIS, 0.0))
            for kpi in DEPARTEMENT_KPIS:
                cell[kpi] += k[kpi]
        out[phase] = dict(sorted(deps.items()))
    return out


@dataclass(frozen=True)
class ReplicationKpis:
    """All KPIs of one replication.

    Attributes:
        phases: {phase: {kpi: value}} (:func:`compute_kpis`).
        years: {year: {kpi: value}} (:func:`compute_year_kpis`).
        sites: {phase: {site index: {kpi: value}}} (:func:`compute_site_kpis`).
        departements: {phase: {departement: {kpi: value}}} (:func:`departement_kpis`).
    """

    phases: dict[str, dict[str, float]]
    years: dict[int, dict[str, float]]
    sites: dict[str, dict[int, dict[str, float]]]
    departements: dict[str, dict[str, dict[str, float]]]


def compute_all(inputs: ModelInputs, records: ReplicationRecords) -> ReplicationKpis:
    """Every KPI of one replication (see :class:`ReplicationKpis`)."""
    sites = compute_site_kpis(inputs, records)
    return ReplicationKpis(phases=compute_kpis(inputs, records), years=compute_year_kpis(inputs, records),
                           sites=sites, departements=departement_kpis(inputs, sites))


def mean_ci95(values: Sequence[float]) -> dict[str, float | int | None]:
    """Mean, half-width of the Student-t 95% CI of the mean and n of the defined (non-NaN) values."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = int(x.size)
    mean = float(x.mean()) if n else None
    half = float(stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / math.sqrt(n)) if n >= 2 else None
    return {"mean": mean, "ci95_half_width": half, "n": n}


def summarize(per_replication: Sequence[Mapping[str, Mapping[str, float]]]) -> dict[str, dict[str, dict[str, float | int | None]]]:
    """Mean, 95% CI half-width and n per phase and KPI over replications.

    Args:
        per_replication: one :func:`compute_kpis` result per replication, in replication order.

    Returns:
        {phase: {kpi: {"mean": float|None, "ci95_half_width": float|None, "n": int}}}; None where no
        replication defined the KPI (or, for the half-width, fewer than two did).
    """
    if not per_replication:
        return {}
    return {phase: {name: mean_ci95([rep[phase][name] for rep in per_replication]) for name in kpis}
            for phase, kpis in per_replication[0].items()}


def summarize_years(per_replication: Sequence[Mapping[int, Mapping[str, float]]]) -> dict[str, dict[str, dict]]:
    """Mean, 95% CI half-width and n per calendar year (keyed by the year as text) and KPI."""
    if not per_replication:
        return {}
    return {str(year): {kpi: mean_ci95([rep[year][kpi] for rep in per_replication]) for kpi in kpis}
            for year, kpis in per_replication[0].items()}


def summarize_full_years(per_replication: Sequence[Mapping[int, Mapping[str, float]]],
                         kpis: Sequence[str] = ("interviews_served", "unmet_total", "travel_avoided_km"),
                         ) -> dict[str, object]:
    """Totals over the fully simulated calendar years (365 or 366 days after the warm-up): the years
    and, per KPI, the mean, 95% CI half-width and n of the per-replication sums."""
    if not per_replication:
        return {}
    first = per_replication[0]
    years = [y for y, k in first.items() if k["days_simulated"] >= 365]
    out: dict[str, object] = {"years": years}
    for kpi in kpis:
        out[kpi] = mean_ci95([sum(rep[y][kpi] for y in years) for rep in per_replication])
    return out


def summarize_departements(per_replication: Sequence[Mapping[str, Mapping[str, Mapping[str, float]]]],
                           ) -> dict[str, dict[str, dict[str, dict]]]:
    """Mean, 95% CI half-width and n per phase, departement and KPI (a departement absent from a
    replication counts 0)."""
    if not per_replication:
        return {}
    out: dict[str, dict[str, dict[str, dict]]] = {}
    for phase in per_replication[0]:
        codes = sorted({code for rep in per_replication for code in rep.get(phase, {})})
        out[phase] = {code: {kpi: mean_ci95([rep.get(phase, {}).get(code, {}).get(kpi, 0.0) for rep in per_replication])
                             for kpi in DEPARTEMENT_KPIS} for code in codes}
    return out


def summarize_sites(inputs: ModelInputs, per_replication: Sequence[Mapping[str, Mapping[int, Mapping[str, float]]]],
                    ) -> list[dict[str, object]]:
    """Rows of ``sites.csv``: per phase and site, its description and each of
    :data:`twin.vocabulary.SITE_KPIS` as ``<kpi>_mean`` / ``<kpi>_ci95`` over replications."""
    rows: list[dict[str, object]] = []
    if not per_replication:
        return rows
    for cfg in inputs.phases:
        phase = cfg.window.name
        for site in per_replication[0].get(phase, {}):
            row: dict[str, object] = {
                "phase": phase,
                "site_id": inputs.site_ids[site] if site >= 0 else NO_KIOSK,
                "kind": inputs.site_kind[site] if site >= 0 else "",
                "commune": inputs.site_commune[site] if site >= 0 else "",
                "departement_code": inputs.site_departement[site] if site >= 0 else "",
                "generation": cfg.generation[site] if site >= 0 and inputs.site_kind[site] == "user" else "",
            }
            for kpi in SITE_KPIS:
                cell = mean_ci95([rep[phase][site][kpi] for rep in per_replication])
                row[f"{kpi}_mean"], row[f"{kpi}_ci95"] = cell["mean"], cell["ci95_half_width"]
            row["n"] = len(per_replication)
            rows.append(row)
    return rows


@dataclass(frozen=True)
class HindcastRow:
    """One observation of the real system beside the twin's prediction.

    Attributes:
        what: the phase name or the year, and the departement when given (``2007``, ``2008/43``).
        kpi: the KPI observed.
        observed: the observed value; ``relation`` what the figure says (equals, at_least, about).
        predicted, ci95_half_width, n: the twin's mean over replications and its 95% CI half-width.
        ratio: predicted / observed (None when observed is 0 or nothing was predicted).
        in_ci: the observation lies within the prediction's 95% CI (for ``at_least``: the CI reaches
            it or beyond).
        source: where the figure comes from.
    """

    what: str
    kpi: str
    observed: float
    relation: str
    predicted: float | None
    ci95_half_width: float | None
    n: int
    ratio: float | None
    in_ci: bool | None
    source: str


def hindcast(observations, summary: Mapping[str, Mapping[str, Mapping]], by_year: Mapping[str, Mapping],
             by_departement: Mapping[str, Mapping[str, Mapping]]) -> list[HindcastRow]:
    """Each observation (:class:`twin.scenario.spec.Observation`) beside the prediction of the summary
    cell it names: per phase, per year (``by_year`` keyed by the year as text) or per departement."""
    rows = []
    for obs in observations:
        if obs.departement is not None:
            cell, what = by_departement.get(obs.phase, {}).get(obs.departement, {}).get(obs.kpi), \
                f"{obs.phase}/{obs.departement}"
        elif obs.phase is not None:
            cell, what = summary.get(obs.phase, {}).get(obs.kpi), obs.phase
        else:
            cell, what = by_year.get(str(obs.year), {}).get(obs.kpi), str(obs.year)
        mean = cell.get("mean") if cell else None
        half = cell.get("ci95_half_width") if cell else None
        ratio = mean / obs.value if mean is not None and obs.value > 0 else None
        in_ci = None
        if mean is not None:
            h = half or 0.0
            in_ci = mean + h >= obs.value if obs.relation == "at_least" else mean - h <= obs.value <= mean + h
        rows.append(HindcastRow(what, obs.kpi, obs.value, obs.relation, mean, half, int(cell.get("n", 0)) if cell else 0,
                                ratio, in_ci, obs.source))
    return rows


__all__ = ["POOR_MOS_THRESHOLD", "HindcastRow", "ReplicationKpis", "compute_all", "compute_kpis", "compute_site_kpis",
           "compute_year_kpis", "departement_kpis", "hindcast", "kpi_names", "mean_ci95", "summarize", "summarize_departements",
           "summarize_full_years", "summarize_sites", "summarize_years"]
