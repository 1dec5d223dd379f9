"""The scenario specification: typed, documented, validated pydantic models. No I/O.

A scenario describes a region (communes with population and coordinates), the kiosk sites (user kiosks
in town halls, expert kiosks in service offices) with their generation, opening hours and ADSL line, the
public services (agents, slots, interview durations, yearly need per inhabitant), the citizens' choice
of a kiosk, the quality model, and dated rollout phases that add, upgrade or remove sites.

Everything is validated before the first simulated event (the approach of Ciw's ``import_params``): the
models check fields and cross-references; :mod:`twin.scenario.loading` reads YAML and data files, resolves
places and turns errors into messages naming the file, field path, value and line.

Units live in field names (``_km``, ``_min``, ``_m``, ``_h``, ``_eur``, ``_per_year``) or, where a
name cannot carry one, in the field description. ``twin schema`` prints the JSON Schema.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from twin.errors import LineError
from twin.line import (
    DEFAULT_BACKHAUL_BUFFER_BYTES,
    DEFAULT_BACKHAUL_MTBF_H,
    DEFAULT_BACKHAUL_MTTR_H,
    AdslLine,
    Backhaul,
    get_offer,
)
from twin.quality import CalibrationTable
from twin.vocabulary import (
    DEFAULT_CIRCUITY_FACTOR,
    DEPARTEMENT_KPIS,
    EARLIEST_DATE,
    GEN1_SERVICE_LIMIT,
    LATEST_DATE,
    MAX_HORIZON_YEARS,
    MAX_REPLICATIONS,
    WEEKDAYS,
    YEAR_KPIS,
    kpi_names,
)

#: Longest interview duration accepted, minutes (one week: beyond it a duration is a typo).
MAX_DURATION_MIN = 7 * 24 * 60.0

# Upper bounds that keep a run within one machine (memory and time); docs/inputs.md gives the table,
# with the shipped scenarios' values beside each bound.
#: Most services, sites, phases in a scenario.
MAX_SERVICES, MAX_SITES, MAX_PHASES = 100, 10_000, 200
#: Most offices of a service, departements it serves, weekly time windows in a list.
MAX_OFFICES, MAX_DEPARTEMENTS, MAX_TIME_WINDOWS = 500, 200, 50
#: Most agents of a service, standard VC rooms of a service, booths or stations at a site.
MAX_AGENTS, MAX_VC_ROOMS, MAX_KIOSKS_PER_SITE = 10_000, 1_000, 1_000
#: Longest text (names, descriptions, sources), characters.
MAX_TEXT_CHARS = 100_000
#: Most exchanges (each with its backhaul) in a scenario; largest backhaul rate, kbit/s (10 Gbit/s).
MAX_EXCHANGES, MAX_BACKHAUL_RATE_KBPS = 10_000, 10_000_000.0
#: Longest delay a backhaul adds, ms; largest buffer in front of it, bytes.
MAX_BACKHAUL_DELAY_MS, MAX_BACKHAUL_BUFFER_BYTES = 10_000.0, 100_000_000
#: Largest root seed (an unsigned 63-bit integer: stored as such in every output).
MAX_SEED = 2**63 - 1
#: Largest demand multiplier a driver may give in a year, largest cost, EUR, longest distance, km.
MAX_DRIVER_MULTIPLIER, MAX_EUR, MAX_DISTANCE_KM = 100.0, 1.0e9, 1_000.0
#: Most kiosk needs a year the scenario may generate (an upper estimate: population x uptake x needs per
#: inhabitant x drivers; each becomes an arrival held in memory for its calendar year; Auvergne: 55,000).
MAX_KIOSK_NEEDS_PER_YEAR = 3_000_000
#: Most line outages a replication may draw (every line over the horizon: horizon / (MTBF + MTTR)).
MAX_LINE_OUTAGES = 1_000_000
_TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True, allow_inf_nan=False,
                              str_max_length=MAX_TEXT_CHARS)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_as_number(cls, value: Any, info: Any) -> Any:
        """YAML's yes/no/true/false are booleans, never numbers (pydantic would read true as 1)."""
        if isinstance(value, bool):
            annotation = cls.model_fields[info.field_name].annotation
            if annotation is not bool and "bool" not in str(annotation):
                raise ValueError(f"expected a number or text, got the boolean {value!r}")
        return value


# --------------------------------------------------------------------------------------------------
# Time windows


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


class TimeWindow(_Strict):
    """A weekly time window, e.g. Tuesday and Thursday 09:00-12:00."""

    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(min_length=1)
    """Days of the week the window applies to."""
    start: str
    """Opening time, local time, "HH:MM"."""
    end: str
    """Closing time, local time, "HH:MM" (24:00 allowed), after start."""

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _TIME_RE.match(value):
            raise ValueError(f"time must be 'HH:MM' between 00:00 and 24:00, got {value!r}")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> TimeWindow:
        if _minutes(self.end) <= _minutes(self.start):
            raise ValueError(f"end {self.end} must be after start {self.start}")
        return self

    def intervals_min(self) -> list[tuple[int, int, int]]:
        """(weekday 0=Monday, start minute of day, end minute of day) for each day."""
        return [(WEEKDAYS.index(d), _minutes(self.start), _minutes(self.end)) for d in self.days]


def weekly_intervals_min(windows: list[TimeWindow]) -> list[tuple[int, int, int]]:
    """Union of weekly windows as sorted, merged (weekday, start_min, end_min) intervals."""
    by_day: dict[int, list[tuple[int, int]]] = {}
    for window in windows:
        for day, start, end in window.intervals_min():
            by_day.setdefault(day, []).append((start, end))
    merged: list[tuple[int, int, int]] = []
    for day in sorted(by_day):
        spans = sorted(by_day[day])
        cur_start, cur_end = spans[0]
        for start, end in spans[1:]:
            if start <= cur_end:
                cur_end = max(cur_end, end)
            else:
                merged.append((day, cur_start, cur_end))
                cur_start, cur_end = start, end
        merged.append((day, cur_start, cur_end))
    return merged


