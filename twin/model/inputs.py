"""A scenario compiled for simulation: phases, demand streams, stations and lines, computed once.

:func:`prepare` turns a :class:`twin.scenario.spec.LoadedScenario` into :class:`ModelInputs` with no
randomness: every replication (:mod:`twin.model.replication`) shares them. The demand model is described
in :mod:`twin.model`.
"""

from __future__ import annotations

import datetime as dt
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from twin.errors import TwinInputError
from twin.line import AdslLine, Link
from twin.profiles import EncoderProfile, profile_for_generation
from twin.quality import InterviewQuality, QualityModel
from twin.region import road_distance_matrix_km
from twin.scenario.spec import (
    CommuneIndex,
    DurationSpec,
    LoadedScenario,
    PhaseSpec,
    Scenario,
    build_backhaul,
    build_line,
    intersect_weekly,
    weekly_intervals_min,
)
from twin.vocabulary import DAYS_PER_YEAR, MIN_PER_DAY

#: A weekly interval: (weekday 0 = Monday, start minute of the day, end minute of the day).
WeeklyInterval = tuple[int, int, int]

#: An agent station: ("expert", site index) for an expert kiosk, ("vc", -1) for a standard VC room.
Station = tuple[str, int]


@dataclass(frozen=True)
class PhaseWindow:
    """A phase's time window in simulation minutes (0 = midnight of the first simulated day).

    Attributes:
        index: the phase's position in the scenario.
        name: the phase's name.
        start_date, end_date: first day, and the day after the last (exclusive).
        start_min, end_min: the same in simulation minutes.
    """

    index: int
    name: str
    start_date: dt.date
    end_date: dt.date  # exclusive
    start_min: float
    end_min: float

    @property
    def duration_days(self) -> float:
        """Length of the phase, days."""
        return (self.end_date - self.start_date).days


@dataclass(frozen=True)
class Stream:
    """Reachable demand of one service at one user kiosk during one phase.

    Attributes:
        phase, site, service: indices.
        rate_per_year: expected arrivals per year.
        intervals_min: weekly windows when the kiosk is open and the service holds slots.
        commune_idx: the communes feeding the stream; ``commune_p`` their shares (sum 1).
        gen1_only_experts: a generation-1 kiosk: only expert stations (not VC rooms) can answer.
    """

    phase: int
    site: int
    service: int
    rate_per_year: float
    intervals_min: tuple[WeeklyInterval, ...]
    commune_idx: np.ndarray
    commune_p: np.ndarray
    gen1_only_experts: bool


@dataclass(frozen=True)
class Segment:
    """The part of a phase inside one calendar year: arrivals and needs unmet before arrival are drawn
    per segment, at the year's demand multipliers.

    Attributes:
        year: the calendar year.
        start_date, end_date: first day, and the day after the last (exclusive).
        from_min, to_min: the same in simulation minutes.
        warmup: the segment lies before the phase's start (the warm-up of the first phase): simulated,
            never counted.
    """

    year: int
    start_date: dt.date
    end_date: dt.date
    from_min: float
    to_min: float
    warmup: bool = False

    @property
    def years(self) -> float:
        """Length, model years (days / 365)."""
        return (self.end_date - self.start_date).days / DAYS_PER_YEAR


#: Who an unmet need is attributed to: (site index or -1 for no kiosk at all, service index, reason).
UnmetKey = tuple[int, int, str]


