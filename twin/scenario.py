"""Scenario files: YAML -> typed, documented, validated :class:`Scenario` objects.

A scenario describes a region (communes with population and coordinates), the kiosk sites (user kiosks
in town halls, expert kiosks in service offices) with their generation, opening hours and ADSL line, the
public services (agents, slots, interview durations, yearly need per inhabitant), the citizens' choice
of a kiosk, the quality model, and dated rollout phases that add, upgrade or remove sites.

Everything is validated before the first simulated event (the approach of Ciw's ``import_params``):
:func:`load_scenario` raises :class:`twin.errors.ScenarioError` whose one-paragraph message names the
file, the field path, the bad value and, where YAML gives it, the line number. YAML is read with
``yaml.SafeLoader``: nothing in a scenario is executed.

Units live in field names (``_km``, ``_min``, ``_m``, ``_h``, ``_eur``, ``_per_year``) or, where a
name cannot carry one, in the field description. ``twin schema`` prints the JSON Schema.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from twin.errors import ScenarioError

#: Generation-1 user kiosks reach at most this many services (seed article, Localtis 2008).
GEN1_SERVICE_LIMIT = 6

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: Longest interview duration accepted, minutes (one week: beyond it a duration is a typo).
MAX_DURATION_MIN = 7 * 24 * 60.0
#: Dates a scenario may use: the simulation counts minutes from its start, and a century is the most
#: a planning horizon needs.
EARLIEST_DATE = dt.date(1950, 1, 1)
LATEST_DATE = dt.date(2100, 12, 31)
#: Longest simulated horizon, years (warm-up included).
MAX_HORIZON_YEARS = 60
#: Largest scenario file read, bytes, and most values once YAML aliases are expanded: a scenario is
#: hand-written text; a "billion laughs" file of nested aliases would expand exponentially in validation.
MAX_SCENARIO_BYTES = 10_000_000
MAX_YAML_NODES = 1_000_000
#: Largest commune population accepted (the most populous city on Earth is under 4e7).
MAX_COMMUNE_POPULATION = 100_000_000
_TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True, allow_inf_nan=False)

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
    circuity_factor: float = Field(default=1.3, ge=1.0, le=3.0)
    """Road distance / great-circle distance (dimensionless). Default 1.3 is a common rural value
    (assumption; see twin.region)."""


class LineSpec(_Strict):
    """The ADSL line of a site: a named offer (twin.line.OFFERS) and the loop length to the exchange."""

    offer: str = "adsl-512-128"
    """Name of a line offer in twin.line.OFFERS, e.g. adsl-512-128, readsl-512-128, adsl-2048-256."""
    loop_length_m: float = Field(default=2500.0, ge=0.0, le=12000.0)
    """Copper loop length from the site to the exchange, metres."""
    loss_pct: float = Field(default=0.0, ge=0.0, le=100.0)
    """Random packet loss on the line, percent."""
    mtbf_h: float = Field(default=2000.0, gt=0.0)
    """Mean time between line failures, hours."""
    mttr_h: float = Field(default=8.0, ge=0.0)
    """Mean time to repair a failed line, hours."""


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


class ServiceSpec(_Strict):
    """A public service reachable by video (employment office, family allowances...)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    """Identifier used by sites and phases."""
    name: str
    """Human-readable name."""
    offices: list[Place] = Field(min_length=1)
    """The service's physical offices; citizens who do not use a kiosk travel to the nearest one
    (used for the travel avoided by each interview)."""
    departements: list[str] | None = None
    """Departement codes (e.g. ["03"]) whose inhabitants the service serves; default: the whole region."""
    need_per_capita_per_year: float = Field(ge=0.0, le=5.0)
    """Yearly face-to-face interviews needed per inhabitant (before the kiosk uptake factor)."""
    booking: Literal["appointment", "walk-in"] = "walk-in"
    """appointment: citizens book and come at a slot, never abandon; walk-in: they come during the
    service's slots and give up after demand.patience_min of waiting."""
    agents: int = Field(ge=0, le=10000)
    """Agents on duty during the slots (each needs an expert kiosk or a standard VC room)."""
    slots: list[TimeWindow] = Field(min_length=1)
    """Weekly slots during which agents answer video calls ("permanences")."""
    interview_duration: DurationSpec
    """Duration of one interview."""
    standard_vc_rooms: int = Field(default=0, ge=0)
    """Standard videoconference rooms the service already owns; reachable by generation-2 kiosks only,
    without an expert kiosk (seed article, 2008)."""
    office_line: LineSpec = LineSpec(offer="adsl-2048-256", loop_length_m=1500.0)
    """Line of the service's office (used by expert kiosks without their own line and by VC rooms)."""


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
    services: list[str] = Field(default_factory=list)
    """User kiosks: the services a generation-1 kiosk is configured to reach (at most 6); ignored for
    generation 2 (reaches all). Expert kiosks: exactly one service, the one it belongs to."""
    kiosk_count: int = Field(default=1, ge=1, le=1000)
    """Number of booths at the site (user kiosks), or agent stations (expert kiosks)."""
    opening_hours: list[TimeWindow] | None = Field(default=None, min_length=1)
    """Weekly opening hours of a user kiosk (town hall); default: demand.default_opening_hours."""
    line: LineSpec = LineSpec()
    """The site's ADSL line."""
    capex_eur: float | None = Field(default=None, ge=0)
    """Purchase and installation cost, EUR; default from costs (by kind)."""