def intersect_weekly(a: list[tuple[int, int, int]], b: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Intersection of two merged weekly interval lists (see :func:`weekly_intervals_min`)."""
    out = []
    for day_a, start_a, end_a in a:
        for day_b, start_b, end_b in b:
            if day_a == day_b:
                start, end = max(start_a, start_b), min(end_a, end_b)
                if end > start:
                    out.append((day_a, start, end))
    return sorted(out)


# --------------------------------------------------------------------------------------------------
# Building blocks


class RegionSpec(_Strict):
    """The region: its demand points (communes) and how distances are measured."""

    communes_file: str
    """CSV of communes, relative to the scenario file. Columns: commune_id, name, departement_code,
    departement, lat, lon, population (see scenarios/data/README.md)."""
    circuity_factor: float = Field(default=DEFAULT_CIRCUITY_FACTOR, ge=1.0, le=3.0)
    """Road distance / great-circle distance (dimensionless). Default 1.3 is a common rural value
    (ASSUMPTION; twin.vocabulary.DEFAULT_CIRCUITY_FACTOR gives the source)."""


class LineSpec(_Strict):
    """The ADSL line of a site: a named offer (twin.line.OFFERS) and the loop length to the exchange."""

    offer: str = "adsl-512-128"
    """Name of a line offer in twin.line.OFFERS, e.g. adsl-512-128, readsl-512-128, adsl-2048-256."""
    loop_length_m: float = Field(default=2500.0, ge=0.0, le=12000.0)
    """Copper loop length from the site to the exchange, metres."""
    loss_pct: float = Field(default=0.0, ge=0.0, le=100.0)
    """Random packet loss on the line, percent."""
    mtbf_h: float = Field(default=2000.0, gt=0.0)
    """Mean time between line failures, hours (all lines together draw at most MAX_LINE_OUTAGES
    outages per replication)."""
    mttr_h: float = Field(default=8.0, ge=0.0, le=8760.0)
    """Mean time to repair a failed line, hours (at most a year)."""


class BackhaulSpec(_Strict):
    """An exchange's backhaul (:class:`twin.line.Backhaul`): the link from the exchange to the network that
    every call of the user kiosks behind the exchange crosses after the kiosk's own line, at once (the
    shared-link rule, :meth:`twin.line.Link.shared_by`)."""

    rate_up_kbps: float = Field(ge=1.0, le=MAX_BACKHAUL_RATE_KBPS)
    """Rate towards the network (the kiosks' uplink), kbit/s of ATM wire (1 to 10,000,000), e.g. 2048 for
    one E1."""
    rate_down_kbps: float = Field(ge=1.0, le=MAX_BACKHAUL_RATE_KBPS)
    """Rate towards the exchange (the kiosks' downlink), kbit/s of ATM wire (1 to 10,000,000)."""
    delay_ms: float = Field(default=0.0, ge=0.0, le=MAX_BACKHAUL_DELAY_MS)
    """One-way delay the backhaul adds, ms (at most 10,000): its propagation is already in each line's
    own delay, so 0 by default."""
    buffer_bytes: int = Field(default=DEFAULT_BACKHAUL_BUFFER_BYTES, ge=1, le=MAX_BACKHAUL_BUFFER_BYTES)
    """Buffer in front of the backhaul, each direction, bytes of ATM wire (at most 100,000,000; default
    64,000, an ASSUMPTION)."""
    loss_pct: float = Field(default=0.0, ge=0.0, le=100.0)
    """Random packet loss on the backhaul, percent."""
    mtbf_h: float = Field(default=DEFAULT_BACKHAUL_MTBF_H, gt=0.0)
    """Mean time between backhaul failures, hours (default a year, an ASSUMPTION); a failure cuts every
    call behind the exchange."""
    mttr_h: float = Field(default=DEFAULT_BACKHAUL_MTTR_H, ge=0.0, le=8760.0)
    """Mean time to repair the backhaul, hours (at most a year; default 4, an ASSUMPTION)."""


class ExchangeSpec(_Strict):
    """A telephone exchange (central office) whose backhaul the user kiosks behind it share
    (``sites[].exchange``)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    """Identifier used by ``sites[].exchange``."""
    name: str = ""
    """Human-readable name (e.g. the exchange's town)."""
    backhaul: BackhaulSpec
    """The exchange's backhaul."""


class DurationSpec(_Strict):
    """Interview duration distribution, minutes."""

    distribution: Literal["exponential", "lognormal", "fixed"] = "lognormal"
    """exponential (mean), lognormal (mean and sd), fixed (mean)."""
    mean_min: float = Field(ge=0.01, le=MAX_DURATION_MIN)
    """Mean interview duration, minutes."""
    sd_min: float = Field(default=0.0, ge=0.0, le=MAX_DURATION_MIN)
    """Standard deviation, minutes (lognormal only)."""

    @model_validator(mode="after")
    def _sd(self) -> DurationSpec:
        if self.distribution == "lognormal" and self.sd_min <= 0:
            raise ValueError("a lognormal duration needs sd_min > 0")
        if self.distribution != "lognormal" and self.sd_min != 0:
            raise ValueError(f"sd_min applies to lognormal durations only, not {self.distribution}")
        return self


class Place(_Strict):
    """A location: a commune of the region (by id or unique name) or explicit coordinates."""

    commune: str | None = None
    """commune_id (e.g. gn2988507) or a commune name that is unique in the communes file."""
    lat: float | None = Field(default=None, ge=-90, le=90)
    """Latitude, decimal degrees (WGS84), when no commune is given."""
    lon: float | None = Field(default=None, ge=-180, le=180)
    """Longitude, decimal degrees (WGS84), when no commune is given."""

    @model_validator(mode="after")
    def _one_of(self) -> Place:
        if self.commune is None and (self.lat is None or self.lon is None):
            raise ValueError("give either commune or both lat and lon")
        if self.commune is not None and (self.lat is not None or self.lon is not None):
            raise ValueError("give either commune or lat/lon, not both")
        return self


class OfficeSpec(Place):
    """A physical office of a service: where it is and, optionally, its own line."""

    line: LineSpec | None = None
    """The office's line, shared by every expert kiosk of the service at this office (same place): all
    their calls cross it at once (the shared-link rule, :meth:`twin.line.AdslLine.shared_by`). Those
    expert kiosks must then not set a line of their own. Default: each expert kiosk has its own line."""


class ServiceSpec(_Strict):
    """A public service reachable by video (employment office, family allowances...)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    """Identifier used by sites and phases."""
    name: str
    """Human-readable name."""
    offices: list[OfficeSpec] = Field(min_length=1, max_length=MAX_OFFICES)
    """The service's physical offices (at most 500); citizens who do not use a kiosk travel to the nearest one
    (used for the travel avoided by each interview)."""
    departements: list[str] | None = Field(default=None, max_length=MAX_DEPARTEMENTS)
    """Departement codes (e.g. ["03"]) whose inhabitants the service serves (at most 200); default: the
    whole region."""
    need_per_capita_per_year: float = Field(ge=0.0, le=5.0)
    """Yearly face-to-face interviews needed per inhabitant (before the kiosk uptake factor)."""
    booking: Literal["appointment", "walk-in"] = "walk-in"
    """appointment: citizens book and come at a slot, never abandon; walk-in: they come during the
    service's slots and give up after demand.patience_min of waiting."""
    agents: int = Field(ge=0, le=MAX_AGENTS)
    """Agents on duty during the slots (each needs an expert kiosk or a standard VC room; at most
    10,000)."""
    slots: list[TimeWindow] = Field(min_length=1, max_length=MAX_TIME_WINDOWS)
    """Weekly slots during which agents answer video calls ("permanences"; at most 50 windows)."""
    interview_duration: DurationSpec
    """Duration of one interview."""
    standard_vc_rooms: int = Field(default=0, ge=0, le=MAX_VC_ROOMS)
    """Standard videoconference rooms the service already owns (at most 1,000); reachable by
    generation-2 kiosks only, without an expert kiosk (seed article, 2008)."""
    office_line: LineSpec = LineSpec(offer="adsl-2048-256", loop_length_m=1500.0)
    """The line each of the service's standard VC rooms sits behind, one call on it (the rooms are not
    placed at offices; agents sharing one line are expert kiosks at an office with ``offices[].line``)."""


class SiteSpec(_Strict):
    """A kiosk site: a user kiosk in a town hall, or an expert kiosk in a service office."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    """Identifier used by phases."""
    kind: Literal["user", "expert"]
    """user: citizens' kiosk; expert: agent station of one service."""
    place: Place
    """Where the site is."""
    generation: Literal[1, 2] = 1
    """Kiosk generation (1: at most 6 services; 2: any service, interoperable with standard VC)."""
    services: list[str] = Field(default_factory=list, max_length=MAX_SERVICES)
    """User kiosks: the services a generation-1 kiosk is configured to reach (at most 6); ignored for
    generation 2 (reaches all). Expert kiosks: exactly one service, the one it belongs to."""
    kiosk_count: int = Field(default=1, ge=1, le=MAX_KIOSKS_PER_SITE)
    """Number of booths at the site (user kiosks), or agent stations (expert kiosks); at most 1,000."""
    opening_hours: list[TimeWindow] | None = Field(default=None, min_length=1, max_length=MAX_TIME_WINDOWS)
    """Weekly opening hours of a user kiosk (town hall); default: demand.default_opening_hours."""
    line: LineSpec = LineSpec()
    """The site's ADSL line."""
    exchange: str | None = None
    """User kiosks: the id of the exchange (``exchanges[].id``) whose backhaul the kiosk's calls cross after
    its line, shared with the other kiosks behind it. Default: none (the line reaches the network
    directly)."""
    capex_eur: float | None = Field(default=None, ge=0, le=MAX_EUR)
    """Purchase and installation cost, EUR; default from costs (by kind)."""


class DemandDriver(_Strict):
    """A yearly driver of kiosk demand: each calendar year's value scales the kiosk demand of the services
    it concerns (the needs for a kiosk visit, whatever then happens to them).

    ``effect: substitution`` - the value is the share of people with an alternative to the kiosk (home
    internet, a service online); each of them meets a ``substitution_share`` of their kiosk needs
    without it: demand x (1 - substitution_share x value). ``effect: multiplier`` - demand x value (a
    reorganisation, a closure: 0 removes the demand). Several drivers multiply.
    """

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    """Identifier (for messages and records)."""
    description: str
    """What the values measure (population, definition, month of the survey)."""
    effect: Literal["substitution", "multiplier"]
    """How a value scales demand (see the class description)."""
    substitution_share: float | None = Field(default=None, ge=0.0, le=1.0)
    """Share of a kiosk need that someone with the alternative meets without the kiosk (substitution
    only; usually an ASSUMPTION, say so in ``source``)."""
    services: list[str] | None = Field(default=None, max_length=MAX_SERVICES)
    """Services concerned (default: all)."""
    values: dict[int, float] = Field(min_length=1, max_length=LATEST_DATE.year - EARLIEST_DATE.year + 1)
    """Value per calendar year (``2007: 0.53``). Every simulated year, warm-up included, needs one."""
    source: str = Field(min_length=1)
    """Where each value comes from (publisher, title, year, address), or ASSUMPTION."""

    @model_validator(mode="after")
    def _values(self) -> DemandDriver:
        for year, value in self.values.items():
            if not EARLIEST_DATE.year <= year <= LATEST_DATE.year:
                raise ValueError(f"values: year {year} is not between {EARLIEST_DATE.year} and {LATEST_DATE.year}")
            if not value >= 0 or value > (1 if self.effect == "substitution" else MAX_DRIVER_MULTIPLIER):
                raise ValueError(f"values: {year}: {value} is not "
                                 + ("a share between 0 and 1" if self.effect == "substitution"
                                    else f"a multiplier >= 0 and <= {MAX_DRIVER_MULTIPLIER:g}"))
        if (self.effect == "substitution") != (self.substitution_share is not None):
            raise ValueError("substitution_share is required by effect substitution, and only by it")
        return self

    def factor(self, year: int) -> float:
        """The demand multiplier this driver gives in ``year`` (KeyError if the year has no value)."""
        value = self.values[year]
        if self.effect == "substitution":
            return 1.0 - float(self.substitution_share) * value  # type: ignore[arg-type]
        return value


class DemandSpec(_Strict):
    """How citizens with a need choose: nearest kiosk within reach, the office, or giving up."""

    kiosk_uptake: float = Field(ge=0.0, le=1.0)
    """Share of needs that would be met by video at a kiosk at the citizen's door (calibrated: see
    the scenario's notes)."""
    distance_decay_km: float = Field(default=10.0, gt=0.0, le=MAX_DISTANCE_KM)
    """Kiosk use falls as exp(-d / distance_decay_km) with road distance d to the nearest kiosk."""
    max_kiosk_distance_km: float = Field(default=30.0, gt=0.0, le=MAX_DISTANCE_KM)
    """Beyond this road distance no one uses a kiosk ("too far")."""
    patience_min: float = Field(default=30.0, ge=0.0, le=MAX_DURATION_MIN)
    """Walk-in citizens give up after waiting this long, minutes (0: leave at once if no agent)."""
    default_opening_hours: list[TimeWindow] = Field(
        min_length=1, max_length=MAX_TIME_WINDOWS,
        default_factory=lambda: [
            TimeWindow(days=["mon", "tue", "wed", "thu", "fri"], start="09:00", end="12:00"),
            TimeWindow(days=["mon", "tue", "wed", "thu", "fri"], start="14:00", end="17:00"),
        ]
    )
    """Opening hours of user kiosks that do not set their own."""
    drivers: list[DemandDriver] = Field(default_factory=list, max_length=50)
    """Yearly drivers of kiosk demand (home internet, services online, reorganisations); none: demand
    is the same every year."""


class LiveSpec(_Strict):
    """The hybrid twin's live window (``twin run`` runs it unless ``--no-live``; ``--live`` overrides it):
    in replication 1, the interviews of these user kiosks inside the window are sampled by real emulated
    calls (:mod:`emulators.hybrid`)."""

    sites: list[str] = Field(min_length=1, max_length=50)
    """User kiosks whose interviews run live (at most 50)."""
    start: dt.datetime
    """Start of the window, ISO date or date-time of the simulated calendar."""
    end: dt.datetime
    """End of the window (after ``start``)."""
    media_s: float = Field(default=60.0, ge=1.0, le=3600.0)
    """Seconds of media per live call (the rest of a longer interview is modelled time)."""
    sample_min: float = Field(default=0.0, ge=0.0, le=1440.0)
    """Sampling period, minutes: each live call starts at the next sampling instant that leaves room for its
    media (interviews in progress then meet live); 0: at the interview's start."""
    max_calls: int = Field(default=20, ge=1, le=200)
    """Most live calls in the window (later interviews are modelled and counted)."""

    @model_validator(mode="after")
    def _ordered(self) -> LiveSpec:
        if self.end <= self.start:
            raise ValueError(f"end {self.end.isoformat()} is not after start {self.start.isoformat()}")
        return self


class Observation(_Strict):
    """A figure observed in the real system, to set beside the twin's prediction (``hindcast.csv``)."""

    kpi: str
    """The KPI observed: one the twin computes per phase (``twin schema`` lists them in
    twin.vocabulary.kpi_names), or per calendar year (twin.vocabulary.YEAR_KPIS) when ``year`` is given."""
    phase: str | None = None
    """The phase observed (give a phase or a year)."""
    year: int | None = Field(default=None, ge=EARLIEST_DATE.year, le=LATEST_DATE.year)
    """The calendar year observed (give a phase or a year)."""
    departement: str | None = None
    """A departement code when the figure is for one departement (then the KPI must be one of
    twin.vocabulary.DEPARTEMENT_KPIS and ``phase`` given)."""
    value: float = Field(ge=0.0, allow_inf_nan=False)
    """The observed value, in the KPI's unit."""
    relation: Literal["equals", "at_least", "about"] = "equals"
    """What the figure says: exactly this, at least this ("more than 2,700"), or about this."""
    source: str = Field(min_length=1)
    """Where the figure comes from."""

    @model_validator(mode="after")
    def _phase_or_year(self) -> Observation:
        if (self.phase is None) == (self.year is None):
            raise ValueError("give either phase or year")
        if self.departement is not None and self.phase is None:
            raise ValueError("a departement figure is given per phase (departement KPIs are by phase)")
        return self


class PhaseSpec(_Strict):
    """A dated rollout phase: from start_date, the sites listed are added, upgraded or removed."""

    name: str
    """Phase name, used in results (e.g. "2007")."""
    start_date: dt.date = Field(ge=EARLIEST_DATE, le=LATEST_DATE)
    """First day of the phase (ISO date)."""
    add: list[str] = Field(default_factory=list, max_length=MAX_SITES)
    """Sites installed at the start of the phase."""
    upgrade: list[str] = Field(default_factory=list, max_length=MAX_SITES)
    """Generation-1 user kiosks upgraded to generation 2 at the start of the phase."""
    remove: list[str] = Field(default_factory=list, max_length=MAX_SITES)
    """Sites removed at the start of the phase."""
    agents: dict[str, int] = Field(default_factory=dict, max_length=MAX_SERVICES)
    """Agents on duty per service from this phase on (overrides services[].agents; 0 to 10,000)."""


class QualitySpec(_Strict):
    """How each interview gets its quality score (MOS)."""

    model: Literal["opinion", "calibration"] = "opinion"
    """opinion: ITU-T G.1070 video and G.107 E-model speech (twin.quality.OpinionQualityModel);
    calibration: operating points measured by the emulators (twin calibrate)."""
    calibration_file: str | None = None
    """Calibration CSV relative to the scenario file (required when model is calibration)."""

    @model_validator(mode="after")
    def _file(self) -> QualitySpec:
        if self.model == "calibration" and not self.calibration_file:
            raise ValueError("model 'calibration' needs calibration_file")
        return self


class CostSpec(_Strict):
    """Costs used by the comparison report (EUR)."""

    user_kiosk_capex_eur: float = Field(default=10000.0, ge=0, le=MAX_EUR)
    """User kiosk purchase, EUR (Midi-Pyrenees programme, about 10,000 EUR; docs/facts.md)."""
    expert_kiosk_capex_eur: float = Field(default=7000.0, ge=0, le=MAX_EUR)
    """Expert kiosk purchase, EUR (Midi-Pyrenees programme, about 7,000 EUR; docs/facts.md)."""
    upgrade_capex_eur: float = Field(default=3000.0, ge=0, le=MAX_EUR)
    """Upgrade of a generation-1 kiosk to generation 2, EUR (assumption)."""


class SimulationSpec(_Strict):
    """Simulation horizon, warm-up and replications."""

    end_date: dt.date = Field(ge=EARLIEST_DATE, le=LATEST_DATE)
    """Last simulated day (inclusive)."""
    warmup_days: int = Field(default=14, ge=0, le=3650)
    """Days simulated before the first phase and discarded (queues and outages reach steady state)."""
    replications: int = Field(default=10, ge=1, le=MAX_REPLICATIONS)
    """Default number of replications (twin run --replications overrides); at most 10,000."""
    seed: int = Field(default=1, ge=0, le=MAX_SEED)
    """Default root seed (twin run --seed overrides); replications use SeedSequence.spawn streams."""


class Scenario(_Strict):
    """A whole scenario, as written in YAML. Use :func:`load_scenario` to read one."""

    name: str
    """Scenario name."""
    description: str = ""
    """What the scenario represents, its sources and its calibration."""
    region: RegionSpec
    simulation: SimulationSpec
    demand: DemandSpec
    services: list[ServiceSpec] = Field(min_length=1, max_length=MAX_SERVICES)
    """The public services (at most 100)."""
    sites: list[SiteSpec] = Field(default_factory=list, max_length=MAX_SITES)
    """The kiosk sites, installed or not (at most 10,000)."""
    exchanges: list[ExchangeSpec] = Field(default_factory=list, max_length=MAX_EXCHANGES)
    """Exchanges whose backhaul the user kiosks behind them share (``sites[].exchange``; at most 10,000).
    Optional: a kiosk that names none reaches the network over its line alone."""
    phases: list[PhaseSpec] = Field(min_length=1, max_length=MAX_PHASES)
    """The rollout phases, in date order (at most 200)."""
    quality: QualitySpec = QualitySpec()
    costs: CostSpec = CostSpec()
    observations: list[Observation] = Field(default_factory=list, max_length=10_000)
    """Figures observed in the real system, compared with the twin's predictions (``hindcast.csv``)."""
    live: LiveSpec | None = None
    """A live window of the hybrid twin (optional)."""

    @model_validator(mode="after")
    def _cross_references(self) -> Scenario:
        _check_unique([s.id for s in self.services], "services", "id")
        _check_unique([s.id for s in self.sites], "sites", "id")
        _check_unique([p.name for p in self.phases], "phases", "name")
        service_ids = {s.id for s in self.services}
        site_by_id = {s.id: s for s in self.sites}
        for i, site in enumerate(self.sites):
            _check_no_repeats(site.services, ("sites", i, "services"))
            for j, svc in enumerate(site.services):
                if svc not in service_ids:
                    raise CrossReferenceError(("sites", i, "services", j), svc, f"unknown service {svc!r}")
            if site.kind == "expert" and len(site.services) != 1:
                raise CrossReferenceError(("sites", i, "services"), site.services,
                                  "an expert kiosk belongs to exactly one service")
            if site.kind == "user" and site.generation == 1 and len(site.services) > GEN1_SERVICE_LIMIT:
                raise CrossReferenceError(("sites", i, "services"), site.services,
                                  f"a generation-1 kiosk reaches at most {GEN1_SERVICE_LIMIT} services, "
                                  f"{len(site.services)} given")
            if site.kind == "user" and site.generation == 1 and not site.services:
                raise CrossReferenceError(("sites", i, "services"), site.services,
                                  "a generation-1 user kiosk must list the services it reaches")
        previous: dt.date | None = None
        installed: set[str] = set()
        upgraded: set[str] = set()
        for i, phase in enumerate(self.phases):
            if previous is not None and phase.start_date <= previous:
                raise CrossReferenceError(("phases", i, "start_date"), phase.start_date.isoformat(),
                                  "phases must be in increasing start_date order")
            previous = phase.start_date
            for field in ("add", "upgrade", "remove"):
                _check_no_repeats(getattr(phase, field), ("phases", i, field))
            both = (set(phase.add) | set(phase.upgrade)) & set(phase.remove)
            if both:
                sid = sorted(both)[0]
                raise CrossReferenceError(("phases", i, "remove"), sid,
                                  f"site {sid!r} is both added or upgraded and removed in the same phase")
            for field in ("add", "upgrade", "remove"):
                for j, sid in enumerate(getattr(phase, field)):
                    if sid not in site_by_id:
                        raise CrossReferenceError(("phases", i, field, j), sid, f"unknown site {sid!r}")
            for j, sid in enumerate(phase.add):
                if sid in installed:
                    raise CrossReferenceError(("phases", i, "add", j), sid, f"site {sid!r} is already installed")
                installed.add(sid)
            for j, sid in enumerate(phase.upgrade):
                site = site_by_id[sid]
                if sid in upgraded:
                    raise CrossReferenceError(("phases", i, "upgrade", j), sid, f"site {sid!r} was already upgraded")
                upgraded.add(sid)
                if sid not in installed:
                    raise CrossReferenceError(("phases", i, "upgrade", j), sid,
                                      f"site {sid!r} is upgraded before it is installed")
                if site.kind != "user" or site.generation != 1:
                    raise CrossReferenceError(("phases", i, "upgrade", j), sid,
                                      f"only generation-1 user kiosks can be upgraded; {sid!r} is "
                                      f"a generation-{site.generation} {site.kind} kiosk")
            for j, sid in enumerate(phase.remove):
                if sid not in installed:
                    raise CrossReferenceError(("phases", i, "remove", j), sid, f"site {sid!r} is not installed")
                installed.discard(sid)
            for svc in phase.agents:
                if svc not in service_ids:
                    raise CrossReferenceError(("phases", i, "agents", svc), svc, f"unknown service {svc!r}")
                if not 0 <= phase.agents[svc] <= MAX_AGENTS:
                    raise CrossReferenceError(("phases", i, "agents", svc), phase.agents[svc],
                                              f"agents must be between 0 and {MAX_AGENTS:,}")
        if previous is not None and self.simulation.end_date < previous:
            raise CrossReferenceError(("simulation", "end_date"), self.simulation.end_date.isoformat(),
                              "end_date is before the last phase starts")
        horizon_days = (self.simulation.end_date - self.phases[0].start_date).days + self.simulation.warmup_days
        if horizon_days > MAX_HORIZON_YEARS * 365.25:
            raise CrossReferenceError(("simulation", "end_date"), self.simulation.end_date.isoformat(),
                              f"the simulated horizon ({horizon_days / 365.25:.0f} years from the first phase, "
                              f"warm-up included) exceeds {MAX_HORIZON_YEARS} years")
        self._check_drivers(service_ids)
        self._check_outages(horizon_days * 24.0)
        self._check_observations(service_ids)
        self._check_live(site_by_id)
        self._check_exchanges()
        return self

    def _check_exchanges(self) -> None:
        """Exchange ids are unique; a site names a known exchange, and only a user kiosk does; a kiosk
        behind an exchange is scored by a model that can score the backhaul (the opinion model)."""
        _check_unique([e.id for e in self.exchanges], "exchanges", "id")
        known = {e.id for e in self.exchanges}
        for i, site in enumerate(self.sites):
            if site.exchange is None:
                continue
            loc = ("sites", i, "exchange")
            if site.exchange not in known:
                listed = ", ".join(sorted(known)) if known else "none: add an exchanges section"
                raise CrossReferenceError(loc, site.exchange, f"unknown exchange {site.exchange!r} (exchanges: {listed})")
            if site.kind != "user":
                raise CrossReferenceError(loc, site.exchange, "only user kiosks sit behind an exchange's backhaul; an "
                                          "expert kiosk's shared line is its office's (services[].offices[].line)")
            if self.quality.model == "calibration":
                raise CrossReferenceError(loc, site.exchange,
                                          "the calibration table measures calls over a kiosk's line alone and cannot "
                                          "score a backhaul: use quality.model: opinion with exchanges, or remove "
                                          "the exchange")

    def _check_live(self, site_by_id: dict[str, SiteSpec]) -> None:
        """The live window's sites exist and are user kiosks."""
        for j, sid in enumerate(self.live.sites if self.live is not None else ()):
            if sid not in site_by_id:
                raise CrossReferenceError(("live", "sites", j), sid, f"unknown site {sid!r}")
            if site_by_id[sid].kind != "user":
                raise CrossReferenceError(("live", "sites", j), sid, f"{sid!r} is not a user kiosk")

    def simulated_years(self) -> range:
        """Calendar years the simulation covers, warm-up included."""
        first = self.phases[0].start_date - dt.timedelta(days=self.simulation.warmup_days)
        return range(first.year, self.simulation.end_date.year + 1)

    def _check_drivers(self, service_ids: set[str]) -> None:
        _check_unique([d.id for d in self.demand.drivers], "demand.drivers", "id")
        years = self.simulated_years()
        for i, driver in enumerate(self.demand.drivers):
            loc = ("demand", "drivers", i)
            _check_no_repeats(driver.services or [], loc + ("services",))
            for j, svc in enumerate(driver.services or []):
                if svc not in service_ids:
                    raise CrossReferenceError(loc + ("services", j), svc, f"unknown service {svc!r}")
            missing = [y for y in years if y not in driver.values]
            if missing:
                raise CrossReferenceError(loc + ("values",), sorted(driver.values),
                                          f"no value for simulated year(s) {', '.join(map(str, missing))} "
                                          f"(the simulation covers {years.start}-{years.stop - 1}, warm-up "
                                          "included)")

    def _check_outages(self, horizon_h: float) -> None:
        """Every line's outages over the horizon, expected, within :data:`MAX_LINE_OUTAGES`."""
        lines = [(("sites", i, "line"), s.line) for i, s in enumerate(self.sites)]
        lines += [(("services", i, "office_line"), s.office_line) for i, s in enumerate(self.services)]
        lines += [(("exchanges", i, "backhaul"), e.backhaul) for i, e in enumerate(self.exchanges)]
        expected = sum(horizon_h / (line.mtbf_h + line.mttr_h) for _, line in lines)
        if expected > MAX_LINE_OUTAGES:
            loc, worst = min(lines, key=lambda item: item[1].mtbf_h)
            raise CrossReferenceError(loc + ("mtbf_h",), worst.mtbf_h,
                                      f"the lines' MTBF give about {expected:,.0f} outages per replication over "
                                      f"{horizon_h / 8766:.1f} years (at most {MAX_LINE_OUTAGES:,}, each held in "
                                      "memory): give the lines a longer mean time between failures")

    def kiosk_needs_per_year_bound(self, population_by_departement: dict[str, int]) -> float:
        """An upper estimate of the kiosk needs a year: per service, the population it serves x its
        need per inhabitant x ``demand.kiosk_uptake`` x the largest yearly product of its drivers
        (distance decay, at most 1, is left out)."""
        total = 0.0
        everyone = sum(population_by_departement.values())
        for svc in self.services:
            population = (sum(population_by_departement.get(code, 0) for code in svc.departements)
                          if svc.departements else everyone)
            factors = [1.0]
            for year in self.simulated_years():
                factor = 1.0
                for driver in self.demand.drivers:
                    if (driver.services is None or svc.id in driver.services) and year in driver.values:
                        factor *= driver.factor(year)
                factors.append(factor)
            total += population * svc.need_per_capita_per_year * self.demand.kiosk_uptake * max(factors)
        return total

    def _check_observations(self, service_ids: set[str]) -> None:
        phase_kpis = set(kpi_names(sorted(service_ids)))
        phases = {p.name for p in self.phases}
        years = self.simulated_years()
        for i, obs in enumerate(self.observations):
            loc = ("observations", i)
            if obs.phase is not None and obs.phase not in phases:
                raise CrossReferenceError(loc + ("phase",), obs.phase,
                                          f"no such phase (phases: {', '.join(p.name for p in self.phases)})")
            if obs.year is not None and obs.year not in years:
                raise CrossReferenceError(loc + ("year",), obs.year,
                                          f"not simulated (the simulation covers {years.start}-{years.stop - 1})")
            allowed = (DEPARTEMENT_KPIS if obs.departement is not None
                       else phase_kpis if obs.phase is not None else YEAR_KPIS)
            if obs.kpi not in allowed:
                raise CrossReferenceError(loc + ("kpi",), obs.kpi,
                                          f"unknown KPI here; expected one of {', '.join(allowed)}")

    def site(self, site_id: str) -> SiteSpec:
        """The site with this id (KeyError if none)."""
        for site in self.sites:
            if site.id == site_id:
                return site
        raise KeyError(site_id)


class CrossReferenceError(ValueError):
    """A cross-reference error raised inside validation, carrying its field path."""

    def __init__(self, loc: tuple[Any, ...], value: Any, message: str) -> None:
        self.loc = loc
        self.value = value
        super().__init__(message)


def _check_no_repeats(values: list[str], loc: tuple[Any, ...]) -> None:
    seen: set[str] = set()
    for j, value in enumerate(values):
        if value in seen:
            raise CrossReferenceError(loc + (j,), value, f"{value!r} is listed twice")
        seen.add(value)


def _check_unique(values: list[str], section: str, field: str) -> None:
    seen: dict[str, int] = {}
    for i, value in enumerate(values):
        if value in seen:
            raise CrossReferenceError((section, i, field), value,
                              f"duplicate {field} {value!r} (first at {section}[{seen[value]}])")
        seen[value] = i


# --------------------------------------------------------------------------------------------------
# Region data attached to a loaded scenario


@dataclass(frozen=True)
class Commune:
    """One demand point: a commune with its population and coordinates."""

    commune_id: str
    name: str
    departement_code: str
    lat: float
    lon: float
    population: int


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario with its data read and its places resolved: what the model compiles.

    Built by :func:`twin.scenario.loading.load_scenario` (from a file) or
    :func:`twin.scenario.loading.scenario_from_data` (from data in memory), both through
    :func:`resolve_scenario`.

    Attributes:
        spec: the validated :class:`Scenario`.
        path: the scenario file, or None for a scenario built in memory.
        sha256: hex digest of the scenario file's bytes (of the canonical JSON of the data in memory).
        communes: the region's demand points.
        site_latlon: site id -> (lat, lon) in degrees.
        office_latlon: service id -> [(lat, lon)] of the service's physical offices.
        calibration_path: the calibration CSV the scenario names, resolved, or None.
        calibration: that table, read (a :class:`twin.quality.CalibrationTable`), or None.
        base_dir: folder against which the scenario's data-file names are resolved.
        office_of_expert: expert site id -> (service index, office index) for expert kiosks at an office
            with a line of its own (``offices[].line``), which their calls share.
    """

    spec: Scenario
    path: Path | None
    sha256: str
    communes: tuple[Commune, ...]
    site_latlon: dict[str, tuple[float, float]]
    office_latlon: dict[str, list[tuple[float, float]]]
    calibration_path: Path | None
    calibration: CalibrationTable | None = None
    base_dir: Path = Path(".")
    office_of_expert: dict[str, tuple[int, int]] = dataclass_field(default_factory=dict)

    @property
    def label(self) -> str:
        """The scenario file's path as text, or ``<name> (in memory)``: for messages."""
        return str(self.path) if self.path is not None else f"{self.spec.name} (in memory)"


#: Margin around the communes' bounding box within which a site or office may lie, degrees
#: (about 25 km): a site outside is reported as outside the region.
REGION_MARGIN_DEG = 0.25


class CommuneIndex:
    """Communes of a region looked up by id or by (unique, case-folded) name, with the region's bounds.

    Args:
        communes: the region's demand points (non-empty).
    """

    def __init__(self, communes: tuple[Commune, ...]) -> None:
        self.communes = communes
        self.by_id = {c.commune_id: c for c in communes}
        self.by_name: dict[str, list[Commune]] = {}
        for c in communes:
            self.by_name.setdefault(c.name.casefold(), []).append(c)
        lats = [c.lat for c in communes]
        lons = [c.lon for c in communes]
        self.bbox_deg = (min(lats), max(lats), min(lons), max(lons))

    def commune(self, name_or_id: str, loc: tuple[Any, ...] = ()) -> Commune:
        """The commune with this id, else with this name (case-insensitive).

        Raises:
            CrossReferenceError: no such commune, or a name shared by several (listing their ids).
        """
        if name_or_id in self.by_id:
            return self.by_id[name_or_id]
        matches = self.by_name.get(name_or_id.casefold(), [])
        if not matches:
            raise CrossReferenceError(loc, name_or_id, "no commune with this id or name in the region")
        if len(matches) > 1:
            raise CrossReferenceError(loc, name_or_id,
                                      "ambiguous commune name; use one of the ids "
                                      + ", ".join(f"{c.commune_id} ({c.departement_code})" for c in matches))
        return matches[0]

    def check_in_region(self, lat: float, lon: float, loc: tuple[Any, ...] = ()) -> tuple[float, float]:
        """``(lat, lon)`` if within :data:`REGION_MARGIN_DEG` of the communes' bounding box.

        Raises:
            CrossReferenceError: outside the region (giving the region's span).
        """
        lat_min, lat_max, lon_min, lon_max = self.bbox_deg
        if not (lat_min - REGION_MARGIN_DEG <= lat <= lat_max + REGION_MARGIN_DEG
                and lon_min - REGION_MARGIN_DEG <= lon <= lon_max + REGION_MARGIN_DEG):
            raise CrossReferenceError(loc, f"lat {lat}, lon {lon}",
                                      f"outside the region (communes span lat {lat_min:.2f}..{lat_max:.2f}, "
                                      f"lon {lon_min:.2f}..{lon_max:.2f})")
        return lat, lon

    def place_latlon(self, place: Place, loc: tuple[Any, ...] = ()) -> tuple[float, float]:
        """Coordinates of a :class:`Place`: its commune's, or its own if inside the region."""
        if place.commune is not None:
            commune = self.commune(place.commune, loc + ("commune",))
            return commune.lat, commune.lon
        return self.check_in_region(float(place.lat), float(place.lon), loc)  # type: ignore[arg-type]


def resolve_scenario(spec: Scenario, communes: tuple[Commune, ...], *, path: Path | None, sha256: str,
                     base_dir: Path = Path("."), calibration_path: Path | None = None,
                     calibration: CalibrationTable | None = None) -> LoadedScenario:
    """Resolve a validated spec against its region: places to coordinates, departements, line offers.

    Pure: the communes and the calibration table are given, already read.

    Raises:
        CrossReferenceError: a place not in the region, an unknown departement code, an unknown line
            offer or a loop beyond its reach; ``loc`` is the field path.
    """
    index = CommuneIndex(communes)
    site_latlon = {s.id: index.place_latlon(s.place, ("sites", i, "place")) for i, s in enumerate(spec.sites)}
    office_latlon = {
        s.id: [index.place_latlon(o, ("services", i, "offices", j)) for j, o in enumerate(s.offices)]
        for i, s in enumerate(spec.services)
    }
    codes = {c.departement_code for c in communes}
    population: dict[str, int] = {}
    for c in communes:
        population[c.departement_code] = population.get(c.departement_code, 0) + c.population
    needs = spec.kiosk_needs_per_year_bound(population)
    if needs > MAX_KIOSK_NEEDS_PER_YEAR:
        raise CrossReferenceError(("demand", "kiosk_uptake"), spec.demand.kiosk_uptake,
                                  f"with the region's {sum(population.values()):,} inhabitants and the services' "
                                  f"needs per inhabitant this gives up to {needs:,.0f} kiosk needs a year (at most "
                                  f"{MAX_KIOSK_NEEDS_PER_YEAR:,}: each is held in memory for its year); lower the "
                                  "uptake or the needs, or split the region")
    for i, svc in enumerate(spec.services):
        for j, code in enumerate(svc.departements or []):
            if code not in codes:
                raise CrossReferenceError(("services", i, "departements", j), code,
                                          "no commune of the region has this departement code "
                                          f"(codes: {', '.join(sorted(codes))})")
    for i, obs in enumerate(spec.observations):
        if obs.departement is not None and obs.departement not in codes:
            raise CrossReferenceError(("observations", i, "departement"), obs.departement,
                                      f"no commune of the region has this departement code "
                                      f"(codes: {', '.join(sorted(codes))})")
    office_of_expert = _experts_at_shared_offices(spec, site_latlon, office_latlon)
    line_specs = [(("sites", i, "line"), s.line) for i, s in enumerate(spec.sites)]
    line_specs += [(("services", i, "office_line"), s.office_line) for i, s in enumerate(spec.services)]
    line_specs += [(("services", i, "offices", j, "line"), o.line) for i, s in enumerate(spec.services)
                   for j, o in enumerate(s.offices) if o.line is not None]
    for loc, line_spec in line_specs:
        try:
            get_offer(line_spec.offer)
        except LineError as exc:
            raise CrossReferenceError(loc + ("offer",), line_spec.offer, str(exc)) from None
        try:
            build_line(line_spec)
        except LineError as exc:
            raise CrossReferenceError(loc + ("loop_length_m",), line_spec.loop_length_m, str(exc)) from None
    return LoadedScenario(spec=spec, path=path, sha256=sha256, communes=communes, site_latlon=site_latlon,
                          office_latlon=office_latlon, calibration_path=calibration_path, calibration=calibration,
                          base_dir=base_dir, office_of_expert=office_of_expert)


def _experts_at_shared_offices(spec: Scenario, site_latlon: dict[str, tuple[float, float]],
                               office_latlon: dict[str, list[tuple[float, float]]]) -> dict[str, tuple[int, int]]:
    """Expert site id -> (service index, office index) for the expert kiosks placed at an office of their
    service that has a line (``offices[].line``).

    Raises:
        CrossReferenceError: such an expert kiosk also sets its own ``line``.
    """
    found: dict[str, tuple[int, int]] = {}
    service_index = {s.id: i for i, s in enumerate(spec.services)}
    for k, site in enumerate(spec.sites):
        if site.kind != "expert" or not site.services or site.services[0] not in service_index:
            continue
        i = service_index[site.services[0]]
        for j, office in enumerate(spec.services[i].offices):
            if office.line is not None and office_latlon[spec.services[i].id][j] == site_latlon[site.id]:
                if "line" in site.model_fields_set:
                    raise CrossReferenceError(("sites", k, "line"), site.line.offer,
                                              f"expert kiosk {site.id!r} is at office {j} of {spec.services[i].id!r}, "
                                              "which has a line its stations share (offices[].line): remove one")
                found[site.id] = (i, j)
                break
    return found


def build_line(spec: LineSpec) -> AdslLine:
    """The :class:`twin.line.AdslLine` for a scenario line spec.

    Raises:
        twin.errors.LineError: unknown offer, or a loop length beyond the offer family's reach.
    """
    line = AdslLine(offer=get_offer(spec.offer), loop_length_m=spec.loop_length_m, loss_pct=spec.loss_pct,
                    mtbf_h=spec.mtbf_h, mttr_h=spec.mttr_h)
    line.sync_rate_up_kbps  # noqa: B018 - raises LineError when the loop is out of reach
    line.sync_rate_down_kbps  # noqa: B018
    return line


def build_backhaul(spec: BackhaulSpec) -> Backhaul:
    """The :class:`twin.line.Backhaul` for a scenario's ``exchanges[].backhaul``."""
    return Backhaul(rate_up_kbps=spec.rate_up_kbps, rate_down_kbps=spec.rate_down_kbps, delay_ms=spec.delay_ms,
                    up_buffer_bytes=spec.buffer_bytes, down_buffer_bytes=spec.buffer_bytes, loss_pct=spec.loss_pct,
                    mtbf_h=spec.mtbf_h, mttr_h=spec.mttr_h)


def scenario_json_schema() -> dict[str, Any]:
    """The JSON Schema of scenario files (for editors' completion and validation)."""
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "twin scenario"
    return schema


__all__ = [
    "GEN1_SERVICE_LIMIT",
    "BackhaulSpec",
    "ExchangeSpec",
    "DemandDriver",
    "LiveSpec",
    "Observation",
    "MAX_DURATION_MIN",
    "REGION_MARGIN_DEG",
    "Commune",
    "CommuneIndex",
    "CostSpec",
    "CrossReferenceError",
    "DemandSpec",
    "DurationSpec",
    "LineSpec",
    "LoadedScenario",
    "PhaseSpec",
    "OfficeSpec",
    "Place",
    "QualitySpec",
    "RegionSpec",
    "Scenario",
    "ServiceSpec",
    "SimulationSpec",
    "SiteSpec",
    "TimeWindow",
    "build_backhaul",
    "build_line",
    "intersect_weekly",
    "resolve_scenario",
    "scenario_json_schema",
    "weekly_intervals_min",
]
