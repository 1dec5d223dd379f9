"""The SimPy model of the regional kiosk network: one replication, emitting typed records.

What is modelled (see README "Model" for the assumptions in prose):

- **Demand.** Each commune c has, for each service s, a yearly potential of video interviews
  ``population_c * need_per_capita_per_year_s * kiosk_uptake * (1 - exp(-D / distance_decay_km))``
  where D is the road distance to the service's nearest office: a kiosk is worth using where the office
  is far (travel saved), hardly at all next door (ASSUMPTION, no published source: the office-distance
  factor reuses the kiosk-distance scale ``distance_decay_km``; it was added so that planners do not
  fill cities that have offices). Citizens go to the nearest installed user kiosk at
  road distance d: a share ``exp(-d / distance_decay_km)`` comes when ``d <= max_kiosk_distance_km``
  and ``d < D``; the rest is unmet, reason ``too_far`` (they travel to the office or give up; the model
  does not distinguish).
- **Reachability.** A generation-1 kiosk reaches only the (at most 6) services it is configured with
  (reason ``gen1_limit``); a service with no agent station reachable by the kiosk's generation, no
  agent on duty, or no slot inside the kiosk's opening hours cannot be reached (reason ``no_agent``).
  Generation-2 kiosks also reach a service's standard videoconference rooms (seed article, 2008).
- **Arrivals.** Reachable demand arrives as a Poisson process spread uniformly over the weekly hours
  when both the kiosk is open and the service holds its slots (citizens come when the service can be
  reached). Appointment-mode services never see abandonment (bookings are honoured; the booking lead
  time is not modelled, nor is the calendar capped: an overloaded appointment service shows as long
  waits and agents busy past their slots, i.e. utilisation above 1); walk-in citizens give up after
  ``patience_min`` (reason ``gave_up``).
- **Service.** A citizen takes a booth at the kiosk (``kiosk_count`` booths, FIFO), then an agent at a
  station of the service (FIFO; agents on duty = min(agents, expert stations + VC rooms)). The call
  needs the kiosk's line and the station's line up at its start (else reason ``line_down``); outages
  during a call are not modelled. Interview durations follow the service's distribution.
- **Lines.** Each site line and each service office line fails and is repaired with exponential up
  times (MTBF) and down times (MTTR) (``twin.line.OutageSchedule``).
- **Quality.** Each interview is scored by the scenario's quality model from the two lines and the
  encoder profile of the kiosk's generation (``twin.quality``).
- **Phases.** At each phase start, sites are added, upgraded and removed, agents changed, and demand
  re-routed. Records are labelled with the phase of their arrival; a warm-up before the first phase is
  simulated and discarded.

The core does no I/O and prints nothing: :func:`simulate` takes a :class:`ModelInputs` (built once per
scenario by :func:`prepare`) and a seed, and returns a :class:`ReplicationRecords`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import simpy

from twin.line import AdslLine, OutageSchedule
from twin.profiles import EncoderProfile, profile_for_generation
from twin.quality import QualityModel
from twin.region import road_distance_matrix_km
from twin.scenario import (
    DurationSpec,
    LoadedScenario,
    build_line,
    intersect_weekly,
    weekly_intervals_min,
)

MIN_PER_DAY = 24 * 60
DAYS_PER_YEAR = 365.0

#: Reasons of unmet kiosk demand, in report order.
UNMET_REASONS = ("gen1_limit", "no_agent", "line_down", "too_far", "gave_up")


# --------------------------------------------------------------------------------------------------
# Inputs prepared once per scenario


@dataclass(frozen=True)
class PhaseWindow:
    """A phase's time window in simulation minutes (0 = midnight of the first simulated day)."""

    index: int
    name: str
    start_date: dt.date
    end_date: dt.date  # exclusive
    start_min: float
    end_min: float

    @property
    def duration_days(self) -> float:
        return (self.end_date - self.start_date).days


@dataclass(frozen=True)
class Stream:
    """Reachable demand of one service at one user kiosk during one phase."""

    phase: int
    site: int
    service: int
    rate_per_year: float
    intervals_min: tuple[tuple[int, int, int], ...]  # weekly (weekday, start, end)
    commune_idx: np.ndarray  # communes feeding the stream
    commune_p: np.ndarray  # their shares (sum 1)
    gen1_only_experts: bool  # generation-1 kiosk: only expert stations can answer


