"""One replication of the network as a small object: its SimPy environment, resources and counters, with
the model's processes as methods (as Ciw delegates to nodes and servers).

:func:`simulate` is the entry point: ``simulate(inputs, seed)`` returns the replication's
:class:`twin.model.records.ReplicationRecords`. Randomness comes only from the seed, split into
independent streams per purpose (arrivals, durations, outages, aggregate counts).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Callable, Iterator

import numpy as np
import simpy

from twin.line import OutageSchedule
from twin.model.inputs import DAYS_PER_YEAR, ModelInputs, PhaseConfig, Station, Stream
from twin.model.records import ReplicationRecords, ServedColumns
from twin.scenario.spec import DurationSpec
from twin.vocabulary import MIN_PER_DAY

#: An agent token in a service's station store: (unique id, station kind, site index or -1).
Token = tuple[int, str, int]


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


def arrival_times(stream: Stream, from_min: float, to_min: float, start_date: dt.date,
                  rng: np.random.Generator) -> np.ndarray:
    """Poisson arrivals of a stream in [from_min, to_min), uniform over its open minutes (simulation
    minutes; ``start_date`` is the weekday of minute 0)."""
    days_from = int(from_min // MIN_PER_DAY)
    days_to = int(math.ceil(to_min / MIN_PER_DAY))
    weekday0 = start_date.weekday()
    starts, lengths = [], []
    weekly: dict[int, list[tuple[int, int]]] = {}
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


class AgentStations:
    """The agent stations of one service as tokens in a SimPy FilterStore.

    At a phase start :meth:`replace` swaps the station set: idle tokens go at once; busy ones are retired
    and vanish when their interview ends (capacity may briefly exceed the new set at the boundary).

    Args:
        env: the replication's environment.
        ids: a counter of token ids shared by every service of the replication.
    """

    def __init__(self, env: simpy.Environment, ids: Iterator[int]) -> None:
        self.store = simpy.FilterStore(env)
        self._ids = ids
        self._live: list[Token] = []
        self._retired: set[int] = set()

    def get(self, experts_only: bool) -> simpy.events.Event:
        """A request for a token (an expert station only, for a generation-1 kiosk)."""
        if experts_only:
            return self.store.get(lambda tok: tok[1] == "expert")
        return self.store.get()

    def give_back(self, token: Token) -> None:
        """Return a token after its interview (a retired one is dropped)."""
        if token[0] in self._retired:
            self._retired.discard(token[0])
        else:
            self.store.put(token)

    def replace(self, wanted: tuple[Station, ...]) -> None:
        """Replace the stations by ``wanted`` (see the class docstring)."""
        idle = {tok[0] for tok in self.store.items}
        for tok in self._live:
            if tok[0] not in idle:
                self._retired.add(tok[0])
        self.store.items.clear()
        self._live = []
        for kind, site in wanted:
            token = (next(self._ids), kind, site)
            self._live.append(token)
            self.store.put(token)


class Replication:
    """One replication: build with the compiled inputs and a seed, then :meth:`run`.

    Args:
        inputs: the compiled scenario (:func:`twin.model.inputs.prepare`).
        seed: the replication's seed (a ``SeedSequence`` from ``spawn``, or an int). Arrivals, durations,
            outages and aggregate counts use independent child streams, so changing one part of a
            scenario does not shift the random numbers of the others.
        progress: optional callback receiving the simulated fraction (0..1) at each phase end.
    """

    def __init__(self, inputs: ModelInputs, seed: np.random.SeedSequence | int,
                 progress: Callable[[float], None] | None = None) -> None:
        ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        self.rng_arrival, self.rng_duration, self.rng_outage, self.rng_counts = (
            np.random.default_rng(s) for s in ss.spawn(4))
        self.inputs = inputs
        self.progress = progress
        self.env = simpy.Environment()
        n_phases, n_services = len(inputs.phases), len(inputs.service_ids)
        horizon_s = inputs.horizon_min * 60.0
        self.site_up = [OutageSchedule.from_mtbf(line.mtbf_h, line.mttr_h, horizon_s, self.rng_outage)
                        for line in inputs.site_lines]
        self.office_up = [OutageSchedule.from_mtbf(line.mtbf_h, line.mttr_h, horizon_s, self.rng_outage)
                          for line in inputs.office_lines]
        self.served = ServedColumns()
        self.unmet: dict[tuple[int, int, str], int] = {}
        self.kiosk_busy = np.zeros(n_phases)
        self.agent_busy = np.zeros((n_phases, n_services))
        self.kiosks: dict[int, simpy.Resource] = {}
        ids = itertools.count(1)
        self.stations = [AgentStations(self.env, ids) for _ in range(n_services)]

    def run(self) -> ReplicationRecords:
        """Simulate to the horizon and return the records."""
        self.env.process(self.controller())
        self.env.run(until=self.inputs.horizon_min)
        return ReplicationRecords(served=self.served.arrays(), unmet=self.unmet, kiosk_busy_min=self.kiosk_busy,
                                  agent_busy_min=self.agent_busy)

    # -- bookkeeping -------------------------------------------------------------------------

    def phase_of(self, t_min: float) -> int:
        """Index of the phase at simulation minute ``t_min`` (-1 during the warm-up)."""
        for cfg in reversed(self.inputs.phases):
            if t_min >= cfg.window.start_min:
                return cfg.window.index
        return -1

    def add_unmet(self, phase: int, service: int, reason: str) -> None:
        """Count one unmet need (not during the warm-up)."""
        if phase >= 0:
            key = (phase, service, reason)
            self.unmet[key] = self.unmet.get(key, 0) + 1

    def mos_for(self, site: int, service: int, token: Token, gen: int) -> float:
        """Interview MOS for a kiosk, the agent's station and the kiosk's generation (memoised)."""
        inputs = self.inputs
        agent_line = inputs.site_lines[token[2]] if token[1] == "expert" else inputs.office_lines[service]
        key = (inputs.site_lines[site], agent_line, gen)
        mos = inputs.mos_memo.get(key)
        if mos is None:
            mos = inputs.mos_memo[key] = inputs.quality_model.score(key[0], agent_line, inputs.profiles[gen]).mos
        return mos

    def _station_up(self, service: int, token: Token) -> bool:
        up = self.site_up[token[2]] if token[1] == "expert" else self.office_up[service]
        return up.is_up(self.env.now * 60.0)

    # -- processes ---------------------------------------------------------------------------

    def citizen(self, t_arrival: float, stream: Stream, commune: int, duration: float):
        """A citizen with a need: a booth at the kiosk, the lines, an agent, the interview."""
        env, service, site = self.env, stream.service, stream.site
        phase = self.phase_of(t_arrival)
        patience = self.inputs.patience_min[service]
        with self.kiosks[site].request() as booth:
            if math.isinf(patience):
                yield booth
            else:
                result = yield booth | env.timeout(patience)
                if booth not in result:
                    self.add_unmet(phase, service, "gave_up")
                    return
            t_booth = env.now
            if not self.site_up[site].is_up(env.now * 60.0):
                self.add_unmet(phase, service, "line_down")
                return
            token = yield from self._agent(stream, phase, t_arrival, t_booth)
            if token is None:
                return
            wait = env.now - t_arrival
            gen = self.inputs.phases[max(phase, 0)].generation[site]
            yield env.timeout(duration)
            self.stations[service].give_back(token)
            if phase >= 0:
                self._record_interview(phase, stream, commune, t_arrival, t_booth, wait, duration, token, gen)

    def _agent(self, stream: Stream, phase: int, t_arrival: float, t_booth: float):
        """Wait for an agent station (walk-ins give up after their patience) and check its line; the
        token, or None when the need ends unmet."""
        env, service = self.env, stream.service
        patience = self.inputs.patience_min[service]
        get = self.stations[service].get(stream.gen1_only_experts)
        if math.isinf(patience):
            token = yield get
        else:
            remaining = max(0.0, patience - (env.now - t_arrival))
            result = yield get | env.timeout(remaining)
            if get not in result:
                get.cancel()
                self.add_unmet(phase, service, "gave_up")
                if phase >= 0:
                    self.kiosk_busy[phase] += env.now - t_booth
                return None
            token = result[get]
        if not self._station_up(service, token):
            self.stations[service].give_back(token)
            self.add_unmet(phase, service, "line_down")
            if phase >= 0:
                self.kiosk_busy[phase] += env.now - t_booth
            return None
        return token

    def _record_interview(self, phase: int, stream: Stream, commune: int, t_arrival: float, t_booth: float,
                          wait: float, duration: float, token: Token, gen: int) -> None:
        inputs, service, site = self.inputs, stream.service, stream.site
        self.kiosk_busy[phase] += self.env.now - t_booth
        self.agent_busy[phase, service] += duration
        avoided = 2.0 * max(0.0, inputs.commune_to_office_km[commune, service]
                            - inputs.commune_to_site_km[commune, site])
        self.served.append(phase, service, site, t_arrival, wait, duration, self.mos_for(site, service, token, gen),
                           avoided)

    def arrivals(self, cfg: PhaseConfig):
        """The phase's citizens: Poisson arrivals of every stream, merged in time order."""
        env, inputs = self.env, self.inputs
        times, stream_ix = [], []
        for j, stream in enumerate(cfg.streams):
            t = arrival_times(stream, cfg.sim_from_min, cfg.window.end_min, inputs.sim_start_date, self.rng_arrival)
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
            communes[sel] = stream.commune_idx[self.rng_arrival.choice(len(stream.commune_idx), size=n,
                                                                        p=stream.commune_p)]
        service_of = np.array([stream.service for stream in cfg.streams])[all_j]
        for k in range(len(inputs.service_ids)):
            svc_sel = service_of == k
            durations[svc_sel] = sample_durations(inputs.durations[k], self.rng_duration, int(svc_sel.sum()))
        for t, j, c, d in zip(all_t.tolist(), all_j.tolist(), communes.tolist(), durations.tolist()):
            if t > env.now:
                yield env.timeout(t - env.now)
            env.process(self.citizen(t, cfg.streams[j], c, d))

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
                    self.kiosks[site] = simpy.Resource(env, capacity=inputs.kiosk_count[site])
            for k, stations in enumerate(self.stations):
                stations.replace(cfg.stations[k])
            for (service, reason), expected in sorted(cfg.unmet_expected.items()):
                count = int(self.rng_counts.poisson(expected)) if expected > 0 else 0
                if count:
                    self.unmet[(p, service, reason)] = self.unmet.get((p, service, reason), 0) + count
            env.process(self.arrivals(cfg))
            if self.progress is not None:
                env.process(self._report(cfg.window.end_min, (p + 1) / n_phases))

    def _report(self, at_min: float, fraction: float):
        yield self.env.timeout(max(0.0, at_min - self.env.now))
        self.progress(fraction)  # type: ignore[misc]


def simulate(inputs: ModelInputs, seed: np.random.SeedSequence | int,
             progress: Callable[[float], None] | None = None) -> ReplicationRecords:
    """Run one replication (see :class:`Replication`) and return its records."""
    return Replication(inputs, seed, progress).run()


__all__ = ["AgentStations", "Replication", "Token", "arrival_times", "sample_durations", "simulate"]