@dataclass(frozen=True)
class PhaseConfig:
    """Everything the simulation needs about one phase, precomputed.

    Attributes:
        window: the phase's dates and minutes.
        installed_user, installed_expert: site indices installed during the phase.
        generation: site index -> kiosk generation during the phase.
        agents: agents on duty per service.
        stations: per service, the agent stations in use (see :data:`Station`).
        streams: the reachable demand streams (base rates: the year's drivers multiply them).
        unmet_rate_per_year: (site, service, reason) -> expected needs per year (base rate) unmet for a
            reason decided before arrival (``too_far``: attributed to the commune's nearest kiosk, -1 if
            none; ``gen1_limit``, ``no_agent``: to the kiosk).
        unmet_communes: the same keys -> (commune indices, their shares): where those needs arise.
        population_within_15km, population_within_30km: inhabitants whose nearest kiosk is that close.
        slot_minutes: per service, slot minutes in the phase window.
        kiosk_open_minutes: booth-minutes of opening of the installed user kiosks in the window.
        sim_from_min: where the phase's simulated arrivals start (the warm-up's start for phase 0).
        segments: the phase cut by calendar years (the first phase's warm-up included).
        site_open_minutes: site index -> booth-minutes (user kiosk) or station-minutes of its service's
            slots (expert kiosk) in the window, for per-site utilisation.
        offered_erlangs: per service, the load offered to its agents (expected interviews in the phase x
            mean duration / slot minutes of the phase, yearly drivers included).
        nearest_km: per commune, the road distance to its nearest user kiosk in the phase (inf without).
    """

    window: PhaseWindow
    installed_user: tuple[int, ...]
    installed_expert: tuple[int, ...]
    generation: dict[int, int]
    agents: tuple[int, ...]
    stations: tuple[tuple[Station, ...], ...]
    streams: tuple[Stream, ...]
    unmet_rate_per_year: dict[UnmetKey, float]
    unmet_communes: dict[UnmetKey, tuple[np.ndarray, np.ndarray]]
    population_within_15km: float
    population_within_30km: float
    slot_minutes: tuple[float, ...]
    kiosk_open_minutes: float
    sim_from_min: float
    segments: tuple[Segment, ...] = ()
    site_open_minutes: dict[int, float] = field(default_factory=dict)
    offered_erlangs: tuple[float, ...] = ()
    nearest_km: np.ndarray | None = None

    def unstable(self, service: int) -> bool:
        """The offered load reaches the service's stations (Erlang: no steady state)."""
        load = self.offered_erlangs[service]
        return load > 0 and load >= len(self.stations[service])

    @property
    def unmet_expected(self) -> dict[tuple[int, str], float]:
        """(service, reason) -> expected needs unmet before arrival over the phase at base rates (no
        yearly driver)."""
        years = self.window.duration_days / DAYS_PER_YEAR
        out: dict[tuple[int, str], float] = {}
        for (_site, service, reason), rate in self.unmet_rate_per_year.items():
            out[(service, reason)] = out.get((service, reason), 0.0) + rate * years
        return out


#: An interview's quality: (MOS, speech MOS, video MOS, usable share).
Quality = tuple[float, float, float, float]


def quality_parts(q: InterviewQuality) -> Quality:
    """(MOS, speech MOS, video MOS, usable share) of a :class:`twin.quality.InterviewQuality`."""
    video = min(v for v in (q.video_mos_up, q.video_mos_down) if v is not None)
    return (q.mos, q.speech_mos, video, math.nan if q.usable is None else float(q.usable))


def worst_hop(parts: Sequence[Quality]) -> Quality:
    """The quality of a call whose kiosk side crosses several hops in series (the kiosk's line, then its
    exchange's backhaul), each scored as if it were the kiosk's line: each part the worst over the hops
    (a part not measured, nan, is left out). One hop: its quality unchanged. ASSUMPTION: the bottleneck
    hop sets the call's quality; the few ms the other hops add are left out (docs/facts.md)."""
    if len(parts) == 1:
        return parts[0]
    worst = [min((v for v in values if not math.isnan(v)), default=math.nan) for values in zip(*parts)]
    return (worst[0], worst[1], worst[2], worst[3])