@dataclass(frozen=True)
class PhaseConfig:
    """Everything the simulation needs about one phase, precomputed."""

    window: PhaseWindow
    installed_user: tuple[int, ...]
    installed_expert: tuple[int, ...]
    generation: dict[int, int]
    agents: tuple[int, ...]  # per service
    stations: tuple[tuple[tuple[str, int], ...], ...]  # per service: (kind 'expert'|'vc', site idx or -1)
    streams: tuple[Stream, ...]
    unmet_expected: dict[tuple[int, str], float]  # (service, reason) -> expected count in the phase
    population_within_15km: float
    population_within_30km: float
    slot_minutes: tuple[float, ...]  # per service: slot minutes in the phase window
    kiosk_open_minutes: float  # booth-minutes of opening of installed user kiosks in the window
    sim_from_min: float  # where the phase's simulated arrivals start (the warm-up for phase 0)


@dataclass(frozen=True)
class ModelInputs:
    """A scenario compiled for simulation (no randomness; shared by all replications)."""

    scenario_name: str
    service_ids: tuple[str, ...]
    site_ids: tuple[str, ...]
    phases: tuple[PhaseConfig, ...]
    sim_start_date: dt.date
    warmup_min: float
    horizon_min: float
    durations: tuple[DurationSpec, ...]
    patience_min: tuple[float, ...]  # per service (inf for appointments)
    site_lines: tuple[AdslLine, ...]
    office_lines: tuple[AdslLine, ...]
    kiosk_count: tuple[int, ...]
    commune_to_site_km: np.ndarray  # (n_communes, n_sites)
    commune_to_office_km: np.ndarray  # (n_communes, n_services): to the service's nearest office
    quality_model: QualityModel
    profiles: dict[int, EncoderProfile]
    #: MOS memo keyed by (kiosk line, agent line, generation): scoring is deterministic, so the memo
    #: is shared by all replications run from these inputs.
    mos_memo: dict[tuple[AdslLine, AdslLine, int], float] = field(default_factory=dict, compare=False, repr=False)


def _open_minutes(intervals: tuple[tuple[int, int, int], ...] | list, start: dt.date, end: dt.date) -> float:
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


