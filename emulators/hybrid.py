"""The hybrid twin: a replication of the SimPy model in which the interviews of some sites, inside a time
window, are real emulated calls (aiortc over the emulated line, virtual time), on one clock.

How it runs (:func:`run_hybrid_replication`):

1. the model runs alone up to the window's start (``env.run``), as in any replication;
2. inside the window a :class:`emulators.virtual_time.VirtualClockLoop` is the clock:
   :class:`emulators.cosim.SimPyOnLoop` steps the model on it, and every interview the model routes
   through a live site (:class:`LiveCarrier`, the model's :class:`twin.model.replication.InterviewCarrier`)
   becomes a call set up through the signalling server and service directory
   (:mod:`emulators.signalling`: a generation-1 kiosk reaches its configured services and expert
   stations only) from the kiosk to the station the model gave the citizen. The model waits for the
   call to end exactly as for a modelled interview; the call's measured MOS is the interview's, a call
   that fails leaves the need unmet (``line_down``) with its cause; the outages the model drew for the
   lines during the call are applied to the emulated lines. A call crosses every link the model's
   interview crosses, in series (:class:`twin.line.LinkPath`): the kiosk's line, its exchange's backhaul
   if it has one, the agent's line; each link is one queue for the window, shared by every live call
   that crosses it (:class:`twin.line.ClockedHop`);
3. after the window the model runs alone to the horizon.

Scenarios name no document exchange yet, so the live calls send none (as the calibration calls the
quality model reads). Limits of this version, said in ``live.json`` and the README: each call's media runs at most
``media_s`` seconds (the rest of a longer interview is modelled time, the MOS is the measured part's:
a full day of 30-minute calls costs hours of CPU otherwise); every live kiosk of a window must
have one generation (the encoder profile is process-wide in aiortc); at most ``max_calls`` calls per
window (the rest are modelled and counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emulators.calibrate import calibration_row
from emulators.call import CallSession
from emulators.clocks import clock_backend
from emulators.config import CallConfig
from emulators.cosim import DrivingStopped, SimPyOnLoop
from emulators.encoder_setup import encoder_limits
from emulators.group import GroupContext
from emulators.signalling import KioskIdentity, ServiceDirectory, SignallingServer, SignalRoute, Station
from twin.errors import TwinInputError
from twin.line import ClockedHop, LinkPath, LinkQueue, OutageSchedule
from twin.model.inputs import ModelInputs
from twin.model.records import ReplicationRecords
from twin.model.replication import CarriedInterview, Citizen, Replication
from twin.model.resources import Token
from twin.quality import CalibrationRow, score_call
from twin.run.atomic import atomic_write_json, atomic_write_text
from twin.run.runner import ReplicationOutput, output_of
from twin.scenario.spec import LoadedScenario

MAX_LIVE_CALLS = 200
"""Most live calls a window carries (virtual-network addresses per group: :func:`emulators.virtual_time.call_hosts`)."""

SECONDS_PER_MODEL_MIN = 60.0


class LiveWindowError(TwinInputError):
    """A live window that cannot run: names the option or field and the value (exit status 2)."""


@dataclass(frozen=True)
class LiveWindow:
    """Which user kiosks run live calls, from when to when (local dates and times of the simulated
    calendar), each call's media cap (s) and the most calls the window carries."""

    sites: tuple[str, ...]
    start: dt.datetime
    end: dt.datetime
    media_s: float = 60.0
    max_calls: int = 20
    sample_min: float = 0.0
    named: tuple[str, str] = ("--live", "--live-window")  # how messages name the sites and the window

    @classmethod
    def parse(cls, sites: str, window: str, media_s: float = 60.0, max_calls: int = 20,
              sample_min: float = 0.0) -> LiveWindow:
        """From ``--live SITE[,SITE...]`` and ``--live-window START/END`` (ISO dates or date-times).

        Raises:
            LiveWindowError: no site, a window not of the form START/END, a date that is not ISO, END not
                after START, a media cap outside 1-3600 s or a call count outside 1-MAX_LIVE_CALLS.
        """
        names = tuple(s.strip() for s in sites.split(",") if s.strip())
        if not names:
            raise LiveWindowError(f"--live: no site given ({sites!r})")
        parts = window.split("/")
        if len(parts) != 2:
            raise LiveWindowError(f"--live-window: expected START/END, got {window!r}")
        try:
            start, end = (dt.datetime.fromisoformat(p.strip()) for p in parts)
        except ValueError:
            raise LiveWindowError(f"--live-window: {window!r} is not two ISO dates or date-times") from None
        if end <= start:
            raise LiveWindowError(f"--live-window: the end {parts[1]!r} is not after the start {parts[0]!r}")
        if not 1.0 <= media_s <= 3600.0:
            raise LiveWindowError(f"--live-media-s: {media_s!r} outside 1-3600 s")
        if not 1 <= max_calls <= MAX_LIVE_CALLS:
            raise LiveWindowError(f"--live-max-calls: {max_calls!r} outside 1-{MAX_LIVE_CALLS}")
        if not 0.0 <= sample_min <= 1440.0:
            raise LiveWindowError(f"--live-sample-min: {sample_min!r} outside 0-1440 min")
        return cls(names, start, end, float(media_s), int(max_calls), float(sample_min))

    def minutes(self, inputs: ModelInputs) -> tuple[float, float]:
        """The window in simulation minutes (minute 0: midnight of ``inputs.sim_start_date``).

        Raises:
            LiveWindowError: the window is not inside the simulated horizon.
        """
        origin = dt.datetime.combine(inputs.sim_start_date, dt.time())
        lo = (self.start - origin).total_seconds() / 60.0
        hi = (self.end - origin).total_seconds() / 60.0
        warmup_end = inputs.warmup_min
        if lo < warmup_end or hi > inputs.horizon_min:
            first = origin + dt.timedelta(minutes=warmup_end)
            last = origin + dt.timedelta(minutes=inputs.horizon_min)
            raise LiveWindowError(f"{self.named[1]}: {self.start.isoformat()}/{self.end.isoformat()} is outside "
                                  f"the simulated period {first.isoformat()}/{last.isoformat()}")
        return lo, hi