@dataclass(frozen=True)
class ModelInputs:
    """A scenario compiled for simulation (no randomness; shared by all replications).

    Attributes:
        scenario_name: the scenario's name.
        service_ids, site_ids: ids in index order.
        phases: one :class:`PhaseConfig` per phase.
        sim_start_date: the first simulated day (warm-up included).
        warmup_min, horizon_min: warm-up length and simulation end, minutes.
        durations: per service, the interview duration distribution.
        patience_min: per service, how long a walk-in citizen waits (inf for appointments).
        site_lines, office_lines: the lines of the sites and of the services' offices.
        links: every line calls cross, as one list: the sites' lines (index = site), then the services'
            office lines (index ``n_sites + service``: the line each standard VC room sits behind, one
            call on it), then the offices'
            own lines (``offices[].line``, shared by the expert kiosks at that office), then the
            exchanges' backhauls (the last ``len(backhaul_keys)``, :class:`twin.line.Backhaul`).
        station_link: per site, the link its calls cross on its side: a user kiosk its own line, an
            expert kiosk its own line or its office's shared line.
        link_shared: per link, whether calls can cross it at once (several booths, stations, rooms or
            kiosks behind one exchange): only there does the shared-link rule
            (:meth:`twin.line.Link.shared_by`) apply.
        site_backhaul: per site, the link of its exchange's backhaul, which its calls cross after its
            own line (``sites[].exchange``), or -1.
        backhaul_keys: stable keys of the exchanges whose backhauls end ``links`` (their outage streams).
        kiosk_count: booths (user kiosks) or stations (expert kiosks) per site.
        commune_to_office_km: road distance to each service's nearest office, shape (n_communes, n_services).
        quality_model: scores each interview.
        profiles: kiosk generation -> encoder profile.
        site_keys, service_keys: stable integer keys of the sites and services (from their ids), for the
            random streams of each entity (twin.model.replication.SeedStreams).
        demand_multiplier: (service index, year) -> product of the yearly drivers' factors (1 without
            drivers).
        commune_departement: departement code of each commune.
        site_departement, site_commune: departement code and commune name of each site (its place's
            commune, or the nearest commune to its coordinates).
        mos_memo: quality keyed by (kiosk line or backhaul, agent line, generation): scoring is deterministic, so the
            memo is shared by all replications run from these inputs.
    """

    scenario_name: str
    service_ids: tuple[str, ...]
    site_ids: tuple[str, ...]
    phases: tuple[PhaseConfig, ...]
    sim_start_date: dt.date
    warmup_min: float
    horizon_min: float
    durations: tuple[DurationSpec, ...]
    patience_min: tuple[float, ...]
    site_lines: tuple[AdslLine, ...]
    office_lines: tuple[AdslLine, ...]
    kiosk_count: tuple[int, ...]
    commune_to_office_km: np.ndarray
    quality_model: QualityModel
    profiles: dict[int, EncoderProfile]
    site_keys: tuple[int, ...] = ()
    service_keys: tuple[int, ...] = ()
    demand_multiplier: dict[tuple[int, int], float] = field(default_factory=dict)
    commune_departement: tuple[str, ...] = ()
    site_departement: tuple[str, ...] = ()
    site_commune: tuple[str, ...] = ()
    site_kind: tuple[str, ...] = ()
    links: tuple[AdslLine, ...] = ()
    station_link: tuple[int, ...] = ()
    link_shared: tuple[bool, ...] = ()
    site_backhaul: tuple[int, ...] = ()
    backhaul_keys: tuple[int, ...] = ()
    mos_memo: dict[tuple[Link, AdslLine, int], Quality] = field(default_factory=dict, compare=False, repr=False)

    def kiosk_side(self, site: int) -> tuple[int, ...]:
        """The links a user kiosk's calls cross on its side, in order: its line, then its exchange's
        backhaul if it has one."""
        backhaul = self.site_backhaul[site] if self.site_backhaul else -1
        return (site,) if backhaul < 0 else (site, backhaul)

    def path_quality(self, kiosk_side: Sequence[Link], agent_line: AdslLine, gen: int) -> Quality:
        """Quality of an interview whose kiosk side crosses ``kiosk_side`` (each hop as one call sees it,
        :meth:`twin.line.Link.shared_by`) and whose agent sits behind ``agent_line``: each hop scored by
        the quality model against the agent's line, then the worst hop (:func:`worst_hop`). Scores are
        memoised in :attr:`mos_memo`."""
        parts = []
        for hop in kiosk_side:
            key = (hop, agent_line, gen)
            part = self.mos_memo.get(key)
            if part is None:
                part = self.mos_memo[key] = quality_parts(self.quality_model.score(hop, agent_line,  # type: ignore[arg-type]
                                                                                   self.profiles[gen]))
            parts.append(part)
        return worst_hop(parts)


def open_minutes(intervals: Sequence[WeeklyInterval], start: dt.date, end: dt.date) -> float:
    """Minutes covered by weekly intervals between two dates (end exclusive)."""
    per_weekday = [0.0] * 7
    for day, s, e in intervals:
        per_weekday[day] += e - s
    days = (end - start).days
    full_weeks, rest = divmod(days, 7)
    total = full_weeks * sum(per_weekday)
    for k in range(rest):
        total += per_weekday[(start.weekday() + k) % 7]
    return total


#: Distances computed at once when looking for each commune's nearest kiosk (bounds memory: 4 million
#: float64 distances, 32 MB).
NEAREST_BLOCK_CELLS = 4_000_000


