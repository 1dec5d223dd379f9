"""One real WebRTC call (aiortc) between an emulated citizen kiosk and an agent station across an
emulated ADSL line, measured from both receivers.

Topology (one process, one asyncio loop; on 127.0.0.1, or on the in-memory network in virtual time)::

    kiosk RTCPeerConnection --UP LinkQueue-->  UdpRelay  --> agent RTCPeerConnection
                            <--DOWN LinkQueue--          <--

The kiosk offers (audio + video + the ``docs`` data channel), the agent answers; the relay rewrites the
candidates of both descriptions (:mod:`emulators.relay`). Both ends send the synthetic numbered camera
and voice of :mod:`emulators.media` with the encoder bounds of the call's
:class:`twin.profiles.EncoderProfile` (:mod:`emulators.encoder_setup`). After ``documents_at_s`` the kiosk
uploads a scan and the agent sends back a print over the data channel.

A :class:`CallSession` is one call: it owns the line's queues, the relay, both peers, the stop event and
the series measured while the call runs, and takes its steps in order (set up, signal, media phase,
tear down, assemble the :class:`emulators.results.CallResult`). The clock (real or virtual) is chosen
once, as a backend of :mod:`emulators.clocks`; nothing in the call depends on which.

Deadline: the media phase lasts exactly ``duration_s`` of loop time from the relay's start, whatever
happens (dead line, outage longer than the call, a peer failing): the session waits for it with the
remaining time as timeout; peers are closed in a ``finally`` with bounded waits. A signal of the
command's :class:`emulators.interrupts.InterruptPolicy` (SIGINT, SIGTERM, SIGHUP; or Ctrl-C alone when a
call runs in the main thread without one) ends the media phase early and the result keeps what was
measured (``interrupted=True``, its end's cause ``interrupted``).

:func:`run_emulated_call` runs a call on a fresh loop of its clock, :func:`run_call` is the coroutine;
the result is JSON-ready via ``CallResult.to_dict`` and written with :func:`emulators.output.write_call_result`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as _dt
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from emulators.causes import PeerEnd, classify_end, consent_log, consent_watch, ice_connection
from emulators.chain import keyframe_on_gap, keyframe_tags
from emulators.clocks import ClockBackend, clock_backend
from emulators.config import CallConfig
from emulators.encoder_setup import EncoderSettings, apply_codec_preferences, encoder_limits
from emulators.evidence import PacketCapture, dtls_keys, sctp_capture, sctp_events
from emulators.interrupts import InterruptPolicy, progress, signal_name
from emulators.media import (
    AUDIO_SAMPLE_RATE_HZ,
    DocumentEndpoint,
    FrameLedger,
    SyntheticCameraTrack,
    SyntheticScene,
    SyntheticVoiceTrack,
    load_speech,
    speech_reference_16k,
)
from emulators.metrics import (
    AudioSink,
    AudioSummary,
    VideoSink,
    loss_pct,
    snapshot_stats,
    summarize_video,
)
from emulators.relay import UdpRelay
from emulators.results import (
    CallResult,
    ConnectionResult,
    DocumentResult,
    DocumentResults,
    NetworkResult,
    PerDirection,
    RttResult,
    SetupResult,
    VideoResult,
    WallClock,
    find_recoveries,
)
from emulators.signalling import SignalRoute
from emulators.speech import score_speech
from emulators.virtual_time import CALL_INDEX, VIRTUAL_EPOCH, VirtualTimeRecord
from twin.line import LinkQueue
from twin.profiles import EncoderProfile

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 3.0
"""Bound on each peer's ``close()`` after the deadline (a peer stuck on a dead line must not hang)."""

STATS_INTERVAL_S = 1.0
"""Period of the RTP statistics polls during the media phase, s of call time."""

FINAL_STATS_TIMEOUT_S = 1.0
"""Bound on the last statistics poll, at the end of the media phase."""

WATCH_INTERVAL_S = 0.1
"""How often the media phase wakes up to start the documents and poll statistics, s of call time."""


# --------------------------------------------------------------------------------------------------
# The peers
# --------------------------------------------------------------------------------------------------