@dataclass(frozen=True)
class LiveCallRow:
    """One interview of the window that ran as a live call (a row of ``live_calls.csv``)."""

    call: int
    site: str
    service: str
    station: str
    generation: int
    start: str  # the interview's start, ISO date-time of the simulated calendar
    media_start: str  # the live call's start (the sampling instant, or the interview's start)
    interview_min: float  # the model's drawn duration
    media_s: float  # the emulated part
    cause: str
    mos_measured: float  # the interview's MOS: twin.quality.score_call on the call's measurements
    mos_predicted: float  # what the model's quality model gives the same kiosk, station and generation
    mos_predicted_shared: float  # the same with the shared-link rule at the live calls met on each line
    speech_mos_up: float  # speech as the agent heard it (PESQ less the E-model delay impairment)
    speech_mos_down: float  # speech as the citizen heard it
    video_mos_up: float
    video_mos_down: float
    usable: int  # 1 if the call met the interview-usable criteria (twin.quality.UsableCriteria)
    fps_up: float
    fps_down: float
    p95_delay_ms_up: float
    p95_delay_ms_down: float
    audio_loss_pct_up: float
    audio_loss_pct_down: float
    outage_s: float
    calls_on_kiosk_line: int  # the most live calls crossing the kiosk's line at once during this one
    calls_on_agent_line: int  # the same on the agent's line
    wall_s: float
    calls_on_backhaul: int = 0  # the same on the kiosk's exchange backhaul (0: the kiosk has none)


LIVE_CALL_COLUMNS = tuple(f.name for f in dataclasses.fields(LiveCallRow))


def _none_nan(value) -> float:
    return math.nan if value is None else float(value)