def prepare(loaded: LoadedScenario, quality_model: QualityModel) -> ModelInputs:
    """Compile a loaded scenario into :class:`ModelInputs` (deterministic, no randomness).

    Args:
        loaded: a scenario from :func:`twin.scenario.load_scenario`.
        quality_model: the model scoring interviews (see :func:`twin.quality_for_scenario`).
    """
    spec = loaded.spec
    services = spec.services
    sites = spec.sites
    service_ids = tuple(s.id for s in services)
    site_ids = tuple(s.id for s in sites)
    svc_index = {sid: i for i, sid in enumerate(service_ids)}
    site_index = {sid: i for i, sid in enumerate(site_ids)}
    communes = loaded.communes
    population = np.array([c.population for c in communes], dtype=float)
    commune_latlon = np.array([(c.lat, c.lon) for c in communes])
    circuity = spec.region.circuity_factor
    site_latlon = np.array([loaded.site_latlon[s] for s in site_ids]).reshape(-1, 2)
    commune_to_site = road_distance_matrix_km(commune_latlon, site_latlon, circuity)
    commune_to_office = np.column_stack([
        road_distance_matrix_km(commune_latlon, np.array(loaded.office_latlon[s]), circuity).min(axis=1)
        for s in service_ids])
    departement = np.array([c.departement_code for c in communes])

    demand = spec.demand
    first = spec.phases[0].start_date
    sim_start = first - dt.timedelta(days=spec.simulation.warmup_days)
    sim_end = spec.simulation.end_date + dt.timedelta(days=1)

    def minute_of(day: dt.date) -> float:
        return float((day - sim_start).days * MIN_PER_DAY)

    slot_intervals = [weekly_intervals_min(s.slots) for s in services]
    default_hours = weekly_intervals_min(demand.default_opening_hours)
    site_hours = [weekly_intervals_min(s.opening_hours) if s.opening_hours else default_hours for s in sites]

    installed: set[int] = set()
    generation = {i: s.generation for i, s in enumerate(sites)}
    agents = [s.agents for s in services]
    phase_configs = []
    for p, phase in enumerate(spec.phases):
        for sid in phase.add:
            installed.add(site_index[sid])
        for sid in phase.upgrade:
            generation[site_index[sid]] = 2
        for sid in phase.remove:
            installed.discard(site_index[sid])
        for svc, n in phase.agents.items():
            agents[svc_index[svc]] = n
        start_date = phase.start_date
        end_date = spec.phases[p + 1].start_date if p + 1 < len(spec.phases) else sim_end
        window = PhaseWindow(p, phase.name, start_date, end_date, minute_of(start_date), minute_of(end_date))
        # the first phase also runs through the warm-up, which is discarded
        sim_from = sim_start if p == 0 else start_date
        years = (end_date - start_date).days / DAYS_PER_YEAR

        users = tuple(sorted(i for i in installed if sites[i].kind == "user"))
        experts = tuple(sorted(i for i in installed if sites[i].kind == "expert"))
        stations: list[tuple[tuple[str, int], ...]] = []
        for k, svc in enumerate(services):
            own = [("expert", i) for i in experts if sites[i].services[0] == svc.id for _ in range(sites[i].kiosk_count)]
            vc = [("vc", -1)] * svc.standard_vc_rooms
            stations.append(tuple((own + vc)[: agents[k]]) if agents[k] < len(own) + len(vc) else tuple(own + vc))

        unmet: dict[tuple[int, str], float] = {}
        streams: list[Stream] = []
        if users:
            dist = commune_to_site[:, users]
            nearest_pos = dist.argmin(axis=1)
            nearest_km = dist[np.arange(len(communes)), nearest_pos]
            within = nearest_km <= demand.max_kiosk_distance_km
            kiosk_share = np.where(within, np.exp(-nearest_km / demand.distance_decay_km), 0.0)
            pop15 = float(population[nearest_km <= 15.0].sum())
            pop30 = float(population[nearest_km <= 30.0].sum())
        else:
            nearest_pos = np.zeros(len(communes), dtype=int)
            nearest_km = np.full(len(communes), np.inf)
            kiosk_share = np.zeros(len(communes))
            pop15 = pop30 = 0.0
        for k, svc in enumerate(services):
            office_km = commune_to_office[:, k]
            # a video interview is worth the trip to a kiosk only where the office is far
            potential = (population * svc.need_per_capita_per_year * demand.kiosk_uptake
                         * -np.expm1(-office_km / demand.distance_decay_km))
            if svc.departements is not None:
                potential = np.where(np.isin(departement, svc.departements), potential, 0.0)
            share = np.where(nearest_km < office_km, kiosk_share, 0.0)
            unmet[(k, "too_far")] = float((potential * (1.0 - share)).sum()) * years
            for pos, site in enumerate(users):
                mask = (nearest_pos == pos) & (share > 0)
                contrib = potential[mask] * share[mask]
                rate = float(contrib.sum())
                if rate <= 0:
                    continue
                gen = generation[site]
                if gen == 1 and svc.id not in sites[site].services:
                    unmet[(k, "gen1_limit")] = unmet.get((k, "gen1_limit"), 0.0) + rate * years
                    continue
                usable = [st for st in stations[k] if gen == 2 or st[0] == "expert"]
                intervals = tuple(intersect_weekly(site_hours[site], slot_intervals[k]))
                if not usable or not intervals:
                    unmet[(k, "no_agent")] = unmet.get((k, "no_agent"), 0.0) + rate * years
                    continue
                streams.append(Stream(p, site, k, rate, intervals, np.flatnonzero(mask), contrib / rate, gen == 1))
        slot_minutes = tuple(_open_minutes(tuple(slot_intervals[k]), start_date, end_date) for k in range(len(services)))
        kiosk_open = sum(_open_minutes(tuple(site_hours[i]), start_date, end_date) * sites[i].kiosk_count for i in users)
        phase_configs.append(PhaseConfig(
            window=window, installed_user=users, installed_expert=experts, generation=dict(generation),
            agents=tuple(agents), stations=tuple(stations), streams=tuple(streams), unmet_expected=unmet,
            population_within_15km=pop15, population_within_30km=pop30, slot_minutes=slot_minutes,
            kiosk_open_minutes=kiosk_open, sim_from_min=minute_of(sim_from),
        ))

    patience = tuple(math.inf if s.booking == "appointment" else demand.patience_min for s in services)
    return ModelInputs(
        scenario_name=spec.name,
        service_ids=service_ids,
        site_ids=site_ids,
        phases=tuple(phase_configs),
        sim_start_date=sim_start,
        warmup_min=float(spec.simulation.warmup_days * MIN_PER_DAY),
        horizon_min=minute_of(sim_end),
        durations=tuple(s.interview_duration for s in services),
        patience_min=patience,
        site_lines=tuple(build_line(s.line) for s in sites),
        office_lines=tuple(build_line(s.office_line) for s in services),
        kiosk_count=tuple(s.kiosk_count for s in sites),
        commune_to_site_km=commune_to_site,
        commune_to_office_km=commune_to_office,
        quality_model=quality_model,
        profiles={1: profile_for_generation(1), 2: profile_for_generation(2)},
    )