class _Peer:
    """One end: peer connection, its camera and microphone, its sinks, its document endpoint."""

    def __init__(self, name: str, profile: EncoderProfile, clock: Callable[[], float], ledger_out: FrameLedger,
                 ledger_in: FrameLedger) -> None:
        from aiortc import RTCConfiguration, RTCPeerConnection
        from aiortc.rtcconfiguration import RTCBundlePolicy

        self.name = name
        self.clock = clock
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.scene = SyntheticScene(profile.width_px, profile.height_px)
        self.camera = SyntheticCameraTrack(self.scene, profile.frame_rate_fps, ledger_out, clock=clock)
        self.voice = SyntheticVoiceTrack(ptime_s=profile.audio_frame_ms / 1000.0)
        self.video_sink = VideoSink(ledger_in, clock)
        self.audio_sink = AudioSink(clock)
        self.docs = DocumentEndpoint(clock)
        self.states: list[list] = []
        self.ice_states: list[list] = []
        self.tasks: list[asyncio.Task] = []
        self.stats: dict = {}

        @self.pc.on("connectionstatechange")
        def _on_state() -> None:
            self.states.append([round(clock(), 4), self.pc.connectionState])

        @self.pc.on("iceconnectionstatechange")
        def _on_ice() -> None:
            self.ice_states.append([round(clock(), 4), self.pc.iceConnectionState])

        @self.pc.on("track")
        def _on_track(track) -> None:
            sink = self.video_sink if track.kind == "video" else self.audio_sink
            self.tasks.append(asyncio.ensure_future(sink.run(track)))

        @self.pc.on("datachannel")
        def _on_channel(channel) -> None:
            self.docs.attach(channel)

    def first_state_time(self, *states: str) -> float | None:
        """Time (s, call clock) this peer's connection first reached one of ``states``; None: never."""
        return next((t for t, s in self.states if s in states), None)


def _candidate_addresses(sdp: str) -> list[str]:
    """``ip:port`` of every candidate in an SDP (the addresses the peer's ICE sockets are bound to)."""
    out = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            bits = line.split()
            if len(bits) > 5 and f"{bits[4]}:{bits[5]}" not in out:
                out.append(f"{bits[4]}:{bits[5]}")
    return out


# --------------------------------------------------------------------------------------------------
# The call
# --------------------------------------------------------------------------------------------------