class DemandSpec(_Strict):
    """How citizens with a need choose: nearest kiosk within reach, the office, or giving up."""

    kiosk_uptake: float = Field(ge=0.0, le=1.0)
    """Share of needs that would be met by video at a kiosk at the citizen's door (calibrated: see
    the scenario's notes)."""
    distance_decay_km: float = Field(default=10.0, gt=0.0)
    """Kiosk use falls as exp(-d / distance_decay_km) with road distance d to the nearest kiosk."""
    max_kiosk_distance_km: float = Field(default=30.0, gt=0.0)
    """Beyond this road distance no one uses a kiosk ("too far")."""
    patience_min: float = Field(default=30.0, ge=0.0)
    """Walk-in citizens give up after waiting this long, minutes (0: leave at once if no agent)."""
    default_opening_hours: list[TimeWindow] = Field(
        min_length=1,
        default_factory=lambda: [
            TimeWindow(days=["mon", "tue", "wed", "thu", "fri"], start="09:00", end="12:00"),
            TimeWindow(days=["mon", "tue", "wed", "thu", "fri"], start="14:00", end="17:00"),
        ]
    )
    """Opening hours of user kiosks that do not set their own."""


class PhaseSpec(_Strict):
    """A dated rollout phase: from start_date, the sites listed are added, upgraded or removed."""

    name: str
    """Phase name, used in results (e.g. "2007")."""
    start_date: dt.date = Field(ge=EARLIEST_DATE, le=LATEST_DATE)
    """First day of the phase (ISO date)."""
    add: list[str] = Field(default_factory=list)
    """Sites installed at the start of the phase."""
    upgrade: list[str] = Field(default_factory=list)
    """Generation-1 user kiosks upgraded to generation 2 at the start of the phase."""
    remove: list[str] = Field(default_factory=list)
    """Sites removed at the start of the phase."""
    agents: dict[str, int] = Field(default_factory=dict)
    """Agents on duty per service from this phase on (overrides services[].agents)."""


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

    user_kiosk_capex_eur: float = Field(default=10000.0, ge=0)
    """User kiosk purchase, EUR (Midi-Pyrenees programme, about 10,000 EUR; docs/facts.md)."""
    expert_kiosk_capex_eur: float = Field(default=7000.0, ge=0)
    """Expert kiosk purchase, EUR (Midi-Pyrenees programme, about 7,000 EUR; docs/facts.md)."""
    upgrade_capex_eur: float = Field(default=3000.0, ge=0)
    """Upgrade of a generation-1 kiosk to generation 2, EUR (assumption)."""