class LiveCarrier:
    """Carries the window's interviews at the live sites as emulated calls (module docstring).

    Built by :func:`run_hybrid_replication` on the running virtual loop, with the group's settings."""

    def __init__(self, loaded: LoadedScenario, inputs: ModelInputs, window: LiveWindow, driver: SimPyOnLoop,
                 server: SignallingServer, backend, group: GroupContext, generation: int, seed: int) -> None:
        self.inputs, self.window, self.driver, self.server = inputs, window, driver, server
        self.backend, self.group, self.generation, self.seed = backend, group, generation, seed
        self.from_min, self.to_min = window.minutes(inputs)
        self.live_sites = {inputs.site_ids.index(s) for s in window.sites}
        self.kiosks = {i: _kiosk_identity(loaded, inputs, i, generation) for i in self.live_sites}
        self.origin_s = group.origin_s  # the window's start on the loop: the shared links' clock origin
        self._links: dict[int, tuple[LinkQueue, LinkQueue]] = {}
        self.rows: list[LiveCallRow] = []
        self.modelled_over_cap = 0
        self._started = 0
        self.stopping = False  # the window was stopped: calls in progress end now
        self._active: dict[int, list[int]] = {}  # live calls in progress -> most calls met on each of its links
        self._links_of: dict[int, tuple[int, ...]] = {}  # their links: the kiosk side's, then the agent's

    def carries(self, replication: Replication, citizen: Citizen, token: Token) -> bool:
        """A need of the window's measured period at a live kiosk (within the call cap)."""
        now = replication.env.now
        if citizen.phase < 0 or citizen.stream.site not in self.live_sites or not self.from_min <= now < self.to_min:
            return False
        if self._started >= self.window.max_calls:
            self.modelled_over_cap += 1
            return False
        return True

    def interview(self, replication: Replication, citizen: Citizen, token: Token):
        """Start the live call; the model waits for the returned event (a CarriedInterview)."""
        index = self._started
        self._started += 1
        return self.driver.external(self._call(replication, citizen, token, index))

    def _lead_s(self, interview_min: float, interview_s: float, media_s: float) -> float:
        """Seconds from an interview's start to its live sample: with ``sample_min``, the next sampling
        instant (window start + k x sample_min) if the media fits in the interview from there, so that
        the interviews in progress at an instant run their samples together; else 0 (at its start)."""
        period = self.window.sample_min
        if period <= 0:
            return 0.0
        k = math.ceil((interview_min - self.from_min) / period - 1e-9)
        lead_s = (self.from_min + k * period - interview_min) * SECONDS_PER_MODEL_MIN
        return max(0.0, lead_s) if lead_s + media_s <= interview_s else 0.0

    def link_queues(self, rep: Replication, link: int) -> tuple[LinkQueue, LinkQueue]:
        """The (up, down) queues of ``link`` (:attr:`twin.model.inputs.ModelInputs.links`), made once for
        the window on its clock and shared by every live call that crosses the link, with the outages the
        model drew for that line."""
        if link not in self._links:
            lo_s = self.from_min * SECONDS_PER_MODEL_MIN
            outages = [(max(0.0, s - lo_s), e - lo_s) for s, e in rep.link_up[link].intervals if e > lo_s]
            config = CallConfig(line=self.inputs.links[link], clock="virtual", seed=self.seed)
            schedule = OutageSchedule(outages) if outages else None
            up_rng, down_rng = (np.random.default_rng(s) for s in
                                np.random.SeedSequence(self.seed, spawn_key=(link,)).spawn(2))
            self._links[link] = (config.link_queue("up", up_rng, schedule), config.link_queue("down", down_rng, schedule))
        return self._links[link]

    async def _call(self, rep: Replication, c: Citizen, token: Token, index: int) -> CarriedInterview:
        inputs, site, service = self.inputs, c.stream.site, c.stream.service
        loop = asyncio.get_running_loop()
        interview_min = rep.env.now
        interview_s = c.duration_min * SECONDS_PER_MODEL_MIN
        media_s = min(interview_s, self.window.media_s)
        lead_s = self._lead_s(interview_min, interview_s, media_s)
        if lead_s > 0:
            await asyncio.sleep(lead_s)  # until the sampling instant: modelled time
        start_min = interview_min + lead_s / SECONDS_PER_MODEL_MIN
        start_s = start_min * SECONDS_PER_MODEL_MIN
        links = (*inputs.kiosk_side(site), rep.agent_link(service, token))
        outages = _outages_during([i for link in links for i in rep.link_up[link].intervals], start_s, start_s + media_s)
        profile = inputs.profiles[self.generation]
        config = CallConfig(line=inputs.site_lines[site], duration_s=media_s, seed=self.seed + index,
                            clock="virtual", profile=profile, compute_ssim=False, scan_kb=0.0, print_kb=0.0)
        offset = loop.time() - self.origin_s  # this call's clock on the window's clock
        queues = [self.link_queues(rep, link) for link in links]  # (up, down) of each link
        kiosk_side, (agent_up, agent_down) = queues[:-1], queues[-1]
        paths = (LinkPath(*(ClockedHop(up, offset) for up, _ in kiosk_side), ClockedHop(agent_down, offset)),
                 LinkPath(ClockedHop(agent_up, offset), *(ClockedHop(down, offset) for _, down in reversed(kiosk_side))))
        station = _station_id(inputs, service, token)
        route = SignalRoute(self.server, self.kiosks[site], inputs.service_ids[service], station)
        group = dataclasses.replace(self.group, origin_s=loop.time())
        self._active[index] = [0] * len(links)
        self._links_of[index] = links
        for other, peaks in self._active.items():  # the most live calls each call met at once on each link
            for j, link in enumerate(self._links_of[other]):
                peaks[j] = max(peaks[j], sum(link in self._links_of[i] for i in self._active))
        wall0 = time.perf_counter()
        session = CallSession(config, self.backend, handle_sigint=False, group=group, index=index, route=route,
                              queues=paths)
        try:
            result = await asyncio.shield(session_task := asyncio.ensure_future(session.run()))
        except asyncio.CancelledError:  # the window is stopped: the call keeps what it measured
            session._on_signal(2)
            result = await session_task
            self.stopping = True
        finally:
            met = tuple(self._active.pop(index))
            del self._links_of[index]
        kiosk_line = inputs.site_lines[site]
        score = score_call(CalibrationRow(**calibration_row(result, profile, kiosk_line.offer.name,
                                                            kiosk_line.loop_length_m, config.seed, False)), profile)
        cause = result.end.cause if result.end is not None else "cause not identified"
        failed = cause not in ("completed",)
        mos = score.mos if not failed else math.nan
        quality = (score.mos, min(score.speech_mos_up, score.speech_mos_down),
                   min(score.video_mos_up, score.video_mos_down), float(score.usable))
        gen = inputs.phases[c.phase].generation[site]
        origin = dt.datetime.combine(inputs.sim_start_date, dt.time())
        self.rows.append(LiveCallRow(
            call=index + 1, site=inputs.site_ids[site], service=inputs.service_ids[service], station=station,
            generation=gen, start=(origin + dt.timedelta(minutes=interview_min)).isoformat(timespec="seconds"),
            media_start=(origin + dt.timedelta(minutes=start_min)).isoformat(timespec="seconds"),
            interview_min=round(c.duration_min, 3), media_s=round(media_s, 3), cause=cause,
            mos_measured=mos, mos_predicted=rep.mos_for(site, service, token, gen)[0],
            mos_predicted_shared=rep.quality_on(links, gen, met)[0],
            speech_mos_up=score.speech_mos_up, speech_mos_down=score.speech_mos_down,
            video_mos_up=score.video_mos_up, video_mos_down=score.video_mos_down, usable=int(score.usable),
            fps_up=_none_nan(result.video.up.fps_mean), fps_down=_none_nan(result.video.down.fps_mean),
            p95_delay_ms_up=_none_nan(result.video.up.delay.p95_ms),
            p95_delay_ms_down=_none_nan(result.video.down.delay.p95_ms),
            audio_loss_pct_up=_none_nan(result.network.up.audio_drop_pct),
            audio_loss_pct_down=_none_nan(result.network.down.audio_drop_pct),
            outage_s=sum(e - s for s, e in outages), calls_on_kiosk_line=met[0], calls_on_agent_line=met[-1],
            wall_s=round(time.perf_counter() - wall0, 3), calls_on_backhaul=met[1] if len(met) > 2 else 0))
        if self.stopping:
            raise asyncio.CancelledError
        if not failed and interview_s > lead_s + media_s:
            await asyncio.sleep(interview_s - lead_s - media_s)  # the rest of the interview: modelled time
        return CarriedInterview(mos=None if failed else mos, quality=None if failed else quality, failed=failed,
                                line_down=failed and bool(outages), cause=cause)


