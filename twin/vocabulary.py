"""Shared vocabulary: the names, limits and dates every part of twin agrees on, defined once.

Pure constants (no imports beyond the standard library). Everything that used to be repeated in the
model, the runner, the emulator and the planners lives here: clocks, limits of a run and of a call,
the dates a scenario may use, the line families, the default road circuity, the reasons of unmet
demand and the generation-1 service limit.
"""

from __future__ import annotations

import datetime as dt

# --------------------------------------------------------------------------------------------------
# Time

MIN_PER_DAY = 24 * 60
"""Minutes in a day (the SimPy model's clock counts minutes)."""

DAYS_PER_YEAR = 365.0
"""Days in a model year (yearly rates are spread over 365 days; leap days are not special)."""

DAYS_PER_MONTH = 365.25 / 12
"""Days per month used to turn monthly prices into a phase's cost."""

EARLIEST_DATE = dt.date(1950, 1, 1)
"""Earliest date a scenario or a plan may use."""

LATEST_DATE = dt.date(2100, 12, 31)
"""Latest date a scenario or a plan may use: a century is the most a planning horizon needs."""

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Day names of weekly time windows, Monday first (``datetime.date.weekday()`` order)."""

# --------------------------------------------------------------------------------------------------
# Runs

MAX_REPLICATIONS = 10_000
"""Most replications a run accepts (the scenario's ``simulation.replications`` and ``--replications``)."""

MAX_HORIZON_YEARS = 60
"""Longest simulated horizon, years (warm-up included)."""

UNMET_REASONS = ("gen1_limit", "no_agent", "line_down", "too_far", "gave_up")
"""Reasons of unmet kiosk demand, in report order: a generation-1 kiosk not configured for the service,
no agent station reachable, a line down, the kiosk too far, the citizen gave up waiting."""

GEN1_SERVICE_LIMIT = 6
"""Generation-1 user kiosks reach at most this many services (seed article, Localtis 2008)."""

# --------------------------------------------------------------------------------------------------
# KPIs

#: KPIs that count events (summed over sites, departements, the phases of a year).
COUNT_KPIS = ("interviews_served", *(f"unmet_{r}" for r in UNMET_REASONS), "unmet_total", "travel_avoided_km")


def kpi_names(service_ids: tuple[str, ...] | list[str]) -> list[str]:
    """All KPI names of a phase, in report order, for a scenario with these services.

    Accounting: ``interviews_served + unmet_total + pending_at_end = needs_arrived`` (needs arising in the
    phase; pending: still waiting or in interview at the end of the simulation).
    ``offered_load_<service>``: erlangs offered to the service's agents, averaged over its slot hours;
    ``unstable_<service>`` is 1 when that load reaches the number of stations (Erlang: the queue grows
    without bound; waiting times then depend on the horizon, not on the network).
    """
    names = ["interviews_served", "interviews_served_per_year"]
    names += [f"unmet_{reason}" for reason in UNMET_REASONS] + ["unmet_total"]
    names += ["pending_at_end", "needs_arrived", "interviews_cut_by_outage"]
    names += ["wait_mean_min", "wait_p95_min"]
    names += [f"agent_utilisation_{sid}" for sid in service_ids]
    names += [f"offered_load_{sid}" for sid in service_ids]
    names += [f"unstable_{sid}" for sid in service_ids]
    names += ["kiosk_utilisation", "population_within_15km", "population_within_30km",
              "travel_avoided_km", "mos_mean", "share_mos_below_3", "speech_mos_mean", "video_mos_mean",
              "share_usable", "user_kiosks", "expert_kiosks"]
    return names


#: KPIs of a calendar year (from the records of the interviews and needs arriving in that year).
YEAR_KPIS = (*COUNT_KPIS, "wait_mean_min", "mos_mean", "share_mos_below_3", "speech_mos_mean", "video_mos_mean",
             "share_usable", "days_simulated")

#: KPIs of a site in a phase (``sites.csv``): user kiosks count their citizens' needs; expert kiosks the
#: interviews their agents answered. Summed over user kiosks (and the ``no kiosk`` row), the counts give
#: the region's.
SITE_KPIS = (*COUNT_KPIS, "utilisation", "wait_mean_min")

#: Site id standing for "no kiosk" in per-site results (needs too far from any kiosk when none is installed).
NO_KIOSK = "(no kiosk)"

#: KPIs of a departement in a phase (``summary.json`` ``by_departement``): sums over its user kiosks.
DEPARTEMENT_KPIS = ("interviews_served", "unmet_total", "travel_avoided_km")

# --------------------------------------------------------------------------------------------------
# Region

DEFAULT_CIRCUITY_FACTOR = 1.3
"""Road distance / great-circle distance. ASSUMPTION in the usual range of measured detour indices of
rural road networks, 1.2-1.4 (Ballou, Rahardja & Sakai, "Selected country circuity factors for road
travel distance estimation", Transportation Research A 36 (2002) 843-848)."""

# --------------------------------------------------------------------------------------------------
# Lines

LINE_FAMILIES = ("adsl", "readsl", "adsl2plus")
"""Values of :class:`twin.line.LineFamily`, for option choices."""

# --------------------------------------------------------------------------------------------------
# Emulated calls

CLOCKS = ("real", "virtual")
"""Clocks an emulated call runs on: the wall clock with real sockets, or virtual time
(:mod:`emulators.virtual_time`)."""

MAX_CALL_S = 4 * 3600.0
"""Longest emulated call, seconds: an interview lasts minutes, not days."""

__all__ = [
    "CLOCKS",
    "COUNT_KPIS",
    "DEPARTEMENT_KPIS",
    "SITE_KPIS",
    "YEAR_KPIS",
    "kpi_names",
    "DAYS_PER_MONTH",
    "DAYS_PER_YEAR",
    "DEFAULT_CIRCUITY_FACTOR",
    "EARLIEST_DATE",
    "GEN1_SERVICE_LIMIT",
    "LATEST_DATE",
    "LINE_FAMILIES",
    "MAX_CALL_S",
    "MAX_HORIZON_YEARS",
    "MAX_REPLICATIONS",
    "MIN_PER_DAY",
    "NO_KIOSK",
    "UNMET_REASONS",
    "WEEKDAYS",
]