class SimulationSpec(_Strict):
    """Simulation horizon, warm-up and replications."""

    end_date: dt.date = Field(ge=EARLIEST_DATE, le=LATEST_DATE)
    """Last simulated day (inclusive)."""
    warmup_days: int = Field(default=14, ge=0, le=3650)
    """Days simulated before the first phase and discarded (queues and outages reach steady state)."""
    replications: int = Field(default=10, ge=1, le=10000)
    """Default number of replications (twin run --replications overrides)."""
    seed: int = Field(default=1, ge=0)
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
    services: list[ServiceSpec] = Field(min_length=1)
    sites: list[SiteSpec] = Field(default_factory=list)
    phases: list[PhaseSpec] = Field(min_length=1)
    quality: QualitySpec = QualitySpec()
    costs: CostSpec = CostSpec()

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
                    raise _CrossError(("sites", i, "services", j), svc, f"unknown service {svc!r}")
            if site.kind == "expert" and len(site.services) != 1:
                raise _CrossError(("sites", i, "services"), site.services,
                                  "an expert kiosk belongs to exactly one service")
            if site.kind == "user" and site.generation == 1 and len(site.services) > GEN1_SERVICE_LIMIT:
                raise _CrossError(("sites", i, "services"), site.services,
                                  f"a generation-1 kiosk reaches at most {GEN1_SERVICE_LIMIT} services, "
                                  f"{len(site.services)} given")
            if site.kind == "user" and site.generation == 1 and not site.services:
                raise _CrossError(("sites", i, "services"), site.services,
                                  "a generation-1 user kiosk must list the services it reaches")
        previous: dt.date | None = None
        installed: set[str] = set()
        upgraded: set[str] = set()
        for i, phase in enumerate(self.phases):
            if previous is not None and phase.start_date <= previous:
                raise _CrossError(("phases", i, "start_date"), phase.start_date.isoformat(),
                                  "phases must be in increasing start_date order")
            previous = phase.start_date
            for field in ("add", "upgrade", "remove"):
                _check_no_repeats(getattr(phase, field), ("phases", i, field))
            both = (set(phase.add) | set(phase.upgrade)) & set(phase.remove)
            if both:
                sid = sorted(both)[0]
                raise _CrossError(("phases", i, "remove"), sid,
                                  f"site {sid!r} is both added or upgraded and removed in the same phase")
            for field in ("add", "upgrade", "remove"):
                for j, sid in enumerate(getattr(phase, field)):
                    if sid not in site_by_id:
                        raise _CrossError(("phases", i, field, j), sid, f"unknown site {sid!r}")
            for j, sid in enumerate(phase.add):
                if sid in installed:
                    raise _CrossError(("phases", i, "add", j), sid, f"site {sid!r} is already installed")
                installed.add(sid)
            for j, sid in enumerate(phase.upgrade):
                site = site_by_id[sid]
                if sid in upgraded:
                    raise _CrossError(("phases", i, "upgrade", j), sid, f"site {sid!r} was already upgraded")
                upgraded.add(sid)
                if sid not in installed:
                    raise _CrossError(("phases", i, "upgrade", j), sid,
                                      f"site {sid!r} is upgraded before it is installed")
                if site.kind != "user" or site.generation != 1:
                    raise _CrossError(("phases", i, "upgrade", j), sid,
                                      f"only generation-1 user kiosks can be upgraded; {sid!r} is "
                                      f"a generation-{site.generation} {site.kind} kiosk")
            for j, sid in enumerate(phase.remove):
                if sid not in installed:
                    raise _CrossError(("phases", i, "remove", j), sid, f"site {sid!r} is not installed")
                installed.discard(sid)
            for svc in phase.agents:
                if svc not in service_ids:
                    raise _CrossError(("phases", i, "agents", svc), svc, f"unknown service {svc!r}")
                if phase.agents[svc] < 0:
                    raise _CrossError(("phases", i, "agents", svc), phase.agents[svc],
                                      "agents must be >= 0")
        if previous is not None and self.simulation.end_date < previous:
            raise _CrossError(("simulation", "end_date"), self.simulation.end_date.isoformat(),
                              "end_date is before the last phase starts")
        horizon_days = (self.simulation.end_date - self.phases[0].start_date).days + self.simulation.warmup_days
        if horizon_days > MAX_HORIZON_YEARS * 365.25:
            raise _CrossError(("simulation", "end_date"), self.simulation.end_date.isoformat(),
                              f"the simulated horizon ({horizon_days / 365.25:.0f} years from the first phase, "
                              f"warm-up included) exceeds {MAX_HORIZON_YEARS} years")
        return self

    def site(self, site_id: str) -> SiteSpec:
        """The site with this id (KeyError if none)."""
        for site in self.sites:
            if site.id == site_id:
                return site
        raise KeyError(site_id)