@dataclass(frozen=True)
class _Region:
    """The geometry and calendar shared by every phase of one scenario."""

    population: np.ndarray  # (n_communes,)
    departement: np.ndarray  # (n_communes,) codes
    commune_latlon: np.ndarray  # (n_communes, 2) degrees
    site_latlon: np.ndarray  # (n_sites, 2) degrees
    circuity: float
    commune_to_office: np.ndarray  # (n_communes, n_services) km to the nearest office
    sim_start: dt.date
    sim_end: dt.date  # exclusive
    slot_intervals: tuple[list[WeeklyInterval], ...]  # per service
    site_hours: tuple[list[WeeklyInterval], ...]  # per site

    @classmethod
    def of(cls, loaded: LoadedScenario) -> _Region:
        spec = loaded.spec
        communes = loaded.communes
        commune_latlon = np.array([(c.lat, c.lon) for c in communes])
        circuity = spec.region.circuity_factor
        site_latlon = np.array([loaded.site_latlon[s.id] for s in spec.sites]).reshape(-1, 2)
        commune_to_office = np.column_stack([
            road_distance_matrix_km(commune_latlon, np.array(loaded.office_latlon[s.id]), circuity).min(axis=1)
            for s in spec.services])
        first = spec.phases[0].start_date
        default_hours = weekly_intervals_min(spec.demand.default_opening_hours)
        return cls(
            population=np.array([c.population for c in communes], dtype=float),
            departement=np.array([c.departement_code for c in communes]),
            commune_latlon=commune_latlon,
            site_latlon=site_latlon,
            circuity=circuity,
            commune_to_office=commune_to_office,
            sim_start=first - dt.timedelta(days=spec.simulation.warmup_days),
            sim_end=spec.simulation.end_date + dt.timedelta(days=1),
            slot_intervals=tuple(weekly_intervals_min(s.slots) for s in spec.services),
            site_hours=tuple(weekly_intervals_min(s.opening_hours) if s.opening_hours else default_hours
                             for s in spec.sites),
        )

    def nearest(self, sites: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Per commune: the position (in ``sites``) of the nearest site by road, and its distance, km.
        Computed in blocks of communes, so memory stays bounded on a national scenario (the numbers are
        those of the full matrix: the same distance per pair, the first minimum on ties)."""
        n = len(self.population)
        pos, km = np.zeros(n, dtype=np.int64), np.zeros(n)
        targets = self.site_latlon[list(sites)]
        step = max(1, NEAREST_BLOCK_CELLS // max(1, len(sites)))
        for start in range(0, n, step):
            dist = road_distance_matrix_km(self.commune_latlon[start:start + step], targets, self.circuity)
            block = dist.argmin(axis=1)
            pos[start:start + step] = block
            km[start:start + step] = dist[np.arange(len(block)), block]
        return pos, km

    def minute_of(self, day: dt.date) -> float:
        """Simulation minute of midnight of ``day``."""
        return float((day - self.sim_start).days * MIN_PER_DAY)


@dataclass
class _Rollout:
    """The network's state as phases are applied in order (sites installed, generations, agents)."""

    installed: set[int]
    generation: dict[int, int]
    agents: list[int]

    def apply(self, phase: PhaseSpec, site_index: dict[str, int], svc_index: dict[str, int]) -> None:
        for sid in phase.add:
            self.installed.add(site_index[sid])
        for sid in phase.upgrade:
            self.generation[site_index[sid]] = 2
        for sid in phase.remove:
            self.installed.discard(site_index[sid])
        for svc, n in phase.agents.items():
            self.agents[svc_index[svc]] = n


def _stations(spec: Scenario, experts: tuple[int, ...], agents: list[int]) -> list[tuple[Station, ...]]:
    """Per service, the stations agents use: its expert kiosks' stations then its VC rooms, at most as
    many as agents on duty."""
    sites = spec.sites
    stations: list[tuple[Station, ...]] = []
    for k, svc in enumerate(spec.services):
        own = [("expert", i) for i in experts if sites[i].services[0] == svc.id for _ in range(sites[i].kiosk_count)]
        vc = [("vc", -1)] * svc.standard_vc_rooms
        stations.append(tuple((own + vc)[: agents[k]]) if agents[k] < len(own) + len(vc) else tuple(own + vc))
    return stations


def _nearest_kiosks(region: _Region, users: tuple[int, ...], spec: Scenario) -> tuple[np.ndarray, np.ndarray,
                                                                                       np.ndarray, float, float]:
    """Per commune: position (in ``users``) of the nearest user kiosk, its road distance, the share of
    needs that come to it (distance decay); and the population within 15 and 30 km of a kiosk."""
    demand = spec.demand
    n = len(region.population)
    if not users:
        return np.zeros(n, dtype=int), np.full(n, np.inf), np.zeros(n), 0.0, 0.0
    nearest_pos, nearest_km = region.nearest(users)
    within = nearest_km <= demand.max_kiosk_distance_km
    kiosk_share = np.where(within, np.exp(-nearest_km / demand.distance_decay_km), 0.0)
    pop15 = float(region.population[nearest_km <= 15.0].sum())
    pop30 = float(region.population[nearest_km <= 30.0].sum())
    return nearest_pos, nearest_km, kiosk_share, pop15, pop30


def _groups(nearest_pos: np.ndarray, users: tuple[int, ...]) -> list[tuple[int, np.ndarray]]:
    """(site, the communes whose nearest kiosk it is, ascending) per user kiosk; (-1, all) without any:
    one stable sort instead of a mask over every commune per kiosk (national scale)."""
    if not users:
        return [(-1, np.arange(len(nearest_pos)))]
    order = np.argsort(nearest_pos, kind="stable")
    bounds = np.searchsorted(nearest_pos[order], np.arange(len(users) + 1))
    return [(site, order[bounds[pos]:bounds[pos + 1]]) for pos, site in enumerate(users)]


def _unmet_too_far(lost: np.ndarray, groups: list[tuple[int, np.ndarray]], k: int, unmet: dict[UnmetKey, float],
                   communes: dict[UnmetKey, tuple[np.ndarray, np.ndarray]]) -> None:
    """Needs lost to distance, per year, attributed to each commune's nearest kiosk (-1: no kiosk)."""
    for site, members in groups:
        rate = float(lost[members].sum())
        if rate > 0:
            idx = members[lost[members] > 0]
            unmet[(site, k, "too_far")] = rate
            communes[(site, k, "too_far")] = (idx, lost[idx] / rate)


def _demand_streams(spec: Scenario, region: _Region, p: int, users: tuple[int, ...], generation: dict[int, int],
                    stations: list[tuple[Station, ...]],
                    ) -> tuple[list[Stream], dict[UnmetKey, float], dict[UnmetKey, tuple[np.ndarray, np.ndarray]],
                               float, float, np.ndarray]:
    """A phase's demand streams per (kiosk, service), the needs per year unmet before arrival with where
    they arise, the population within 15 and 30 km of a kiosk (base rates: no yearly driver), and each
    commune's road distance to its nearest kiosk."""
    sites, demand = spec.sites, spec.demand
    nearest_pos, nearest_km, kiosk_share, pop15, pop30 = _nearest_kiosks(region, users, spec)
    groups = _groups(nearest_pos, users)
    unmet: dict[UnmetKey, float] = {}
    unmet_communes: dict[UnmetKey, tuple[np.ndarray, np.ndarray]] = {}
    streams: list[Stream] = []
    for k, svc in enumerate(spec.services):
        office_km = region.commune_to_office[:, k]
        # a video interview is worth the trip to a kiosk only where the office is far
        potential = (region.population * svc.need_per_capita_per_year * demand.kiosk_uptake
                     * -np.expm1(-office_km / demand.distance_decay_km))
        if svc.departements is not None:
            potential = np.where(np.isin(region.departement, svc.departements), potential, 0.0)
        share = np.where(nearest_km < office_km, kiosk_share, 0.0)
        _unmet_too_far(potential * (1.0 - share), groups, k, unmet, unmet_communes)
        for site, members in (groups if users else []):
            members = members[share[members] > 0]
            contrib = potential[members] * share[members]
            rate = float(contrib.sum())
            if rate <= 0:
                continue
            gen = generation[site]
            usable = [st for st in stations[k] if gen == 2 or st[0] == "expert"]
            intervals = tuple(intersect_weekly(region.site_hours[site], region.slot_intervals[k]))
            reason = ("gen1_limit" if gen == 1 and svc.id not in sites[site].services
                      else "no_agent" if not usable or not intervals else None)
            if reason is not None:
                unmet[(site, k, reason)] = rate
                unmet_communes[(site, k, reason)] = (members, contrib / rate)
                continue
            streams.append(Stream(p, site, k, rate, intervals, members, contrib / rate, gen == 1))
    return streams, unmet, unmet_communes, pop15, pop30, nearest_km


def _segments(start: dt.date, end: dt.date, sim_from: dt.date, region: _Region) -> tuple[Segment, ...]:
    """[sim_from, end) cut at each 1 January; parts before ``start`` are warm-up."""
    cuts = [sim_from] + [dt.date(y, 1, 1) for y in range(sim_from.year + 1, end.year + 1)
                         if sim_from < dt.date(y, 1, 1) < end]
    if sim_from < start and start not in cuts:
        cuts.append(start)
    cuts = sorted(set(cuts)) + [end]
    return tuple(Segment(a.year, a, b, region.minute_of(a), region.minute_of(b), warmup=b <= start)
                 for a, b in zip(cuts[:-1], cuts[1:]) if b > a)


def _site_open_minutes(spec: Scenario, region: _Region, users: tuple[int, ...], experts: tuple[int, ...],
                       start: dt.date, end: dt.date) -> dict[int, float]:
    """Booth-minutes of opening per user kiosk, station-minutes of its service's slots per expert kiosk."""
    sites = spec.sites
    svc_index = {svc.id: k for k, svc in enumerate(spec.services)}
    out = {i: open_minutes(tuple(region.site_hours[i]), start, end) * sites[i].kiosk_count for i in users}
    for i in experts:
        slots = region.slot_intervals[svc_index[sites[i].services[0]]]
        out[i] = open_minutes(tuple(slots), start, end) * sites[i].kiosk_count
    return out


def _phase_config(spec: Scenario, region: _Region, p: int, rollout: _Rollout,
                  multipliers: dict[tuple[int, int], float]) -> PhaseConfig:
    """The :class:`PhaseConfig` of phase ``p``, the rollout having applied phases 0..p."""
    sites, phase = spec.sites, spec.phases[p]
    start_date = phase.start_date
    end_date = spec.phases[p + 1].start_date if p + 1 < len(spec.phases) else region.sim_end
    window = PhaseWindow(p, phase.name, start_date, end_date, region.minute_of(start_date), region.minute_of(end_date))
    # the first phase also runs through the warm-up, which is discarded
    sim_from = region.sim_start if p == 0 else start_date
    users = tuple(sorted(i for i in rollout.installed if sites[i].kind == "user"))
    experts = tuple(sorted(i for i in rollout.installed if sites[i].kind == "expert"))
    stations = _stations(spec, experts, rollout.agents)
    streams, unmet, unmet_communes, pop15, pop30, nearest_km = _demand_streams(spec, region, p, users,
                                                                               rollout.generation, stations)
    slot_minutes = tuple(open_minutes(tuple(region.slot_intervals[k]), start_date, end_date)
                         for k in range(len(spec.services)))
    site_open = _site_open_minutes(spec, region, users, experts, start_date, end_date)
    segments = _segments(start_date, end_date, sim_from, region)
    offered = _offered_erlangs(spec, streams, segments, slot_minutes, multipliers)
    return PhaseConfig(
        window=window, installed_user=users, installed_expert=experts, generation=dict(rollout.generation),
        agents=tuple(rollout.agents), stations=tuple(stations), streams=tuple(streams), unmet_rate_per_year=unmet,
        unmet_communes=unmet_communes, population_within_15km=pop15, population_within_30km=pop30,
        slot_minutes=slot_minutes, kiosk_open_minutes=sum(site_open[i] for i in users),
        sim_from_min=region.minute_of(sim_from), segments=segments, site_open_minutes=site_open,
        offered_erlangs=offered, nearest_km=nearest_km,
    )


def _offered_erlangs(spec: Scenario, streams: list[Stream], segments: tuple[Segment, ...],
                     slot_minutes: tuple[float, ...], multipliers: dict[tuple[int, int], float]) -> tuple[float, ...]:
    """Per service: expected interviews of the phase (drivers included) x mean duration / slot minutes."""
    expected = [0.0] * len(spec.services)
    for seg in segments:
        if seg.warmup:
            continue
        for stream in streams:
            expected[stream.service] += stream.rate_per_year * seg.years * multipliers.get((stream.service, seg.year),
                                                                                           1.0)
    return tuple(expected[k] * svc.interview_duration.mean_min / slot_minutes[k] if slot_minutes[k] > 0 else 0.0
                 for k, svc in enumerate(spec.services))


def stable_key(text: str) -> int:
    """A stable 32-bit key of an identifier (CRC-32 of its UTF-8 bytes): the same id gets the same random
    streams in every scenario and process."""
    return zlib.crc32(text.encode("utf-8"))


def _demand_multipliers(spec: Scenario) -> dict[tuple[int, int], float]:
    """(service index, year) -> product of the factors of the yearly drivers concerning the service."""
    out: dict[tuple[int, int], float] = {}
    for k, svc in enumerate(spec.services):
        for year in spec.simulated_years():
            factor = 1.0
            for driver in spec.demand.drivers:
                if driver.services is None or svc.id in driver.services:
                    factor *= driver.factor(year)
            out[(k, year)] = factor
    return out


def _site_places(loaded: LoadedScenario) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Departement code and commune name of each site: its place's commune, else the nearest commune."""
    communes = loaded.communes
    index = CommuneIndex(communes)
    latlon = np.array([(c.lat, c.lon) for c in communes])
    deps, names = [], []
    for site in loaded.spec.sites:
        if site.place.commune is not None:
            commune = index.commune(site.place.commune)
        else:
            lat, lon = loaded.site_latlon[site.id]
            scale = np.cos(np.radians(lat))
            commune = communes[int(np.argmin((latlon[:, 0] - lat) ** 2 + ((latlon[:, 1] - lon) * scale) ** 2))]
        deps.append(commune.departement_code)
        names.append(commune.name)
    return tuple(deps), tuple(names)


def prepare(loaded: LoadedScenario, quality_model: QualityModel) -> ModelInputs:
    """Compile a loaded scenario into :class:`ModelInputs` (deterministic, no randomness).

    Args:
        loaded: a scenario from :func:`twin.scenario.loading.load_scenario` or
            :func:`twin.scenario.loading.scenario_from_data`.
        quality_model: the model scoring interviews (see :func:`twin.quality.quality_for_scenario`).
    """
    spec = loaded.spec
    services, sites = spec.services, spec.sites
    service_ids = tuple(s.id for s in services)
    site_ids = tuple(s.id for s in sites)
    svc_index = {sid: i for i, sid in enumerate(service_ids)}
    site_index = {sid: i for i, sid in enumerate(site_ids)}
    region = _Region.of(loaded)
    rollout = _Rollout(installed=set(), generation={i: s.generation for i, s in enumerate(sites)},
                       agents=[s.agents for s in services])
    multipliers = _demand_multipliers(spec)
    phase_configs = []
    for p, phase in enumerate(spec.phases):
        rollout.apply(phase, site_index, svc_index)
        phase_configs.append(_phase_config(spec, region, p, rollout, multipliers))
    patience = tuple(math.inf if s.booking == "appointment" else spec.demand.patience_min for s in services)
    site_departement, site_commune = _site_places(loaded)
    links, station_link, link_shared, site_backhaul, backhaul_keys = _links(loaded)
    inputs = ModelInputs(
        scenario_name=spec.name,
        service_ids=service_ids,
        site_ids=site_ids,
        phases=tuple(phase_configs),
        sim_start_date=region.sim_start,
        warmup_min=float(spec.simulation.warmup_days * MIN_PER_DAY),
        horizon_min=region.minute_of(region.sim_end),
        durations=tuple(s.interview_duration for s in services),
        patience_min=patience,
        site_lines=tuple(build_line(s.line) for s in sites),
        office_lines=tuple(build_line(s.office_line) for s in services),
        kiosk_count=tuple(s.kiosk_count for s in sites),
        commune_to_office_km=region.commune_to_office,
        quality_model=quality_model,
        profiles={1: profile_for_generation(1), 2: profile_for_generation(2)},
        site_keys=tuple(stable_key(sid) for sid in site_ids),
        service_keys=tuple(stable_key(sid) for sid in service_ids),
        demand_multiplier=multipliers,
        commune_departement=tuple(c.departement_code for c in loaded.communes),
        site_departement=site_departement,
        site_commune=site_commune,
        site_kind=tuple(s.kind for s in sites),
        links=links,
        station_link=station_link,
        link_shared=link_shared,
        site_backhaul=site_backhaul,
        backhaul_keys=backhaul_keys,
    )
    quality_sources(inputs)  # a kiosk line the quality model cannot score is refused before the first event
    return inputs


def _links(loaded: LoadedScenario) -> tuple[tuple[Link, ...], tuple[int, ...], tuple[bool, ...], tuple[int, ...],
                                             tuple[int, ...]]:
    """The scenario's links, each site's station link, which links calls can share, each site's backhaul
    link (-1: none) and the backhauls' exchange keys (see :class:`ModelInputs`)."""
    spec = loaded.spec
    sites, services = spec.sites, spec.services
    links: list[Link] = [build_line(s.line) for s in sites] + [build_line(s.office_line) for s in services]
    # a service's VC rooms are not placed at its offices: each is taken behind a line of its own
    # (office_line), so calls to them never share one (agents sharing a line: offices[].line)
    calls = [s.kiosk_count for s in sites] + [min(1, s.standard_vc_rooms) for s in services]
    office_link: dict[tuple[int, int], int] = {}
    station_link = list(range(len(sites)))
    for k, site in enumerate(sites):
        place = loaded.office_of_expert.get(site.id)
        if place is None:
            continue
        if place not in office_link:
            office_link[place] = len(links)
            links.append(build_line(services[place[0]].offices[place[1]].line))
            calls.append(0)
        station_link[k] = office_link[place]
        calls[station_link[k]] += site.kiosk_count
    named = {s.exchange for s in sites if s.exchange is not None}
    backhaul_link: dict[str, int] = {}
    for exchange in spec.exchanges:  # in the scenario's order, those a site names
        if exchange.id in named:
            backhaul_link[exchange.id] = len(links)
            links.append(build_backhaul(exchange.backhaul))
            calls.append(0)
    site_backhaul = [-1] * len(sites)
    for k, site in enumerate(sites):
        if site.exchange is not None:
            site_backhaul[k] = backhaul_link[site.exchange]
            calls[site_backhaul[k]] += site.kiosk_count
    return (tuple(links), tuple(station_link), tuple(c > 1 for c in calls), tuple(site_backhaul),
            tuple(stable_key(e) for e in backhaul_link))


def quality_sources(inputs: ModelInputs) -> list[dict[str, object]]:
    """The score every installed user kiosk's interviews get in each phase and where it comes from:
    one dict per (phase, site) with ``phase``, ``site_id``, ``generation``, ``offer``, ``loop_length_m``,
    ``loss_pct``, ``mos``, ``speech_mos``, ``video_mos``, ``usable`` and ``source`` (the quality model's
    :attr:`twin.quality.InterviewQuality.source`). The agent side is the first service's office line, one
    call; a kiosk behind an exchange gets the worst hop of its line and the backhaul, one call on each
    (:meth:`ModelInputs.path_quality`).

    Raises:
        TwinInputError: the quality model cannot score a kiosk's line (alone, and as each of its booths'
            concurrent calls sees it) or its backhaul (message prefixed with the site), or an agent's line
            the phase's kiosks call (:func:`_check_agent_lines`).
    """
    rows: list[dict[str, object]] = []
    agent = inputs.office_lines[0]
    for cfg in inputs.phases:
        for site in cfg.installed_user:
            gen = cfg.generation[site]
            line = inputs.site_lines[site]
            hops = inputs.kiosk_side(site)
            try:
                q = inputs.quality_model.score(line, agent, inputs.profiles[gen])
                video = min(v for v in (q.video_mos_up, q.video_mos_down) if v is not None)
                mos, speech, usable, source = q.mos, q.speech_mos, q.usable, q.source
                booths = inputs.kiosk_count[site] if inputs.link_shared and inputs.link_shared[site] else 1
                for n in range(2, booths + 1):  # the line as each of n booths' concurrent calls sees it
                    inputs.quality_model.score(line.shared_by(n), agent, inputs.profiles[gen])
                if len(hops) > 1:  # the worst hop of the kiosk's line and its exchange's backhaul, one call
                    mos, speech, video, worst_usable = inputs.path_quality([inputs.links[k] for k in hops], agent, gen)
                    usable = None if usable is None else worst_usable
                    source = f"{source}; the worst hop with its exchange's backhaul"
            except (TwinInputError, AttributeError) as exc:  # AttributeError: a model that scores ADSL lines only
                raise TwinInputError(f"site {inputs.site_ids[site]!r} (generation {gen}): {exc}") from None
            rows.append({"phase": cfg.window.name, "site_id": inputs.site_ids[site], "generation": gen,
                         "offer": line.offer.name, "loop_length_m": line.loop_length_m, "loss_pct": line.loss_pct,
                         "mos": mos, "speech_mos": speech, "video_mos": video,
                         "usable": usable, "source": source})
        _check_agent_lines(inputs, cfg)
    return rows


def _check_agent_lines(inputs: ModelInputs, cfg: PhaseConfig) -> None:
    """Score every agent line a phase's kiosks can call (expert kiosks' lines, offices' shared lines, the
    line of each standard VC room, which generation-2 kiosks reach), as each of the calls its stations can
    hold at once sees it, against a kiosk of each generation installed: the quality model scores the
    agent's line too (:meth:`twin.quality.CalibrationTable.score`), so one it cannot score is refused here.

    Raises:
        TwinInputError: naming the agent's line, the generation and what the model lacks.
    """
    kiosk_of_gen = {cfg.generation[site]: site for site in reversed(cfg.installed_user)}
    n_sites = len(inputs.site_ids)
    for gen, site in sorted(kiosk_of_gen.items()):
        stations: dict[int, int] = {}
        where: dict[int, str] = {}
        experts: dict[int, dict[str, None]] = {}  # per office line, the expert kiosks behind it in order
        for service, tokens in enumerate(cfg.stations):
            for kind, index in tokens:
                if kind == "expert":
                    link = inputs.station_link[index]
                    experts.setdefault(link, {})[inputs.site_ids[index]] = None
                    names = ", ".join(map(repr, experts[link]))
                    where[link] = (f"the line of expert kiosk {names}" if link == index
                                   else f"the office line shared by expert kiosks {names}")
                elif gen == 2:  # generation-1 kiosks reach expert kiosks only
                    link = n_sites + service
                    where[link] = f"the line of service {inputs.service_ids[service]!r}'s VC rooms (office_line)"
                else:
                    continue
                stations[link] = stations.get(link, 0) + 1
        for link, count in stations.items():
            agent = inputs.links[link]
            shares = range(1, count + 1) if inputs.link_shared and inputs.link_shared[link] else (1,)
            try:
                for n in shares:
                    inputs.quality_model.score(inputs.site_lines[site], agent.shared_by(n),  # type: ignore[arg-type]
                                               inputs.profiles[gen])
            except (TwinInputError, AttributeError) as exc:
                raise TwinInputError(f"{where[link]} (generation-{gen} calls, phase {cfg.window.name}): {exc}") from None


__all__ = [
    "ModelInputs",
    "PhaseConfig",
    "PhaseWindow",
    "Quality",
    "Segment",
    "Station",
    "Stream",
    "UnmetKey",
    "WeeklyInterval",
    "open_minutes",
    "prepare",
    "quality_parts",
    "quality_sources",
    "stable_key",
    "worst_hop",
]
