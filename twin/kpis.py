"""Key performance indicators per rollout phase, from one replication's records, and their summary.

KPI names carry their unit. Undefined values (a waiting time when nothing was served) are NaN and are
left out of the summary's mean (its ``n`` says how many replications defined the KPI).

Summary statistics: the mean over replications and the half-width of the two-sided 95% confidence
interval of the mean from Student's t distribution with n-1 degrees of freedom (independent
replications; Law, "Simulation Modeling and Analysis", 5th ed., section 9.4).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

from twin.model.inputs import ModelInputs
from twin.model.records import ReplicationRecords
from twin.vocabulary import UNMET_REASONS

#: MOS under which an interview counts as poor (ITU-T P.800 scale: 3 = "fair").
POOR_MOS_THRESHOLD = 3.0


def kpi_names(service_ids: Sequence[str]) -> list[str]:
    """All KPI names, in report order, for a scenario with these services."""
    names = ["interviews_served", "interviews_served_per_year"]
    names += [f"unmet_{reason}" for reason in UNMET_REASONS] + ["unmet_total"]
    names += ["wait_mean_min", "wait_p95_min"]
    names += [f"agent_utilisation_{sid}" for sid in service_ids]
    names += ["kiosk_utilisation", "population_within_15km", "population_within_30km",
              "travel_avoided_km", "mos_mean", "share_mos_below_3", "user_kiosks", "expert_kiosks"]
    return names


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
        k["wait_mean_min"] = float(waits.mean()) if n_served else math.nan
        k["wait_p95_min"] = float(np.percentile(waits, 95)) if n_served else math.nan
        for s, sid in enumerate(inputs.service_ids):
            capacity = len(cfg.stations[s]) * cfg.slot_minutes[s]
            k[f"agent_utilisation_{sid}"] = records.agent_busy_min[p, s] / capacity if capacity > 0 else math.nan
        k["kiosk_utilisation"] = (records.kiosk_busy_min[p] / cfg.kiosk_open_minutes
                                  if cfg.kiosk_open_minutes > 0 else math.nan)
        k["population_within_15km"] = cfg.population_within_15km
        k["population_within_30km"] = cfg.population_within_30km
        k["travel_avoided_km"] = float(served["travel_avoided_km"][sel].sum())
        k["mos_mean"] = float(mos.mean()) if n_served else math.nan
        k["share_mos_below_3"] = float((mos < POOR_MOS_THRESHOLD).mean()) if n_served else math.nan
        k["user_kiosks"] = float(len(cfg.installed_user))
        k["expert_kiosks"] = float(len(cfg.installed_expert))
        out[cfg.window.name] = k
    return out


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
    summary: dict[str, dict[str, dict[str, float | int | None]]] = {}
    for phase, kpis in per_replication[0].items():
        summary[phase] = {}
        for name in kpis:
            values = np.array([rep[phase][name] for rep in per_replication], dtype=float)
            values = values[~np.isnan(values)]
            n = int(values.size)
            mean = float(values.mean()) if n else None
            if n >= 2:
                sd = float(values.std(ddof=1))
                half = float(stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n))
            else:
                half = None
            summary[phase][name] = {"mean": mean, "ci95_half_width": half, "n": n}
    return summary