def _outages_during(intervals, start_s: float, end_s: float) -> tuple[tuple[float, float], ...]:
    """The parts of ``intervals`` (model seconds) inside [start_s, end_s), relative to start_s, merged."""
    return OutageSchedule([(max(s, start_s) - start_s, min(e, end_s) - start_s)
                           for s, e in intervals if s < end_s and e > start_s and min(e, end_s) > max(s, start_s)
                           ]).intervals


def _station_id(inputs: ModelInputs, service: int, token: Token) -> str:
    if token[1] == "expert":
        return f"expert:{inputs.site_ids[token[2]]}"
    return f"vc:{inputs.service_ids[service]}"


def _kiosk_identity(loaded: LoadedScenario, inputs: ModelInputs, site: int, generation: int) -> KioskIdentity:
    spec = next(s for s in loaded.spec.sites if s.id == inputs.site_ids[site])
    return KioskIdentity(spec.id, generation, tuple(spec.services) if generation == 1 else ())


def service_directory(loaded: LoadedScenario, inputs: ModelInputs) -> ServiceDirectory:
    """Every agent station of the scenario: each expert kiosk (its stations: one call each of its
    ``kiosk_count``), and each service's standard videoconference rooms as one station of that many calls."""
    stations = []
    for i, site_id in enumerate(inputs.site_ids):
        if inputs.site_kind[i] == "expert":
            spec = next(s for s in loaded.spec.sites if s.id == site_id)
            stations.append(Station(f"expert:{site_id}", spec.services[0], "expert", inputs.kiosk_count[i]))
    for svc in loaded.spec.services:
        if svc.standard_vc_rooms:
            stations.append(Station(f"vc:{svc.id}", svc.id, "vc", svc.standard_vc_rooms))
    return ServiceDirectory(stations)