class _CrossError(ValueError):
    """A cross-reference error raised inside validation, carrying its field path."""

    def __init__(self, loc: tuple[Any, ...], value: Any, message: str) -> None:
        self.loc = loc
        self.value = value
        super().__init__(message)


def _check_no_repeats(values: list[str], loc: tuple[Any, ...]) -> None:
    seen: set[str] = set()
    for j, value in enumerate(values):
        if value in seen:
            raise _CrossError(loc + (j,), value, f"{value!r} is listed twice")
        seen.add(value)


def _check_unique(values: list[str], section: str, field: str) -> None:
    seen: dict[str, int] = {}
    for i, value in enumerate(values):
        if value in seen:
            raise _CrossError((section, i, field), value,
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
    """A validated scenario with its data files read and its places resolved.

    Attributes:
        spec: the validated :class:`Scenario`.
        path: the scenario file.
        sha256: hex digest of the scenario file's bytes.
        communes: the region's demand points.
        site_latlon: site id -> (lat, lon) in degrees.
        office_latlon: service id -> [(lat, lon)] of the service's physical offices.
        calibration_path: resolved calibration CSV path, or None.
    """

    spec: Scenario
    path: Path
    sha256: str
    communes: tuple[Commune, ...]
    site_latlon: dict[str, tuple[float, float]]
    office_latlon: dict[str, list[tuple[float, float]]]
    calibration_path: Path | None


def _read_communes(path: Path, scenario_path: Path) -> tuple[Commune, ...]:
    if not path.exists():
        raise ScenarioError(f"region.communes_file: file not found: {path}", path=str(scenario_path))
    if not path.is_file():
        raise ScenarioError(f"region.communes_file: not a regular file: {path}", path=str(scenario_path))
    try:
        return _parse_communes(path)
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"not UTF-8 text (byte {exc.start}); save the CSV as UTF-8", path=str(path)) from None
    except csv.Error as exc:
        raise ScenarioError(f"not a readable CSV file ({exc})", path=str(path)) from None


def _parse_communes(path: Path) -> tuple[Commune, ...]:
    required = {"commune_id", "name", "departement_code", "lat", "lon", "population"}
    communes = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = required - set(reader.fieldnames or [])
        if missing:
            raise ScenarioError(f"missing column(s) {sorted(missing)} (has {reader.fieldnames})", path=str(path))
        for row in reader:
            row_no = reader.line_num
            if None in row.values() or None in row:
                raise ScenarioError(f"line {row_no}: {len(row)} fields where the header has "
                                    f"{len(reader.fieldnames or [])}", path=str(path))
            try:
                lat, lon, population = float(row["lat"]), float(row["lon"]), int(row["population"])
            except (TypeError, ValueError):
                raise ScenarioError(f"line {row_no}: lat/lon/population not numeric: "
                                    f"{row['lat']!r}, {row['lon']!r}, {row['population']!r}", path=str(path)) from None
            if not 0 <= population <= MAX_COMMUNE_POPULATION:
                raise ScenarioError(f"line {row_no}: population must be between 0 and {MAX_COMMUNE_POPULATION:,}, "
                                    f"got {population}", path=str(path))
            if not (-90 <= lat <= 90 and -180 <= lon <= 180) or math.isnan(lat) or math.isnan(lon):
                raise ScenarioError(f"line {row_no}: coordinates out of range: {lat}, {lon}", path=str(path))
            communes.append(Commune(row["commune_id"], row["name"], row["departement_code"], lat, lon, population))
    if not communes:
        raise ScenarioError("no communes in the file", path=str(path))
    ids = [c.commune_id for c in communes]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ScenarioError(f"duplicate commune_id {dup!r}", path=str(path))
    return tuple(communes)