# --------------------------------------------------------------------------------------------------
# Records


@dataclass
class ReplicationRecords:
    """What one replication emits, as columns (numpy arrays built at the end).

    served: one row per interview with columns phase, service, site, arrival_min, wait_min,
    duration_min, mos, travel_avoided_km. unmet: counts per (phase, service, reason).
    """

    served: dict[str, np.ndarray]
    unmet: dict[tuple[int, int, str], int]
    kiosk_busy_min: np.ndarray  # per phase
    agent_busy_min: np.ndarray  # (phase, service)


def _sample_durations(spec: DurationSpec, rng: np.random.Generator, n: int) -> np.ndarray:
    if spec.distribution == "fixed":
        return np.full(n, spec.mean_min)
    if spec.distribution == "exponential":
        return rng.exponential(spec.mean_min, n)
    # lognormal with the given mean and sd
    sigma2 = math.log(1.0 + (spec.sd_min / spec.mean_min) ** 2)
    mu = math.log(spec.mean_min) - sigma2 / 2
    return rng.lognormal(mu, math.sqrt(sigma2), n)


def _arrival_times(stream: Stream, from_min: float, to_min: float, start_date: dt.date,
                   rng: np.random.Generator) -> np.ndarray:
    """Poisson arrivals of a stream, uniform over its open minutes in [from_min, to_min)."""
    days_from = int(from_min // MIN_PER_DAY)
    days_to = int(math.ceil(to_min / MIN_PER_DAY))
    weekday0 = start_date.weekday()
    starts, lengths = [], []
    weekly = {}
    for day, s, e in stream.intervals_min:
        weekly.setdefault(day, []).append((s, e))
    for d in range(days_from, days_to):
        for s, e in weekly.get((weekday0 + d) % 7, ()):
            starts.append(d * MIN_PER_DAY + s)
            lengths.append(e - s)
    if not starts:
        return np.empty(0)
    starts_a = np.array(starts, dtype=float)
    cum = np.concatenate(([0.0], np.cumsum(lengths, dtype=float)))
    total_open = cum[-1]
    rate_per_open_min = stream.rate_per_year / (total_open / (days_to - days_from) * DAYS_PER_YEAR)
    n = rng.poisson(rate_per_open_min * total_open)
    u = np.sort(rng.uniform(0.0, total_open, n))
    k = np.searchsorted(cum, u, side="right") - 1
    return starts_a[k] + (u - cum[k])


def simulate(inputs: ModelInputs, seed: np.random.SeedSequence | int,
             progress: Callable[[float], None] | None = None) -> ReplicationRecords:
    """Run one replication.

    Args:
        inputs: the compiled scenario (:func:`prepare`).
        seed: the replication's seed (a ``SeedSequence`` from ``spawn``, or an int). Arrivals, durations,
            outages and aggregate counts use independent child streams, so changing one part of a
            scenario does not shift the random numbers of the others.
        progress: optional callback receiving the simulated fraction (0..1) at each phase end.

    Returns:
        The replication's :class:`ReplicationRecords`.
    """
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    rng_arrival, rng_duration, rng_outage, rng_counts = (np.random.default_rng(s) for s in ss.spawn(4))
    env = simpy.Environment()
    n_phases = len(inputs.phases)
    n_services = len(inputs.service_ids)
    horizon_s = inputs.horizon_min * 60.0

    site_up = [OutageSchedule.from_mtbf(line.mtbf_h, line.mttr_h, horizon_s, rng_outage) for line in inputs.site_lines]
    office_up = [OutageSchedule.from_mtbf(line.mtbf_h, line.mttr_h, horizon_s, rng_outage) for line in inputs.office_lines]

    served_cols: dict[str, list] = {k: [] for k in ("phase", "service", "site", "arrival_min", "wait_min",
                                                    "duration_min", "mos", "travel_avoided_km")}
    unmet: dict[tuple[int, int, str], int] = {}
    kiosk_busy = np.zeros(n_phases)
    agent_busy = np.zeros((n_phases, n_services))

    kiosks: dict[int, simpy.Resource] = {}
    stations = [simpy.FilterStore(env) for _ in range(n_services)]
    retired: list[set[int]] = [set() for _ in range(n_services)]
    token_counter = [0]

    def phase_of(t: float) -> int:
        for cfg in reversed(inputs.phases):
            if t >= cfg.window.start_min:
                return cfg.window.index
        return -1  # warm-up

    def add_unmet(phase: int, service: int, reason: str) -> None:
        if phase >= 0:
            key = (phase, service, reason)
            unmet[key] = unmet.get(key, 0) + 1

    def mos_for(site: int, service: int, station: tuple[int, str, int], gen: int) -> float:
        agent_line = inputs.site_lines[station[2]] if station[1] == "expert" else inputs.office_lines[service]
        key = (inputs.site_lines[site], agent_line, gen)
        mos = inputs.mos_memo.get(key)
        if mos is None:
            mos = inputs.mos_memo[key] = inputs.quality_model.score(key[0], agent_line, inputs.profiles[gen]).mos
        return mos

    def citizen(t_arrival: float, stream: Stream, commune: int, duration: float):
        service, site = stream.service, stream.site
        phase = phase_of(t_arrival)
        patience = inputs.patience_min[service]
        kiosk = kiosks[site]
        with kiosk.request() as booth:
            if math.isinf(patience):
                yield booth
            else:
                result = yield booth | env.timeout(patience)
                if booth not in result:
                    add_unmet(phase, service, "gave_up")
                    return
            t_booth = env.now
            if not site_up[site].is_up(env.now * 60.0):
                add_unmet(phase, service, "line_down")
                return
            if stream.gen1_only_experts:
                get = stations[service].get(lambda tok: tok[1] == "expert")
            else:
                get = stations[service].get()
            if math.isinf(patience):
                token = yield get
            else:
                remaining = max(0.0, patience - (env.now - t_arrival))
                result = yield get | env.timeout(remaining)
                if get not in result:
                    get.cancel()
                    add_unmet(phase, service, "gave_up")
                    if phase >= 0:
                        kiosk_busy[phase] += env.now - t_booth
                    return
                token = result[get]
            station_up = site_up[token[2]] if token[1] == "expert" else office_up[service]
            if not station_up.is_up(env.now * 60.0):
                _return_token(service, token)
                add_unmet(phase, service, "line_down")
                if phase >= 0:
                    kiosk_busy[phase] += env.now - t_booth
                return
            wait = env.now - t_arrival
            gen = inputs.phases[max(phase, 0)].generation[site]
            yield env.timeout(duration)
            _return_token(service, token)
            if phase >= 0:
                kiosk_busy[phase] += env.now - t_booth
                agent_busy[phase, service] += duration
                avoided = 2.0 * max(0.0, inputs.commune_to_office_km[commune, service]
                                    - inputs.commune_to_site_km[commune, site])
                for key, value in (("phase", phase), ("service", service), ("site", site),
                                   ("arrival_min", t_arrival), ("wait_min", wait), ("duration_min", duration),
                                   ("mos", mos_for(site, service, token, gen)), ("travel_avoided_km", avoided)):
                    served_cols[key].append(value)

    def _return_token(service: int, token: tuple[int, str, int]) -> None:
        if token[0] in retired[service]:
            retired[service].discard(token[0])
        else:
            stations[service].put(token)

    def set_stations(service: int, wanted: tuple[tuple[str, int], ...]) -> None:
        """Replace a service's agent stations at a phase start. Busy tokens are retired: they vanish
        when their interview ends (capacity may briefly exceed the new set at the boundary)."""
        store = stations[service]
        idle = {tok[0] for tok in store.items}
        for tok in live_tokens[service]:
            if tok[0] not in idle:
                retired[service].add(tok[0])
        store.items.clear()
        live_tokens[service] = []
        for kind, site in wanted:
            token_counter[0] += 1
            token = (token_counter[0], kind, site)
            live_tokens[service].append(token)
            store.put(token)

    live_tokens: list[list[tuple[int, str, int]]] = [[] for _ in range(n_services)]

    def arrivals(cfg: PhaseConfig):
        sim_from = cfg.sim_from_min
        times, stream_ix = [], []
        for j, stream in enumerate(cfg.streams):
            t = _arrival_times(stream, sim_from, cfg.window.end_min, inputs.sim_start_date, rng_arrival)
            times.append(t)
            stream_ix.append(np.full(len(t), j, dtype=np.int64))
        if not times:
            return
        all_t = np.concatenate(times)
        all_j = np.concatenate(stream_ix)
        order = np.lexsort((all_j, all_t))
        all_t, all_j = all_t[order], all_j[order]
        communes = np.empty(len(all_t), dtype=np.int64)
        durations = np.empty(len(all_t))
        for j, stream in enumerate(cfg.streams):
            sel = all_j == j
            n = int(sel.sum())
            communes[sel] = stream.commune_idx[rng_arrival.choice(len(stream.commune_idx), size=n, p=stream.commune_p)]
        service_of = np.array([stream.service for stream in cfg.streams])[all_j]
        for k in range(n_services):
            svc_sel = service_of == k
            durations[svc_sel] = _sample_durations(inputs.durations[k], rng_duration, int(svc_sel.sum()))
        for t, j, c, d in zip(all_t.tolist(), all_j.tolist(), communes.tolist(), durations.tolist()):
            if t > env.now:
                yield env.timeout(t - env.now)
            env.process(citizen(t, cfg.streams[j], c, d))

    def controller():
        for p, cfg in enumerate(inputs.phases):
            start = cfg.sim_from_min
            if start > env.now:
                yield env.timeout(start - env.now)
            for site in cfg.installed_user:
                if site not in kiosks:
                    kiosks[site] = simpy.Resource(env, capacity=inputs.kiosk_count[site])
            for k in range(n_services):
                set_stations(k, cfg.stations[k])
            for (service, reason), expected in sorted(cfg.unmet_expected.items()):
                count = int(rng_counts.poisson(expected)) if expected > 0 else 0
                if count:
                    unmet[(p, service, reason)] = unmet.get((p, service, reason), 0) + count
            env.process(arrivals(cfg))
            end = cfg.window.end_min
            if progress is not None:
                env.process(_report(end, (p + 1) / n_phases))

    def _report(at: float, fraction: float):
        yield env.timeout(max(0.0, at - env.now))
        progress(fraction)  # type: ignore[misc]

    env.process(controller())
    env.run(until=inputs.horizon_min)
    served = {k: np.asarray(v, dtype=float if k not in ("phase", "service", "site") else np.int64)
              for k, v in served_cols.items()}
    return ReplicationRecords(served=served, unmet=unmet, kiosk_busy_min=kiosk_busy, agent_busy_min=agent_busy)


__all__ = ["UNMET_REASONS", "ModelInputs", "PhaseConfig", "ReplicationRecords", "Stream", "prepare", "simulate"]