def check_window(loaded: LoadedScenario, inputs: ModelInputs, window: LiveWindow) -> int:
    """The kiosk generation the window's live sites share; raises LiveWindowError naming what is wrong
    (unknown site, not a user kiosk, window outside the simulation, mixed generations)."""
    for s in window.sites:
        if s not in inputs.site_ids:
            raise LiveWindowError(f"{window.named[0]}: unknown site {s!r}")
        if inputs.site_kind[inputs.site_ids.index(s)] != "user":
            raise LiveWindowError(f"{window.named[0]}: {s!r} is not a user kiosk")
    lo, hi = window.minutes(inputs)
    generations = set()
    for cfg in inputs.phases:
        if cfg.window.end_min > lo and cfg.window.start_min < hi:
            generations |= {int(cfg.generation[inputs.site_ids.index(s)]) for s in window.sites}
    generations.discard(0)
    if len(generations) > 1:
        raise LiveWindowError(f"{window.named[0]}: the live kiosks have generations {sorted(generations)} during the window; "
                              "one window runs one generation (one encoder profile per process)")
    return generations.pop() if generations else 1


class LiveInterrupted(Exception):
    """The live window was stopped (a signal): ``carrier`` holds the calls that finished, and those that
    were cut (cause ``interrupted``)."""

    def __init__(self, carrier: LiveCarrier) -> None:
        super().__init__("the live window was stopped")
        self.carrier = carrier


