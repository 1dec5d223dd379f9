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
    "UNMET_REASONS",
    "WEEKDAYS",
]