#: Margin around the communes' bounding box within which a site or office may lie, degrees
#: (about 25 km): a site outside is reported as outside the region.
REGION_MARGIN_DEG = 0.25


def _resolve_place(place: Place, loc: tuple[Any, ...], communes: tuple[Commune, ...],
                   by_id: dict[str, Commune], by_name: dict[str, list[Commune]],
                   bbox: tuple[float, float, float, float]) -> tuple[float, float]:
    if place.commune is not None:
        if place.commune in by_id:
            commune = by_id[place.commune]
        else:
            matches = by_name.get(place.commune.casefold(), [])
            if not matches:
                raise _CrossError(loc + ("commune",), place.commune, "no commune with this id or name in the region")
            if len(matches) > 1:
                raise _CrossError(loc + ("commune",), place.commune,
                                  "ambiguous commune name; use one of the ids "
                                  + ", ".join(f"{c.commune_id} ({c.departement_code})" for c in matches))
            commune = matches[0]
        return commune.lat, commune.lon
    lat, lon = float(place.lat), float(place.lon)  # type: ignore[arg-type]
    lat_min, lat_max, lon_min, lon_max = bbox
    if not (lat_min - REGION_MARGIN_DEG <= lat <= lat_max + REGION_MARGIN_DEG
            and lon_min - REGION_MARGIN_DEG <= lon <= lon_max + REGION_MARGIN_DEG):
        raise _CrossError(loc, f"lat {lat}, lon {lon}",
                          f"outside the region (communes span lat {lat_min:.2f}..{lat_max:.2f}, "
                          f"lon {lon_min:.2f}..{lon_max:.2f})")
    return lat, lon


# --------------------------------------------------------------------------------------------------
# Reading YAML with line numbers


class _LineLoader(yaml.SafeLoader):
    """Safe loader that rejects duplicate keys (PyYAML silently keeps the last one) and leaves dates as
    text (pydantic parses them, so an impossible date is reported with its field path)."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)  # YAML merge keys (<<: *base) first, as SafeLoader does
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, f"a mapping key must be a plain value, got {type(key).__name__}", key_node.start_mark
            ) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _expanded_size(node: yaml.Node | None, memo: dict[int, int], depth: int = 0) -> int:
    """Number of values the composed YAML tree holds once every alias is expanded (memoised per node,
    so linear in the file's size)."""
    if node is None:
        return 0
    if id(node) in memo:
        return memo[id(node)]
    if depth > 200:
        raise RecursionError
    memo[id(node)] = 1  # a cycle counts once (and is reported later as too deep)
    if isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo, depth + 1) + _expanded_size(v, memo, depth + 1) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(item, memo, depth + 1) for item in node.value)
    else:
        size = 1
    memo[id(node)] = size
    return size


def _line_index(node: yaml.Node | None, path: tuple[Any, ...] = (), out: dict | None = None,
                visited: set[int] | None = None) -> dict:
    """Map field path tuples to 1-based line numbers from a composed YAML node tree (an aliased node is
    walked once, at its anchor)."""
    out = {} if out is None else out
    visited = set() if visited is None else visited
    if node is None or id(node) in visited:
        return out
    visited.add(id(node))
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[path + (key,)] = key_node.start_mark.line + 1
            _line_index(value_node, path + (key,), out, visited)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, path + (i,), out, visited)
    return out