def run_hybrid_replication(loaded: LoadedScenario, inputs: ModelInputs, seed: np.random.SeedSequence,
                           window: LiveWindow, call_seed: int = 1,
                           stop: Callable[[], bool] | None = None) -> tuple[ReplicationRecords, LiveCarrier]:
    """One replication with the window's interviews at the live sites as emulated calls (module
    docstring); returns its records and the carrier (its :attr:`LiveCarrier.rows`, the signalling log).
    ``stop`` is asked between the model's events in the window (e.g. ``lambda: stop_request.requested``).

    Raises:
        LiveWindowError: as :func:`check_window`.
        LiveInterrupted: ``stop`` returned True; the calls in progress were cut and kept.
    """
    generation = check_window(loaded, inputs, window)
    lo, hi = window.minutes(inputs)
    rep = Replication(inputs, seed)
    rep.start()
    rep.env.run(until=lo)
    backend = clock_backend("virtual")
    profile = inputs.profiles[generation]

    async def live_window() -> LiveCarrier:
        loop = asyncio.get_running_loop()
        with contextlib.ExitStack() as stack:
            encoder = stack.enter_context(encoder_limits(profile))
            record = backend.open_group(stack, profile, call_seed, window.max_calls)
            driver = SimPyOnLoop(rep.env, SECONDS_PER_MODEL_MIN)
            origin = loop.time()
            server = SignallingServer(service_directory(loaded, inputs), clock=lambda: loop.time() - origin)
            for station in server.directory.stations():
                server.register(station.id)
            group = GroupContext(encoder=encoder, record=record, origin_s=origin)
            carrier = LiveCarrier(loaded, inputs, window, driver, server, backend, group, generation, call_seed)
            rep.carrier = carrier
            try:
                await driver.run(until=hi, stop=stop)
            except DrivingStopped:
                raise LiveInterrupted(carrier) from None
            finally:
                rep.carrier = None
        return carrier

    carrier = backend.run(live_window)
    rep.env.run(until=inputs.horizon_min)
    return rep.finish(), carrier


def live_digest(rows: list[LiveCallRow]) -> str:
    """SHA-256 of the live calls without their wall times: the same seed gives the same digest."""
    return hashlib.sha256(live_calls_csv([dataclasses.replace(r, wall_s=0.0) for r in rows]).encode()).hexdigest()


def live_calls_csv(rows: list[LiveCallRow]) -> str:
    """``live_calls.csv``: one row per live call, columns :data:`LIVE_CALL_COLUMNS`."""
    def cell(v) -> str:
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:.6g}"
        return str(v)
    lines = [",".join(LIVE_CALL_COLUMNS)]
    lines += [",".join(cell(getattr(r, c)) for c in LIVE_CALL_COLUMNS) for r in rows]
    return "\n".join(lines) + "\n"


