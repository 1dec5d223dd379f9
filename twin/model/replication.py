"""One replication of the network as a small object: its SimPy environment, resources and counters, with
the model's processes as methods (as Ciw delegates to nodes and servers).

:func:`simulate` is the entry point: ``simulate(inputs, seed)`` returns the replication's
:class:`twin.model.records.ReplicationRecords`.

Randomness comes only from the seed, split into independent streams per entity and purpose
(:class:`SeedStreams`): each line's outages, each (kiosk, service) stream's arrivals in each calendar-year
segment of a phase (times, communes, durations), each count of needs unmet before arrival. The keys are
the entities' ids and dates, not their positions, so that the same seed gives the same draws to the same
commune, site and service whatever else a scenario changes (common random numbers): phases two
scenarios share give identical results.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np
import simpy

from twin.line import OutageSchedule
from twin.model.inputs import DAYS_PER_YEAR, ModelInputs, PhaseConfig, Quality, Segment, Stream
from twin.model.records import UNMET_EVENT_COLUMNS, ReplicationRecords, ServedColumns
from twin.model.resources import AgentPool, BoothPool, Token
from twin.scenario.spec import DurationSpec
from twin.vocabulary import MIN_PER_DAY, UNMET_REASONS

#: Purposes of the random streams (the first element of a stream's key).
OUTAGES_SITE, OUTAGES_OFFICE, ARRIVALS, UNMET_COUNTS, UNMET_DETAIL, OUTAGES_SHARED_OFFICE = 1, 2, 3, 4, 5, 6
OUTAGES_BACKHAUL = 7

#: Key standing for "no kiosk" (needs too far from any kiosk), above every 32-bit entity key.
NO_SITE_KEY = 2**32


class SeedStreams:
    """Independent random generators per entity and purpose, all derived from one replication seed.

    ``rng(purpose, *keys)`` is a PCG64 generator seeded by ``SeedSequence(entropy, spawn_key=base +
    (purpose, *keys))``: the same key always gives the same stream; different keys give independent
    streams (NumPy's SeedSequence hashing).

    Args:
        seed: the replication's seed (a ``SeedSequence`` from ``spawn``, or an int).
    """

    def __init__(self, seed: np.random.SeedSequence | int) -> None:
        ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        self._entropy = ss.entropy
        self._base = tuple(ss.spawn_key)

    def rng(self, purpose: int, *keys: int) -> np.random.Generator:
        """The generator of ``purpose`` for the entity ``keys`` (non-negative integers)."""
        seq = np.random.SeedSequence(self._entropy, spawn_key=self._base + (purpose, *keys))
        return np.random.Generator(np.random.PCG64(seq))


def sample_durations(spec: DurationSpec, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` interview durations (minutes) from a service's distribution: fixed, exponential (mean), or
    lognormal with the given mean and standard deviation."""
    if spec.distribution == "fixed":
        return np.full(n, spec.mean_min)
    if spec.distribution == "exponential":
        return rng.exponential(spec.mean_min, n)
    sigma2 = math.log(1.0 + (spec.sd_min / spec.mean_min) ** 2)
    mu = math.log(spec.mean_min) - sigma2 / 2
    return rng.lognormal(mu, math.sqrt(sigma2), n)


def arrival_times(intervals_min: tuple[tuple[int, int, int], ...], rate_per_year: float, from_min: float,
                  to_min: float, start_date: dt.date, rng: np.random.Generator) -> np.ndarray:
    """Poisson arrivals at ``rate_per_year`` in [from_min, to_min), uniform over the weekly open
    ``intervals_min`` (simulation minutes; ``start_date`` is the date of minute 0). Sorted.

    The days of the window are whole days (``from_min`` and ``to_min`` fall at midnight); the yearly
    rate is spread evenly over the open minutes of the window.
    """
    days_from = int(from_min // MIN_PER_DAY)
    days_to = int(math.ceil(to_min / MIN_PER_DAY))
    weekday0 = start_date.weekday()
    starts_parts, lengths_parts = [], []
    for day, s, e in intervals_min:
        first = days_from + (day - weekday0 - days_from) % 7  # first day of the window on that weekday
        days = np.arange(first, days_to, 7, dtype=float)
        starts_parts.append(days * MIN_PER_DAY + s)
        lengths_parts.append(np.full(len(days), float(e - s)))
    if not starts_parts:
        return np.empty(0)
    starts_a = np.concatenate(starts_parts)
    if not len(starts_a):
        return np.empty(0)
    order = np.argsort(starts_a, kind="stable")
    starts_a = starts_a[order]
    cum = np.concatenate(([0.0], np.cumsum(np.concatenate(lengths_parts)[order])))
    total_open = cum[-1]
    rate_per_open_min = rate_per_year / (total_open / (days_to - days_from) * DAYS_PER_YEAR)
    n = rng.poisson(rate_per_open_min * total_open)
    u = np.sort(rng.uniform(0.0, total_open, n))
    k = np.searchsorted(cum, u, side="right") - 1
    return starts_a[k] + (u - cum[k])


class Citizen(NamedTuple):
    """A need arriving at a kiosk: when, in which stream (``order``: its position, for ties), from which
    commune, how long its interview would last, in which calendar year and phase (-1: the warm-up)."""

    arrival_min: float
    order: int
    stream: Stream
    commune: int
    duration_min: float
    year: int
    phase: int


class _SharedCall:
    """An interview on links calls can share: its links (the kiosk side's, then the agent's), kiosk
    generation, start, the quality it has at the current concurrency (since ``since``) and the
    quality-minutes accumulated before (per part)."""

    __slots__ = ("area", "gen", "links", "quality", "since", "start")

    def __init__(self, links: tuple[int, ...], gen: int, start: float) -> None:
        self.links, self.gen = links, gen
        self.start = self.since = start
        self.area = [0.0, 0.0, 0.0, 0.0]
        self.quality: Quality = (0.0, 0.0, 0.0, 0.0)

    def accumulate(self, now: float) -> None:
        """Add the minutes since ``since`` at the current quality."""
        dt_min = now - self.since
        self.area = [a + dt_min * q for a, q in zip(self.area, self.quality)]
        self.since = now


@dataclass(frozen=True)
class CarriedInterview:
    """How an interview carried outside the model (a live emulated call) went: its measured MOS and its
    quality (MOS, speech, video, usable), or a failure (``failed``), ``cause`` in words, and whether a line
    outage ended it (``line_down``)."""

    mos: float | None
    quality: Quality | None = None
    failed: bool = False
    line_down: bool = False
    cause: str = ""


class InterviewCarrier(Protocol):
    """Carries some interviews instead of the model's timeout (the hybrid twin's live calls): the
    replication asks :meth:`carries` once an agent station is reserved, and if so waits for the event
    :meth:`interview` returns (value: a :class:`CarriedInterview`) instead of the drawn duration."""

    def carries(self, replication: Replication, citizen: Citizen, token: Token) -> bool:
        """Whether this interview (the citizen, the station reserved) is carried outside the model."""

    def interview(self, replication: Replication, citizen: Citizen, token: Token) -> simpy.Event:
        """Start carrying it; the event fires when it ends, its value a :class:`CarriedInterview`."""


class Replication:
    """One replication: build with the compiled inputs and a seed, then :meth:`run`.

    Args:
        inputs: the compiled scenario (:func:`twin.model.inputs.prepare`).
        seed: the replication's seed (a ``SeedSequence`` from ``spawn``, or an int). Arrivals, durations,
            outages and aggregate counts use independent child streams, so changing one part of a
            scenario does not shift the random numbers of the others.
        progress: optional callback receiving the simulated fraction (0..1) at each phase end.
        keep_records: also keep one row per unmet need (for ``twin run --records``).

    :meth:`run` is :meth:`start`, ``env.run(until=inputs.horizon_min)`` and :meth:`finish`; the hybrid twin
    calls them itself to drive part of the horizon from an asyncio loop with :attr:`carrier` set.
    """

    def __init__(self, inputs: ModelInputs, seed: np.random.SeedSequence | int,
                 progress: Callable[[float], None] | None = None, keep_records: bool = False) -> None:
        self.carrier: InterviewCarrier | None = None  # carries some interviews instead of the model
        self.streams = SeedStreams(seed)
        self.inputs = inputs
        self.progress = progress
        self.env = simpy.Environment()
        n_phases, n_services, n_sites = len(inputs.phases), len(inputs.service_ids), len(inputs.site_ids)
        horizon_s = inputs.horizon_min * 60.0
        self.site_up = [OutageSchedule.from_mtbf(line.mtbf_h, line.mttr_h, horizon_s,
                                                 self.streams.rng(OUTAGES_SITE, inputs.site_keys[i]))
                        for i, line in enumerate(inputs.site_lines)]
        self.office_up = [OutageSchedule.from_mtbf(line.mtbf_h, line.mttr_h, horizon_s,
                                                   self.streams.rng(OUTAGES_OFFICE, inputs.service_keys[k]))
                          for k, line in enumerate(inputs.office_lines)]
        n_links, n_backhauls = len(inputs.links), len(inputs.backhaul_keys)
        base, first_backhaul = n_sites + n_services, n_links - n_backhauls
        self.link_up = self.site_up + self.office_up + [  # offices' own lines, shared by their expert kiosks
            OutageSchedule.from_mtbf(line.mtbf_h, line.mttr_h, horizon_s,
                                     self.streams.rng(OUTAGES_SHARED_OFFICE, k - base))
            for k, line in enumerate(inputs.links[base:first_backhaul], start=base)] + [  # exchanges' backhauls
            OutageSchedule.from_mtbf(line.mtbf_h, line.mttr_h, horizon_s, self.streams.rng(OUTAGES_BACKHAUL, key))
            for key, line in zip(inputs.backhaul_keys, inputs.links[first_backhaul:])]
        self.backhaul_up = [None if k < 0 else self.link_up[k] for k in inputs.site_backhaul] or [None] * n_sites
        self.link_calls = [0] * n_links  # calls crossing each link now
        self.on_link: list[list[_SharedCall]] = [[] for _ in range(n_links)]
        self.served = ServedColumns()
        self.unmet: dict[tuple[int, int, int, int, str], int] = {}
        self.unmet_events: dict[str, list] | None = ({k: [] for k in UNMET_EVENT_COLUMNS} if keep_records
                                                     else None)
        self.kiosk_busy = np.zeros((n_phases, n_sites))
        self.station_busy = np.zeros((n_phases, n_sites))
        self.agent_busy = np.zeros((n_phases, n_services))
        self.kiosks: dict[int, BoothPool] = {}
        ids = itertools.count(1)
        self.agents = [AgentPool(self.env, ids) for _ in range(n_services)]
        self.arrived: dict[tuple[int, int, int, int], int] = {}
        self.active: dict[int, Citizen] = {}  # with keep_records: citizens not yet served nor unmet
        self.cut_by_outage = np.zeros(n_phases)
        self._mos: dict[tuple, Quality] = {}  # by (site, station, gen) or (links, gen, calls on each)

    def run(self) -> ReplicationRecords:
        """Simulate to the horizon and return the records."""
        self.start()
        self.env.run(until=self.inputs.horizon_min)
        return self.finish()

    def start(self) -> None:
        """Create the model's processes (nothing runs until the environment does)."""
        self.env.process(self.controller())

    def finish(self) -> ReplicationRecords:
        """The records, once the environment has run to the horizon."""
        if self.unmet_events is not None:  # needs still waiting or in interview: pending
            for citizen in self.active.values():
                self._event_row(citizen.phase, citizen, "pending")
        events = None if self.unmet_events is None else {
            k: np.asarray(v, dtype=object if k == "reason" else float if k == "arrival_min" else np.int64)
            for k, v in self.unmet_events.items()}
        return ReplicationRecords(served=self.served.arrays(), unmet_counts=self.unmet, kiosk_busy_min=self.kiosk_busy,
                                  station_busy_min=self.station_busy, agent_busy_min=self.agent_busy,
                                  unmet_events=events, arrived=self.arrived, cut_by_outage=self.cut_by_outage)

    # -- bookkeeping -------------------------------------------------------------------------

    def add_unmet(self, phase: int, citizen: Citizen, reason: str) -> None:
        """Count one need unmet during the simulation (not during the warm-up)."""
        if phase < 0:
            return
        key = (phase, citizen.year, citizen.stream.site, citizen.stream.service, reason)
        self.unmet[key] = self.unmet.get(key, 0) + 1
        if self.unmet_events is not None:
            self._event_row(phase, citizen, reason)

    def _event_row(self, phase: int, citizen: Citizen, reason: str) -> None:
        assert self.unmet_events is not None
        for column, value in zip(UNMET_EVENT_COLUMNS, (phase, citizen.year, citizen.stream.service,
                                                       citizen.stream.site, citizen.commune,
                                                       citizen.arrival_min, reason)):
            self.unmet_events[column].append(value)

    def mos_for(self, site: int, service: int, token: Token, gen: int) -> tuple[float, float, float, float]:
        """Interview (MOS, speech MOS, video MOS, usable share) for a kiosk, the agent's station and the
        kiosk's generation, one call on each link (a kiosk behind an exchange: the worst hop of its line
        and the backhaul; memoised per replication by indices, and across replications by lines in
        ``inputs.mos_memo``)."""
        key = (site, token[2] if token[1] == "expert" else -1 - service, gen)
        mos = self._mos.get(key)
        if mos is None:
            inputs = self.inputs
            agent_line = (inputs.links[inputs.station_link[token[2]]] if token[1] == "expert"
                          else inputs.office_lines[service])
            mos = self._mos[key] = inputs.path_quality([inputs.links[k] for k in inputs.kiosk_side(site)],
                                                       agent_line, gen)
        return mos

    # -- processes ---------------------------------------------------------------------------

    def citizen(self, c: Citizen):
        """A citizen with a need: a booth at the kiosk, the kiosk's line, an agent (walk-ins give up after
        their patience), the station's line, the interview (cut short if a line goes down during it)."""
        env, stream = self.env, c.stream
        service, site = stream.service, stream.site
        if c.phase >= 0:
            key = (c.phase, c.year, site, service)
            self.arrived[key] = self.arrived.get(key, 0) + 1
            if self.unmet_events is not None:
                self.active[id(c)] = c
        booths = self.kiosks[site]
        patience = self.inputs.patience_min[service]
        waiting = booths.acquire(patience)
        if waiting is not None and (yield waiting) is None:
            return self._unmet(c, "gave_up")
        t_booth = env.now
        backhaul_up = self.backhaul_up[site]
        if not self.site_up[site].is_up(t_booth * 60.0) or (backhaul_up is not None
                                                            and not backhaul_up.is_up(t_booth * 60.0)):
            booths.release()
            return self._unmet(c, "line_down")
        agents = self.agents[service]
        remaining = patience if patience == math.inf else max(0.0, patience - (t_booth - c.arrival_min))
        token = agents.acquire(stream.gen1_only_experts, remaining)
        if not isinstance(token, tuple):
            token = yield token
            if token is None:
                booths.release()
                return self._unmet(c, "gave_up", t_booth)
        line = (self.link_up[self.inputs.station_link[token[2]]] if token[1] == "expert"
                else self.office_up[service])
        now_s = env.now * 60.0
        if not line.is_up(now_s):
            agents.release(token)
            booths.release()
            return self._unmet(c, "line_down", t_booth)
        wait = env.now - c.arrival_min
        if self.carrier is not None and self.carrier.carries(self, c, token):
            yield from self._carried(c, t_booth, wait, token)
            return
        cut_s = min(self.site_up[site].next_down_s(now_s), line.next_down_s(now_s))
        if backhaul_up is not None:
            cut_s = min(cut_s, backhaul_up.next_down_s(now_s))
        if cut_s < now_s + c.duration_min * 60.0:
            shared = self._start_shared(c, token)
            yield env.timeout(cut_s / 60.0 - env.now)
            agents.release(token)
            booths.release()
            if shared is not None:
                self._end_shared(shared)
            if c.phase >= 0:
                self.cut_by_outage[c.phase] += 1
            return self._unmet(c, "line_down", t_booth)
        shared = self._start_shared(c, token)
        yield env.timeout(c.duration_min)
        agents.release(token)
        booths.release()
        quality = None if shared is None else self._end_shared(shared)
        if c.phase >= 0:
            self._record_interview(c, t_booth, wait, token, quality)

    # -- shared links --------------------------------------------------------------------------

    def agent_link(self, service: int, token: Token) -> int:
        """The link the agent's station sits behind: an expert kiosk's station link, else the service's
        office line (its standard VC rooms)."""
        return self.inputs.station_link[token[2]] if token[1] == "expert" else len(self.inputs.site_ids) + service

    def _start_shared(self, c: Citizen, token: Token) -> _SharedCall | None:
        """Count an interview on its links (the kiosk's line, its exchange's backhaul if any, the agent's
        line) when one of them can carry several calls at once or is a backhaul; None otherwise (its MOS
        is then the one-call MOS, :meth:`mos_for`)."""
        inputs = self.inputs
        site, service = c.stream.site, c.stream.service
        links = (*inputs.kiosk_side(site), self.agent_link(service, token))
        if len(links) == 2 and not (inputs.link_shared[links[0]] or inputs.link_shared[links[1]]):
            return None
        gen = inputs.phases[c.phase].generation[site] if c.phase >= 0 else 1
        call = _SharedCall(links, gen, self.env.now)
        for link in links:
            self._recount(link, +1)
            self.on_link[link].append(call)
        call.quality = self._shared_quality(call)
        return call

    def _end_shared(self, call: _SharedCall) -> Quality:
        """Take an interview off its links; its quality, the time average over the concurrency it met."""
        now = self.env.now
        call.accumulate(now)
        for link in call.links:
            self.on_link[link].remove(call)
            self._recount(link, -1)
        if now <= call.start:
            return call.quality
        a = call.area
        span = now - call.start
        return (a[0] / span, a[1] / span, a[2] / span, a[3] / span)

    def _recount(self, link: int, delta: int) -> None:
        """One call more or less on ``link``: the calls already on it change MOS from now."""
        now = self.env.now
        self.link_calls[link] += delta
        for call in self.on_link[link]:
            call.accumulate(now)
            call.quality = self._shared_quality(call)

    def _shared_quality(self, call: _SharedCall) -> Quality:
        """Quality of a call with the links shared by the calls on them now (the shared-link rule)."""
        return self.quality_on(call.links, call.gen, tuple(self.link_calls[link] for link in call.links))

    def quality_on(self, links: tuple[int, ...], gen: int, calls: tuple[int, ...]) -> Quality:
        """Quality of an interview crossing ``links`` (the kiosk side's, then the agent's, as
        :attr:`twin.model.inputs.ModelInputs.links` indices) with ``calls[i]`` calls on link ``i`` at once
        (the shared-link rule, :meth:`twin.line.Link.shared_by`, on each; the worst kiosk-side hop,
        :meth:`twin.model.inputs.ModelInputs.path_quality`)."""
        key = (links, gen, calls)
        mos = self._mos.get(key)
        if mos is None:
            inputs = self.inputs
            shared = [inputs.links[link].shared_by(max(1, n)) for link, n in zip(links, calls)]
            mos = self._mos[key] = inputs.path_quality(shared[:-1], shared[-1], gen)  # type: ignore[arg-type]
        return mos

    def _carried(self, c: Citizen, t_booth: float, wait: float, token: Token):
        """An interview carried by :attr:`carrier`: its measured MOS, or unmet as ``line_down`` if it
        failed (counted as cut by an outage when an outage ended it). While it runs it counts on its links
        as a modelled one does, so the modelled interviews sharing them score as in the model alone."""
        shared = self._start_shared(c, token)
        outcome: CarriedInterview = yield self.carrier.interview(self, c, token)  # type: ignore[union-attr]
        if shared is not None:
            self._end_shared(shared)
        self.agents[c.stream.service].release(token)
        self.kiosks[c.stream.site].release()
        if outcome.failed:
            if c.phase >= 0 and outcome.line_down:
                self.cut_by_outage[c.phase] += 1
            return self._unmet(c, "line_down", t_booth)
        if c.phase >= 0:
            self._record_interview(c, t_booth, wait, token, outcome.quality)
        return None

    def _unmet(self, c: Citizen, reason: str, t_booth: float | None = None) -> None:
        """A need that ends unmet during the simulation; the booth time it took, if it had one."""
        self.add_unmet(c.phase, c, reason)
        if c.phase >= 0 and t_booth is not None:
            self.kiosk_busy[c.phase, c.stream.site] += self.env.now - t_booth
        if self.unmet_events is not None:
            self.active.pop(id(c), None)

    def _record_interview(self, c: Citizen, t_booth: float, wait: float, token: Token,
                          quality: Quality | None = None) -> None:
        inputs, stream, commune, phase = self.inputs, c.stream, c.commune, c.phase
        service, site = stream.service, stream.site
        self.kiosk_busy[phase, site] += self.env.now - t_booth
        self.agent_busy[phase, service] += c.duration_min
        station_site = token[2] if token[1] == "expert" else -1
        if station_site >= 0:
            self.station_busy[phase, station_site] += c.duration_min
        avoided = 2.0 * max(0.0, inputs.commune_to_office_km[commune, service]
                            - inputs.phases[stream.phase].nearest_km[commune])
        gen = inputs.phases[phase].generation[site]
        mos, speech, video, usable = self.mos_for(site, service, token, gen) if quality is None else quality
        self.served.append(phase, c.year, service, site, station_site, commune, c.arrival_min, wait,
                           c.duration_min, mos, avoided, speech, video, usable)
        if self.unmet_events is not None:
            self.active.pop(id(c), None)

    def _segment_citizens(self, cfg: PhaseConfig, segment: Segment) -> list[Citizen]:
        """The citizens of every stream arriving in a segment, in time order (ties: stream order). Each
        stream draws its arrival times, communes and durations from its own generator."""
        inputs = self.inputs
        citizens: list[Citizen] = []
        for j, stream in enumerate(cfg.streams):
            rng = self.streams.rng(ARRIVALS, inputs.site_keys[stream.site], inputs.service_keys[stream.service],
                                   segment.start_date.toordinal())
            rate = stream.rate_per_year * inputs.demand_multiplier.get((stream.service, segment.year), 1.0)
            times = arrival_times(stream.intervals_min, rate, segment.from_min, segment.to_min,
                                  inputs.sim_start_date, rng)
            if not len(times):
                continue
            communes = stream.commune_idx[rng.choice(len(stream.commune_idx), size=len(times), p=stream.commune_p)]
            durations = sample_durations(inputs.durations[stream.service], rng, len(times))
            phase = -1 if segment.warmup else cfg.window.index
            citizens += [Citizen(t, j, stream, c, d, segment.year, phase)
                         for t, c, d in zip(times.tolist(), communes.tolist(), durations.tolist())]
        citizens.sort(key=lambda c: (c.arrival_min, c.order))
        return citizens

    def arrivals(self, cfg: PhaseConfig):
        """The phase's citizens, segment by segment (calendar years), merged in time order."""
        env = self.env
        for segment in cfg.segments:
            if segment.from_min > env.now:
                yield env.timeout(segment.from_min - env.now)
            for citizen in self._segment_citizens(cfg, segment):
                if citizen.arrival_min > env.now:
                    yield env.timeout(citizen.arrival_min - env.now)
                env.process(self.citizen(citizen))

    def count_unmet_before_arrival(self, p: int, cfg: PhaseConfig) -> None:
        """Needs unmet for reasons decided before arrival (too far, generation-1 limit, no agent): a
        Poisson count per (site, service, reason) and calendar-year segment, each from its own stream."""
        inputs = self.inputs
        for segment in cfg.segments:
            if segment.warmup:
                continue
            for (site, service, reason), rate in sorted(cfg.unmet_rate_per_year.items()):
                expected = rate * segment.years * inputs.demand_multiplier.get((service, segment.year), 1.0)
                if expected <= 0:
                    continue
                key = (inputs.site_keys[site] if site >= 0 else NO_SITE_KEY, inputs.service_keys[service],
                       UNMET_REASONS.index(reason), segment.start_date.toordinal())
                count = int(self.streams.rng(UNMET_COUNTS, *key).poisson(expected))
                if count:
                    full = (p, segment.year, site, service, reason)
                    self.unmet[full] = self.unmet.get(full, 0) + count
                    if self.unmet_events is not None:
                        self._unmet_details(full, count, cfg.unmet_communes[(site, service, reason)], segment, key)

    def _unmet_details(self, full_key: tuple[int, int, int, int, str], count: int,
                       communes: tuple[np.ndarray, np.ndarray], segment: Segment, key: tuple[int, ...]) -> None:
        """Records of needs unmet before arrival: times uniform over the segment, communes by their share
        (a stream of their own: asking for records changes no other draw)."""
        rng = self.streams.rng(UNMET_DETAIL, *key)
        times = np.sort(rng.uniform(segment.from_min, segment.to_min, count))
        where = communes[0][rng.choice(len(communes[0]), size=count, p=communes[1])]
        p, year, site, service, reason = full_key
        events = self.unmet_events
        assert events is not None
        for t, c in zip(times.tolist(), where.tolist()):
            for column, value in zip(UNMET_EVENT_COLUMNS, (p, year, service, site, c, t, reason)):
                events[column].append(value)

    def controller(self):
        """Applies each phase at its start: kiosks, agent stations, needs unmet before arrival, arrivals."""
        env, inputs = self.env, self.inputs
        n_phases = len(inputs.phases)
        for p, cfg in enumerate(inputs.phases):
            start = cfg.sim_from_min
            if start > env.now:
                yield env.timeout(start - env.now)
            for site in cfg.installed_user:
                if site not in self.kiosks:
                    self.kiosks[site] = BoothPool(env, inputs.kiosk_count[site])
            for k, agents in enumerate(self.agents):
                agents.replace(cfg.stations[k])
            self.count_unmet_before_arrival(p, cfg)
            env.process(self.arrivals(cfg))
            if self.progress is not None:
                env.process(self._report(cfg.window.end_min, (p + 1) / n_phases))

    def _report(self, at_min: float, fraction: float):
        yield self.env.timeout(max(0.0, at_min - self.env.now))
        self.progress(fraction)  # type: ignore[misc]


def simulate(inputs: ModelInputs, seed: np.random.SeedSequence | int,
             progress: Callable[[float], None] | None = None, keep_records: bool = False) -> ReplicationRecords:
    """Run one replication (see :class:`Replication`) and return its records (with one row per unmet
    need, :attr:`ReplicationRecords.unmet_events`, when ``keep_records``)."""
    return Replication(inputs, seed, progress, keep_records).run()


__all__ = ["CarriedInterview", "Citizen", "InterviewCarrier", "Replication", "SeedStreams", "arrival_times", "sample_durations",
           "simulate"]