def _format_loc(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "(top level)"


def _line_for(loc: tuple[Any, ...], lines: dict) -> int | None:
    loc = tuple(loc)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return None


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error(path: Path, loc: tuple[Any, ...], value: Any, message: str, lines: dict) -> ScenarioError:
    line = _line_for(loc, lines)
    where = f"line {line}, " if line else ""
    return ScenarioError(f"{where}field {_format_loc(loc)} = {_short(value)}: {message}", path=str(path))


def parse_scenario_text(text: str, path: Path) -> tuple[Scenario, dict]:
    """Parse and validate scenario YAML text. Returns the Scenario and the line index.

    Raises:
        ScenarioError: empty or non-YAML text, a non-mapping document, or any validation error
            (the first one, with field path, value and line).
    """
    if not text.strip():
        raise ScenarioError("the scenario file is empty", path=str(path))
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        expanded = _expanded_size(node, {})
        if expanded > MAX_YAML_NODES:
            raise ScenarioError(f"the YAML expands to {expanded:,} values through its aliases (at most "
                                f"{MAX_YAML_NODES:,}): nested aliases expand exponentially", path=str(path))
        data = yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass: nothing is executed
    except RecursionError:
        raise ScenarioError("the YAML nests too deeply or an alias refers to itself", path=str(path)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(f"{where}not valid YAML: {problem}", path=str(path)) from None
    if data is None:
        raise ScenarioError("the scenario file is empty (only comments or blank lines)", path=str(path))
    if not isinstance(data, dict):
        raise ScenarioError(f"a scenario is a YAML mapping (name:, region:, ...), got {type(data).__name__}",
                            path=str(path))
    lines = _line_index(node)
    try:
        scenario = Scenario.model_validate(data)
    except RecursionError:
        raise ScenarioError("the YAML nests too deeply or an alias refers to itself", path=str(path)) from None
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        # an unknown key is usually a misspelt one, the root of a "missing field" error: report it first
        err = sorted(errors, key=lambda e: e["type"] != "extra_forbidden")[0]
        ctx_error = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_error, _CrossError):
            raise _error(path, ctx_error.loc, ctx_error.value, str(ctx_error), lines) from None
        loc = tuple(err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field (check the spelling; twin schema lists the fields)"
        more = len(errors) - 1
        if more:
            message += f" ({more} more error{'s' if more > 1 else ''} after this one)"
        if err["type"] == "missing":
            line = _line_for(loc, lines)
            where = f"line {line}, " if line else ""
            extra = f" ({more} more error{'s' if more > 1 else ''} after this one)" if more else ""
            raise ScenarioError(f"{where}field {_format_loc(loc)} is missing: it is required{extra}",
                                path=str(path)) from None
        raise _error(path, loc, err.get("input"), message, lines) from None
    return scenario, lines


def load_scenario(path: str | Path) -> LoadedScenario:
    """Read, validate and resolve a scenario file.

    Args:
        path: the YAML scenario file. Data files it names are resolved relative to its folder.

    Returns:
        A :class:`LoadedScenario` with communes read and site/office coordinates resolved.

    Raises:
        ScenarioError: missing/unreadable file, invalid YAML, validation errors, missing or malformed
            data files, unknown line offers, places outside the region. The message names the file, the
            field path, the value and the line number where known.
    """
    from twin.errors import LineError
    from twin.line import get_offer

    scenario_path = Path(path)
    if scenario_path.exists() and not scenario_path.is_dir() and not scenario_path.is_file():
        raise ScenarioError("not a regular file (a device, pipe or socket cannot be a scenario)",
                            path=str(scenario_path))
    try:
        if scenario_path.is_file() and scenario_path.stat().st_size > MAX_SCENARIO_BYTES:
            raise ScenarioError(f"{scenario_path.stat().st_size:,} bytes: larger than any scenario "
                                f"({MAX_SCENARIO_BYTES:,} bytes at most)", path=str(scenario_path))
        raw = scenario_path.read_bytes()
    except FileNotFoundError:
        raise ScenarioError("file not found", path=str(scenario_path)) from None
    except IsADirectoryError:
        raise ScenarioError("is a folder, not a scenario file", path=str(scenario_path)) from None
    except OSError as exc:
        raise ScenarioError(f"cannot read: {exc.strerror}", path=str(scenario_path)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"not UTF-8 text (byte {exc.start}); is this a scenario file?",
                            path=str(scenario_path)) from None
    spec, lines = parse_scenario_text(text, scenario_path)
    base = scenario_path.parent
    communes = _read_communes(base / spec.region.communes_file, scenario_path)
    by_id = {c.commune_id: c for c in communes}
    by_name: dict[str, list[Commune]] = {}
    for c in communes:
        by_name.setdefault(c.name.casefold(), []).append(c)
    lats = [c.lat for c in communes]
    lons = [c.lon for c in communes]
    bbox = (min(lats), max(lats), min(lons), max(lons))
    try:
        site_latlon = {
            s.id: _resolve_place(s.place, ("sites", i, "place"), communes, by_id, by_name, bbox)
            for i, s in enumerate(spec.sites)
        }
        office_latlon = {
            s.id: [_resolve_place(o, ("services", i, "offices", j), communes, by_id, by_name, bbox)
                   for j, o in enumerate(s.offices)]
            for i, s in enumerate(spec.services)
        }
    except _CrossError as exc:
        raise _error(scenario_path, exc.loc, exc.value, str(exc), lines) from None
    codes = {c.departement_code for c in communes}
    for i, svc in enumerate(spec.services):
        for j, code in enumerate(svc.departements or []):
            if code not in codes:
                raise _error(scenario_path, ("services", i, "departements", j), code,
                             f"no commune of the region has this departement code (codes: {', '.join(sorted(codes))})",
                             lines)
    line_specs = [(("sites", i, "line"), s.line) for i, s in enumerate(spec.sites)]
    line_specs += [(("services", i, "office_line"), s.office_line) for i, s in enumerate(spec.services)]
    for loc, line_spec in line_specs:
        try:
            get_offer(line_spec.offer)
        except LineError as exc:
            raise _error(scenario_path, loc + ("offer",), line_spec.offer, str(exc), lines) from None
        try:
            build_line(line_spec)
        except LineError as exc:
            raise _error(scenario_path, loc + ("loop_length_m",), line_spec.loop_length_m, str(exc), lines) from None
    calibration_path = None
    if spec.quality.calibration_file:
        calibration_path = base / spec.quality.calibration_file
        if not calibration_path.is_file():
            raise _error(scenario_path, ("quality", "calibration_file"), spec.quality.calibration_file,
                         f"file not found: {calibration_path}", lines)
    return LoadedScenario(
        spec=spec,
        path=scenario_path,
        sha256=hashlib.sha256(raw).hexdigest(),
        communes=communes,
        site_latlon=site_latlon,
        office_latlon=office_latlon,
        calibration_path=calibration_path,
    )


def build_line(spec: LineSpec):  # -> twin.line.AdslLine
    """The :class:`twin.line.AdslLine` for a scenario line spec.

    Raises:
        twin.errors.LineError: unknown offer, or a loop length beyond the offer family's reach.
    """
    from twin.line import AdslLine, get_offer

    line = AdslLine(offer=get_offer(spec.offer), loop_length_m=spec.loop_length_m, loss_pct=spec.loss_pct,
                    mtbf_h=spec.mtbf_h, mttr_h=spec.mttr_h)
    line.sync_rate_up_kbps  # noqa: B018 - raises LineError when the loop is out of reach
    line.sync_rate_down_kbps  # noqa: B018
    return line


def scenario_json_schema() -> dict[str, Any]:
    """The JSON Schema of scenario files (for editors' completion and validation)."""
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "twin scenario"
    return schema


__all__ = [
    "GEN1_SERVICE_LIMIT",
    "Commune",
    "DemandSpec",
    "DurationSpec",
    "LineSpec",
    "LoadedScenario",
    "PhaseSpec",
    "Place",
    "QualitySpec",
    "Scenario",
    "ServiceSpec",
    "SimulationSpec",
    "SiteSpec",
    "TimeWindow",
    "build_line",
    "intersect_weekly",
    "load_scenario",
    "parse_scenario_text",
    "scenario_json_schema",
    "weekly_intervals_min",
]