class LiveReplication:
    """Replication 1 of a ``twin run --live`` run: the hybrid replication (:func:`run_hybrid_replication`),
    writing ``live_calls.csv`` and ``live.json`` (the window, calls carried and over the cap, measured
    against predicted MOS, the signalling log's counts) into the run folder. The runner's
    :class:`twin.run.runner.FirstReplication`."""

    def __init__(self, window: LiveWindow) -> None:
        self.window = window

    def check(self, loaded: LoadedScenario, inputs: ModelInputs) -> None:
        """Raises LiveWindowError (see :func:`check_window`)."""
        check_window(loaded, inputs, self.window)

    def describe(self) -> dict:
        """The window as the manifest records it."""
        w = self.window
        return {"kind": "live window (emulators.hybrid)", "sites": list(w.sites), "start": w.start.isoformat(),
                "end": w.end.isoformat(), "media_s": w.media_s, "max_calls": w.max_calls, "sample_min": w.sample_min}

    @classmethod
    def from_spec(cls, live) -> LiveReplication:
        """From a scenario's ``live`` section (:class:`twin.scenario.spec.LiveSpec`, already validated)."""
        return cls(LiveWindow(tuple(live.sites), live.start, live.end, float(live.media_s), int(live.max_calls),
                              float(live.sample_min), named=("scenario live.sites", "scenario live.start/end")))

    @classmethod
    def from_manifest(cls, described: dict) -> LiveReplication:
        """The live replication a run's manifest describes (:meth:`describe`), for ``twin run --resume``."""
        return cls(LiveWindow(tuple(described["sites"]), dt.datetime.fromisoformat(described["start"]),
                              dt.datetime.fromisoformat(described["end"]), float(described["media_s"]),
                              int(described["max_calls"]), float(described.get("sample_min", 0.0))))

    def __call__(self, folder: Path, loaded: LoadedScenario, inputs: ModelInputs, seed: np.random.SeedSequence,
                 index: int, keep_records: bool, stop: Callable[[], bool] | None = None) -> ReplicationOutput:
        """Run replication ``index`` with the live window; on ``stop`` keep the calls measured
        (``live_calls.csv``, ``live.json`` with status interrupted) and raise KeyboardInterrupt."""
        wall0 = time.perf_counter()
        try:
            records, carrier = run_hybrid_replication(loaded, inputs, seed, self.window, call_seed=index + 1,
                                                      stop=stop)
        except LiveInterrupted as stopped:  # keep the calls measured, then stop the run as a signal does
            self._write(folder, stopped.carrier, time.perf_counter() - wall0, interrupted=True)
            raise KeyboardInterrupt from None
        self._write(folder, carrier, time.perf_counter() - wall0, interrupted=False)
        return output_of(loaded, inputs, records, index, keep_records)

    def _write(self, folder: Path, carrier: LiveCarrier, wall_s: float, interrupted: bool) -> None:
        atomic_write_text(Path(folder) / "live_calls.csv", live_calls_csv(carrier.rows))
        summary = live_summary(self, carrier, wall_s)
        summary["status"] = "interrupted: the replication was not finished" if interrupted else "complete"
        atomic_write_json(Path(folder) / "live.json", summary)


def live_summary(live: LiveReplication, carrier: LiveCarrier, wall_s: float) -> dict:
    """``live.json``: the window, the calls carried and modelled over the cap, causes, measured and
    predicted MOS (means), live media seconds and the wall time per live call-minute."""
    rows = carrier.rows
    done = [r for r in rows if not math.isnan(r.mos_measured)]
    media_min = sum(r.media_s for r in rows) / 60.0
    causes: dict[str, int] = {}
    for r in rows:
        causes[r.cause] = causes.get(r.cause, 0) + 1
    kinds: dict[str, int] = {}
    for m in carrier.server.log:
        kinds[m.kind] = kinds.get(m.kind, 0) + 1
    return {
        **live.describe(), "replication": 1, "calls": len(rows), "modelled_over_cap": carrier.modelled_over_cap,
        "causes": causes, "signalling": kinds, "digest": live_digest(rows),
        "mos_measured_mean": statistics.fmean(r.mos_measured for r in done) if done else None,
        "mos_predicted_mean": statistics.fmean(r.mos_predicted for r in done) if done else None,
        "max_calls_on_one_line": max((max(r.calls_on_kiosk_line, r.calls_on_agent_line, r.calls_on_backhaul)
                                      for r in rows), default=0),
        "live_media_min": media_min, "wall_s": wall_s,
        "wall_s_per_live_call_min": wall_s / media_min if media_min else None,
        "limits": ("each interview is sampled by one live call of at most media_s seconds (at its start, or with "
                   "sample_min at the next sampling instant), the rest of the interview is modelled time and its "
                   "MOS is the sample's; one generation per window; the other replications are modelled"),
    }


__all__ = [
    "LIVE_CALL_COLUMNS",
    "MAX_LIVE_CALLS",
    "LiveCallRow",
    "LiveCarrier",
    "LiveReplication",
    "LiveWindow",
    "LiveWindowError",
    "check_window",
    "live_calls_csv",
    "run_hybrid_replication",
    "service_directory",
]