class CallSession:
    """One emulated call, from set-up to result (:meth:`run`, once).

    Owns the call's two LinkQueues, the relay (from the clock backend), both peers, the stop event and
    what is measured while the call runs (RTT samples, listening addresses, errors). Steps, in order:
    set up (encoder limits, the clock's line and relay, the peers), signal (offer and answer through the
    relay), media phase until the deadline (documents, statistics), tear down (bounded waits), assemble
    the :class:`emulators.results.CallResult`.

    Args:
        config: the call.
        backend: its clock (:func:`emulators.clocks.clock_backend`); :meth:`run` must run on a loop of
            that backend (:meth:`~emulators.clocks.ClockBackend.run`).
        handle_sigint: without ``interrupts``, when running in the main thread, turn the first Ctrl-C into
            a clean early end (the second one interrupts as usual).
        interrupts: the command's :class:`emulators.interrupts.InterruptPolicy`: its first SIGINT, SIGTERM
            or SIGHUP during the call ends the media phase early (the call keeps what it measured); after
            the media phase signals are only recorded.
        capture: keep every datagram (and the DTLS keys) for pcap files (:mod:`emulators.evidence`).
        group, index, queues: for call ``index`` of a group on one loop (:mod:`emulators.group`): the
            group's process-wide settings, already installed, and the group's line when the calls share
            one (``(up, down)`` queues; default: the call's own, :meth:`CallConfig.link_queues`).
        route: set the call up through a signalling server (:mod:`emulators.signalling`): the kiosk's
            offer goes to the station the route names, whose agent (this session's agent peer) answers
            from the station's inbox; a route refused at the start raises
            :class:`emulators.signalling.SignallingRefused` before any media flows (one refused later, a
            race for a station, is a failed call body, in the errors). Default: the kiosk's offer goes straight to the agent.
    """

    def __init__(self, config: CallConfig, backend: ClockBackend, *, handle_sigint: bool = True,
                 interrupts: InterruptPolicy | None = None, capture: bool = False, group: Any = None,
                 index: int = 0, queues: tuple[LinkQueue, LinkQueue] | None = None,
                 route: SignalRoute | None = None) -> None:
        self.config = config
        self.route = route
        self.signalled_call_id: int | None = None  # the signalling server's id of this call
        self.backend = backend
        self.handle_sigint = handle_sigint and interrupts is None and group is None
        self.interrupts = interrupts
        self.group = group  # an emulators.group.GroupContext: this call is one of several on one loop
        self.index = index
        self.capture = capture
        self.epoch_s = 0.0  # POSIX time of the call clock's 0 (emulated timestamps of the evidence)
        self.dtls_keys: list[tuple[bytes, bytes]] = []
        self.sctp: dict[str, list] = {}
        self.up_queue, self.down_queue = queues if queues is not None else config.link_queues()
        self.stop = asyncio.Event()
        self.errors: list[str] = []
        self.rtt_series: list[list] = []  # [time_s, kind, rtt_ms] from the kiosk's RTCP receiver reports
        self.listen: list[str] = []  # ip:port of the relay's sockets and the peers' candidates
        self.documents_started = {"scan": False, "print": False}
        self.interrupted = False
        self.interrupted_by: str | None = None  # the signal that ended the call early
        self.relay: UdpRelay | None = None
        self.kiosk: _Peer | None = None
        self.agent: _Peer | None = None
        self._sigint_installed = False

    def now_s(self) -> float:
        """The call clock: seconds since the relay started (wall or virtual)."""
        return self.relay.now_s()

    async def run(self) -> CallResult:
        """Run the call and measure it. Never raises for network conditions; ends on time."""
        loop = asyncio.get_running_loop()
        CALL_INDEX.set(self.index)  # this task's peers take this call's addresses on a virtual network
        if loop.get_exception_handler() is None:
            loop.set_exception_handler(self._on_loop_exception)
        if self.route is not None:  # a refused route raises before any line or peer exists
            self.route.server.check(self.route.kiosk, self.route.service, self.route.station)
        started_at = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        wall0, cpu0 = time.perf_counter(), _cpu_s()
        if self.interrupts is not None:
            self.interrupts.during(lambda signum: loop.call_soon_threadsafe(self._on_signal, signum))
        with contextlib.ExitStack() as stack:
            if self.group is None:
                encoder = stack.enter_context(encoder_limits(self.config.profile))
            else:
                encoder = self.group.encoder
            stack.enter_context(keyframe_tags())  # good frames vs frames from a broken reference chain
            stack.enter_context(keyframe_on_gap())  # a keyframe request, not stale video, after a long gap
            stack.enter_context(consent_watch())  # consent checks, for the cause of the call's end
            if self.capture:
                stack.enter_context(sctp_capture())  # the data channel in clear, for the pcap files
            if self.group is None:
                self.relay, virtual_record = self.backend.open_line(stack, self.up_queue, self.down_queue,
                                                                    self.config.profile, self.config.seed)
            else:
                self.relay = self.backend.relay(self.up_queue, self.down_queue, self.index)
                virtual_record = self.group.record
            await self._set_up()
            self._install_sigint(loop)
            end_s = self.config.duration_s
            try:
                end_s = await self._media_phase_until_deadline()
            except asyncio.CancelledError:
                self.interrupted = True
                end_s = min(self.now_s(), self.config.duration_s)
            finally:
                self._remove_sigint(loop)
                if self.interrupts is not None:
                    self.interrupts.during(None)  # from here on a signal waits: the call is kept whole
                kiosk_states, agent_states = await self._tear_down()
                if self.route is not None and self.signalled_call_id is not None:
                    self.route.server.hang_up(self.signalled_call_id)
        self.errors.extend(self.backend.failures())  # encoding failures aiortc's senders only logged
        wall_s = time.perf_counter() - wall0
        wall = WallClock(started_at=started_at, wall_s=wall_s, cpu_s=_cpu_s() - cpu0,
                         speedup=end_s / wall_s if wall_s > 0 else None)
        log.info("call media+close took %.2f s of wall time", wall_s)
        return self._result(end_s, wall, encoder, virtual_record, kiosk_states, agent_states)

    # -- set up and signalling ---------------------------------------------------------------------

    async def _set_up(self) -> None:
        """Start the relay (the call clock's origin), make both peers."""
        self.relay.capture = self.capture
        await self.relay.start(None if self.group is None else self.group.origin_s)
        self.epoch_s = (VIRTUAL_EPOCH.timestamp() if self.backend.name == "virtual"
                        else time.time() - self.relay.now_s())
        self.listen.extend(f"{h}:{p}" for h, p in self.relay.sockets())
        clock = self.relay.now_s
        ledger_up, ledger_down = FrameLedger(), FrameLedger()
        self.kiosk = _Peer("kiosk", self.config.profile, clock, ledger_out=ledger_up, ledger_in=ledger_down)
        self.agent = _Peer("agent", self.config.profile, clock, ledger_out=ledger_down, ledger_in=ledger_up)

    def _install_sigint(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self.handle_sigint:
            return
        try:
            loop.add_signal_handler(signal.SIGINT, self._on_sigint, loop)
            self._sigint_installed = True
        except (NotImplementedError, RuntimeError, ValueError):
            pass

    def _on_loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        """aiortc's own tasks that fail unseen (an SCTP retransmission after the DTLS transport closed,
        "Task exception was never retrieved") go to the call's errors, not to stderr as a traceback."""
        exc = context.get("exception")
        what = context.get("message", "unhandled exception in the event loop")
        self.errors.append(f"{what}: {type(exc).__name__}: {exc}" if exc is not None else what)

    def _on_signal(self, signum: int) -> None:
        """End the media phase early because of ``signum`` (the measured part is kept)."""
        if self.stop.is_set() and not self.interrupted:
            return  # the media phase is already over: the call is complete
        self.interrupted = True
        self.interrupted_by = signal_name(signum)
        self.stop.set()

    def _on_sigint(self, loop: asyncio.AbstractEventLoop) -> None:
        self.interrupted = True
        self.interrupted_by = "SIGINT"
        self.stop.set()
        try:
            loop.remove_signal_handler(signal.SIGINT)  # a second Ctrl-C interrupts for good
        except Exception:
            pass

    def _remove_sigint(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._sigint_installed:
            try:
                loop.remove_signal_handler(signal.SIGINT)
            except Exception:
                pass

    async def _signal(self) -> None:
        """Offer (kiosk) and answer (agent) through the relay (and the signalling server when the call
        has a route), codecs set from the profile."""
        from aiortc import RTCSessionDescription

        kiosk, relay, profile = self.kiosk, self.relay, self.config.profile
        kiosk.pc.addTrack(kiosk.voice)
        kiosk.pc.addTrack(kiosk.camera)
        kiosk.docs.attach(kiosk.pc.createDataChannel("docs"))
        apply_codec_preferences(kiosk.pc, profile)
        await kiosk.pc.setLocalDescription(await kiosk.pc.createOffer())
        self.listen.extend(_candidate_addresses(kiosk.pc.localDescription.sdp))
        offer = relay.sdp_for_agent(kiosk.pc.localDescription.sdp)
        if self.route is None:
            answer_raw = await self._answer(offer)
        else:
            answer_raw = await self._answer_through(self.route, offer)
        self.listen.extend(_candidate_addresses(answer_raw))
        relay.set_payload_kinds(answer_raw)
        answer = relay.sdp_for_kiosk(answer_raw)
        await kiosk.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    async def _answer(self, offer: str) -> str:
        """The agent's answer to ``offer`` (codecs set from the profile), as the agent wrote it."""
        from aiortc import RTCSessionDescription

        agent = self.agent
        await agent.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        agent.pc.addTrack(agent.voice)
        agent.pc.addTrack(agent.camera)
        apply_codec_preferences(agent.pc, self.config.profile)
        await agent.pc.setLocalDescription(await agent.pc.createAnswer())
        return agent.pc.localDescription.sdp

    async def _answer_through(self, route: SignalRoute, offer: str) -> str:
        """Send ``offer`` through the signalling server to the route's station; this session's agent
        answers the offer that reaches the station's inbox. Raises SignallingRefused."""
        inbox = route.server.inbox(route.station)

        async def station_answers() -> None:
            delivered = await inbox.get()
            delivered.reply(await self._answer(delivered.sdp))

        answering = asyncio.ensure_future(station_answers()) if inbox is not None else None
        try:
            self.signalled_call_id, answer_raw = await route.server.call(route.kiosk, route.service,
                                                                         route.station, offer)
        finally:
            if answering is not None and not answering.done():
                answering.cancel()
        return answer_raw

    # -- media phase -------------------------------------------------------------------------------

    async def _media_phase_until_deadline(self) -> float:
        """Run the media phase until ``duration_s`` on the call clock or ``stop``; take the last
        statistics. Returns the end of the measurements, s."""
        duration_s = self.config.duration_s
        body = asyncio.ensure_future(self._media_phase())
        stopper = asyncio.ensure_future(self.stop.wait())
        done, _ = await asyncio.wait({body, stopper}, timeout=max(0.0, duration_s - self.now_s()),
                                     return_when=asyncio.FIRST_COMPLETED)
        if body in done and body.exception() is not None:
            exc = body.exception()
            self.errors.append(f"call body failed at {self.now_s():.2f} s: {type(exc).__name__}: {exc}")
            # A failed peer does not end the call early: keep measuring until the deadline.
            if not self.stop.is_set():
                await asyncio.wait({stopper}, timeout=max(0.0, duration_s - self.now_s()))
        end_s = min(self.now_s(), duration_s) if self.interrupted else duration_s
        self.stop.set()
        for task in (body, stopper):
            if not task.done():
                task.cancel()
        await asyncio.gather(body, stopper, return_exceptions=True)
        try:  # last statistics, taken at the end of the media phase
            await asyncio.wait_for(self._poll_stats(), timeout=FINAL_STATS_TIMEOUT_S)
        except TimeoutError:
            self.errors.append("final getStats timed out")
        return end_s

    async def _media_phase(self) -> None:
        """Signal, then watch the call until cancelled by the deadline or ``stop``."""
        await self._signal()
        progress("media")
        next_stats = self.now_s() + STATS_INTERVAL_S
        while not self.stop.is_set():
            now = self.now_s()
            self._start_documents(now)
            if now >= next_stats:
                next_stats += STATS_INTERVAL_S
                await self._poll_stats()
            try:
                await asyncio.wait_for(self.stop.wait(), timeout=WATCH_INTERVAL_S)
            except TimeoutError:
                pass

    def _start_documents(self, now_s: float) -> None:
        """From ``documents_at_s`` after the kiosk connected, start each document once its end of the
        data channel is open (the scan paced at the profile's ``document_kbps``)."""
        connected_s = self.kiosk.first_state_time("connected")
        if connected_s is None or now_s < connected_s + self.config.documents_at_s:
            return
        self._start_document("scan", self.kiosk, self.config.scan_kb, self.config.profile.document_kbps)
        self._start_document("print", self.agent, self.config.print_kb, None)

    def _start_document(self, kind: str, sender: _Peer, size_kb: float, rate_kbps: float | None) -> None:
        channel = sender.docs.channel
        if self.documents_started[kind] or channel is None or channel.readyState != "open":
            return
        self.documents_started[kind] = True
        if size_kb > 0:
            sender.docs.send_document(kind, int(size_kb * 1000), rate_kbps=rate_kbps,
                                      message_bytes=self.config.document_message_bytes(),
                                      buffer_bytes=int(self.config.doc_buffer_kb * 1000))

    async def _poll_stats(self) -> None:
        """Refresh both peers' RTP statistics; record the kiosk's RTT samples (from its RTCP RRs)."""
        rates = {"audio": AUDIO_SAMPLE_RATE_HZ, "video": 90_000}
        for peer in (self.kiosk, self.agent):
            try:
                peer.stats = asdict(await snapshot_stats(peer.pc, rates))
            except Exception as exc:  # stats are best effort; never kill the call for them
                log.warning("getStats failed on %s: %r", peer.name, exc)
        for kind, rem in self.kiosk.stats.get("remote_inbound", {}).items():
            self.rtt_series.append([round(self.now_s(), 3), kind, round(rem["rtt_ms"], 2)])

    # -- tear down and result ----------------------------------------------------------------------

    async def _tear_down(self) -> tuple[list, list]:
        """Close both peers with bounded waits, stop their decoders and sinks, close the relay. Returns
        the peers' connection states as they were at the end of the media phase (closing makes no media)."""
        peers = (self.kiosk, self.agent)
        states = (list(self.kiosk.states), list(self.agent.states))
        if self.capture:
            self.dtls_keys = dtls_keys(self.kiosk.pc)
            self.sctp = {peer.name: sctp_events(peer.pc, self.relay.origin_s) for peer in peers}
        for peer in peers:
            peer.docs.stop()
        for peer in peers:
            try:
                await asyncio.wait_for(peer.pc.close(), timeout=CLOSE_TIMEOUT_S)
            except (TimeoutError, Exception) as exc:  # noqa: BLE001 - report, never hang
                self.errors.append(f"{peer.name} close: {type(exc).__name__}: {exc}")
        for peer in peers:
            # aiortc's decoder threads are not daemons: if close() timed out before stopping a
            # receiver, its thread would keep the process alive. _handle_disconnect() stops it
            # (idempotent; aiortc calls it itself when the DTLS transport closes).
            for transceiver in peer.pc.getTransceivers():
                try:
                    transceiver.receiver._handle_disconnect()
                except Exception as exc:  # noqa: BLE001
                    self.errors.append(f"{peer.name} decoder stop: {type(exc).__name__}: {exc}")
            for task in peer.tasks:
                task.cancel()
            await asyncio.gather(*peer.tasks, return_exceptions=True)
        self.relay.close()
        return states

    def _result(self, end_s: float, wall: WallClock, encoder: EncoderSettings,
                virtual_record: VirtualTimeRecord | None, kiosk_states: list, agent_states: list) -> CallResult:
        """Everything measured, over the window from the kiosk's ``connected`` to ``end_s``."""
        kiosk, agent, relay = self.kiosk, self.agent, self.relay
        connected_s = next((t for t, s in kiosk_states if s == "connected"), None)
        window_start = connected_s if connected_s is not None and connected_s < end_s else end_s
        ssim = self.config.compute_ssim
        video = PerDirection(up=self._video_result(agent, kiosk, "up", window_start, end_s, ssim),
                             down=self._video_result(kiosk, agent, "down", window_start, end_s, ssim))
        rtt = RttResult.from_samples(self.rtt_series, relay.delay_by_bin("up", end_s), relay.delay_by_bin("down", end_s))
        return CallResult(
            config=self.config,
            wall=wall,
            duration_s=end_s,
            interrupted=self.interrupted,
            setup=SetupResult(
                ice_completed_s=next((t for t, s in kiosk.ice_states if s == "completed"), None),
                connected_s=connected_s,
                first_frame_up_s=video.up.first_frame_s,
                first_frame_down_s=video.down.first_frame_s,
            ),
            connection=ConnectionResult.from_states(kiosk_states, agent_states, kiosk.ice_states, end_s, self.listen),
            video=video,
            audio=PerDirection(up=_audio_summary(agent, kiosk), down=_audio_summary(kiosk, agent)),
            network=PerDirection(up=NetworkResult.from_relay(relay, self.up_queue, "up", window_start, end_s),
                                 down=NetworkResult.from_relay(relay, self.down_queue, "down", window_start, end_s)),
            rtt_ms=rtt,
            documents=DocumentResults(
                scan=DocumentResult.from_transfer(kiosk.docs.outgoing.get("scan"), agent.docs, end_s),
                print=DocumentResult.from_transfer(agent.docs.outgoing.get("print"), kiosk.docs, end_s),
            ),
            encoder=encoder,
            virtual_time=virtual_record,
            errors=tuple(self.errors),
            digest=relay.event_digest(),
            end=self._call_end(end_s, kiosk_states, agent_states, rtt),
            packets=PacketCapture(relay.logs, relay.kiosk_addr, relay.agent_addr, self.epoch_s, self.dtls_keys,
                                  self.sctp),
        )

    def _call_end(self, end_s: float, kiosk_states: list, agent_states: list, rtt: RttResult):
        """Why the call ended (:func:`emulators.causes.classify_end`), consent logs on the call clock."""
        peers = []
        for peer, states in ((self.kiosk, kiosk_states), (self.agent, agent_states)):
            connection = ice_connection(peer.pc)
            log = None
            if connection is not None:
                raw, origin = consent_log(connection), self.relay.origin_s
                log = type(raw)(checks=[(round(t - origin, 4), ok, rtt_s) for t, ok, rtt_s in raw.checks],
                                expired_s=None if raw.expired_s is None else round(raw.expired_s - origin, 4))
            peers.append(PeerEnd(peer.name, states, peer.ice_states, log))
        last = {}
        for direction in ("up", "down"):
            log = self.relay.logs[direction]
            delivered = [d for d in log.delivery_s if d == d and d <= end_s]
            last[direction] = max(delivered) if delivered else None
        return classify_end(end_s=end_s, peers=peers, last_delivery_s=last, path_rtt_series=rtt.path_series,
                            rtt_ms=rtt.mean, interrupted_by=self.interrupted_by if self.interrupted else None)

    def _video_result(self, receiver: _Peer, sender: _Peer, direction: str, window_start: float, end_s: float,
                      compute_ssim: bool) -> VideoResult:
        """One direction's video (:func:`_video_result`) with its recoveries after outages and loss bursts."""
        result = _video_result(receiver, sender, window_start, end_s, compute_ssim)
        log = self.relay.logs[direction]
        sink = receiver.video_sink
        good = [(captured, f.time_s) for f in sink.frames if f.intact and f.frame_no is not None
                and (captured := sink.ledger.capture_time(f.frame_no)) is not None]
        recoveries = find_recoveries(log.arrival_s, log.drop, self.config.outages, good, end_s)
        recovered = [r.time_to_recover_s for r in recoveries if r.time_to_recover_s is not None]
        return dataclasses.replace(result, recoveries=recoveries, time_to_recover_s=max(recovered, default=None),
                                   unrecovered=sum(1 for r in recoveries if r.time_to_recover_s is None))


def _video_result(receiver: _Peer, sender: _Peer, window_start: float, end_s: float,
                  compute_ssim: bool) -> VideoResult:
    """One direction's video: what ``receiver`` decoded of ``sender``'s camera, with both ends' RTP stats."""
    summary = summarize_video(receiver.video_sink, sender.scene, window_start, end_s, compute_ssim=compute_ssim)
    out = sender.stats.get("outbound", {}).get("video", {})
    span = end_s - window_start
    sent_bytes = out.get("bytes_sent")
    vin = receiver.stats.get("inbound", {}).get("video", {})
    return VideoResult.from_summary(
        summary,
        window_s=(window_start, end_s),
        encoder_kbps=(sent_bytes * 8 / 1000.0 / span) if sent_bytes and span > 0 else None,
        rtp_packets_received=vin.get("packets_received"),
        rtp_packets_lost=vin.get("packets_lost"),
        rtp_loss_pct=loss_pct(vin.get("packets_received"), vin.get("packets_lost")),
        jitter_ms=vin.get("jitter_ms"),
    )


def _audio_summary(receiver: _Peer, sender: _Peer) -> AudioSummary:
    """One direction's audio: ``sender``'s microphone against what ``receiver`` decoded and its RTP stats."""
    inbound = receiver.stats.get("inbound", {}).get("audio", {})
    rec, lost = inbound.get("packets_received"), inbound.get("packets_lost")
    samples_sent, samples_decoded = sender.voice.samples_sent, receiver.audio_sink.samples_received
    return AudioSummary(
        frames_sent=sender.voice.frames_sent,
        frames_decoded=len(receiver.audio_sink.frame_times_s),
        samples_sent=samples_sent,
        samples_decoded=samples_decoded,
        packets_received=rec,
        packets_lost=lost,
        packet_loss_pct=loss_pct(rec, lost),
        jitter_ms=inbound.get("jitter_ms"),
        decoded_loss_pct=(100.0 * max(0.0, 1.0 - samples_decoded / samples_sent)) if samples_sent else None,
        speech=score_speech(receiver.audio_sink.frames, sender.voice.samples_per_frame, sender.voice.frames_sent,
                            speech_reference_16k()),
    )


def _cpu_s() -> float:
    """User + system CPU seconds of this process and of its children that have been waited for."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


async def run_call(config: CallConfig, *, handle_sigint: bool = True) -> CallResult:
    """Run one emulated call on the running loop (which must be of the config's clock: for
    ``clock="virtual"`` a :class:`emulators.virtual_time.VirtualClockLoop`; :func:`run_emulated_call`
    makes the right one). See :class:`CallSession`."""
    return await CallSession(config, clock_backend(config.clock), handle_sigint=handle_sigint).run()


def run_emulated_call(config: CallConfig, interrupts: InterruptPolicy | None = None,
                      capture: bool = False) -> CallResult:
    """Run one emulated call on a fresh event loop of its clock (the backend of ``config.clock``,
    :mod:`emulators.clocks`) and return what it measured; ``interrupts``, ``capture``: see :class:`CallSession`."""
    backend = clock_backend(config.clock)
    load_speech()
    return backend.run(lambda: CallSession(config, backend, interrupts=interrupts, capture=capture).run())
