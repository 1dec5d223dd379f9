"""One real WebRTC call (aiortc) between an emulated citizen kiosk and an agent station across an
emulated ADSL line, measured from both receivers.

Topology (all on 127.0.0.1, one process, one asyncio loop)::

    kiosk RTCPeerConnection --UP LinkQueue-->  UdpRelay  --> agent RTCPeerConnection
                            <--DOWN LinkQueue--          <--

The kiosk offers (audio + video + the ``docs`` data channel), the agent answers; the relay rewrites the
candidates of both descriptions (:mod:`emulators.relay`). Both ends send the synthetic numbered camera
and voice of :mod:`emulators.media` with the encoder bounds of the call's
:class:`twin.profiles.EncoderProfile` (:mod:`emulators.encoder_setup`). After ``documents_at_s`` the kiosk
uploads a scan and the agent sends back a print over the data channel.

Deadline: the media phase lasts exactly ``duration_s`` of loop time from the relay's start, whatever
happens (dead line, outage longer than the call, a peer failing): the body runs under
``asyncio.wait_for``; peers are closed in a ``finally`` with bounded waits. A Ctrl-C (SIGINT, when run
in the main thread) ends the media phase early and the result keeps what was measured
(``interrupted=True``).

:func:`run_call` is the coroutine, :func:`run_emulated_call` the synchronous wrapper; the result is a
:class:`emulators.results.CallResult` (JSON-ready via its ``to_dict``, written with
:func:`emulators.output.write_call_result`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import asdict

from emulators.config import CallConfig
from emulators.encoder_setup import apply_codec_preferences, encoder_limits
from emulators.media import (
    AUDIO_SAMPLE_RATE_HZ,
    DocumentEndpoint,
    FrameLedger,
    SyntheticCameraTrack,
    SyntheticScene,
    SyntheticVoiceTrack,
)
from emulators.metrics import (
    AudioSink,
    AudioSummary,
    VideoSink,
    loss_pct,
    snapshot_stats,
    summarize_video,
)
from emulators.relay import UdpRelay, loopback_only
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
)
from twin.profiles import EncoderProfile

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 3.0
"""Bound on each peer's ``close()`` after the deadline (a peer stuck on a dead line must not hang)."""

STATS_INTERVAL_S = 1.0


# --------------------------------------------------------------------------------------------------
# The call
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


async def _signal(kiosk: _Peer, agent: _Peer, relay: UdpRelay, profile: EncoderProfile,
                  listen: list[str]) -> None:
    from aiortc import RTCSessionDescription

    kiosk.pc.addTrack(kiosk.voice)
    kiosk.pc.addTrack(kiosk.camera)
    kiosk.docs.attach(kiosk.pc.createDataChannel("docs"))
    apply_codec_preferences(kiosk.pc, profile)
    await kiosk.pc.setLocalDescription(await kiosk.pc.createOffer())
    listen.extend(_candidate_addresses(kiosk.pc.localDescription.sdp))
    offer = relay.sdp_for_agent(kiosk.pc.localDescription.sdp)
    await agent.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    agent.pc.addTrack(agent.voice)
    agent.pc.addTrack(agent.camera)
    apply_codec_preferences(agent.pc, profile)
    await agent.pc.setLocalDescription(await agent.pc.createAnswer())
    answer_raw = agent.pc.localDescription.sdp
    listen.extend(_candidate_addresses(answer_raw))
    relay.set_payload_kinds(answer_raw)
    await kiosk.pc.setRemoteDescription(RTCSessionDescription(sdp=relay.sdp_for_kiosk(answer_raw), type="answer"))


async def _poll_stats(kiosk: _Peer, agent: _Peer, clock: Callable[[], float], rtt_series: list) -> None:
    """Refresh both peers' RTP statistics; record the kiosk's RTT samples (from its RTCP RRs)."""
    rates = {"audio": AUDIO_SAMPLE_RATE_HZ, "video": 90_000}
    for peer in (kiosk, agent):
        try:
            peer.stats = asdict(await snapshot_stats(peer.pc, rates))
        except Exception as exc:  # stats are best effort; never kill the call for them
            log.warning("getStats failed on %s: %r", peer.name, exc)
    for kind, rem in kiosk.stats.get("remote_inbound", {}).items():
        rtt_series.append([round(clock(), 3), kind, round(rem["rtt_ms"], 2)])


async def _media_phase(kiosk: _Peer, agent: _Peer, relay: UdpRelay, config: CallConfig,
                       stop: asyncio.Event, rtt_series: list, doc_state: dict, listen: list[str]) -> None:
    """Signal, then watch the call until cancelled by the deadline or ``stop``."""
    await _signal(kiosk, agent, relay, config.profile, listen)
    clock = relay.now_s
    next_stats = clock() + STATS_INTERVAL_S
    while not stop.is_set():
        now = clock()
        connected_s = kiosk.first_state_time("connected")
        if connected_s is not None and now >= connected_s + config.documents_at_s:
            ch = kiosk.docs.channel
            if not doc_state["scan"] and ch is not None and ch.readyState == "open":
                doc_state["scan"] = True
                if config.scan_kb > 0:
                    kiosk.docs.send_document("scan", int(config.scan_kb * 1000),
                                             rate_kbps=config.profile.document_kbps)
            ch = agent.docs.channel
            if not doc_state["print"] and ch is not None and ch.readyState == "open":
                doc_state["print"] = True
                if config.print_kb > 0:
                    agent.docs.send_document("print", int(config.print_kb * 1000))
        if now >= next_stats:
            next_stats += STATS_INTERVAL_S
            await _poll_stats(kiosk, agent, clock, rtt_series)
        try:
            await asyncio.wait_for(stop.wait(), timeout=0.1)
        except TimeoutError:
            pass


async def run_call(config: CallConfig, *, handle_sigint: bool = True) -> CallResult:
    """Run one emulated call and measure it. Never raises for network conditions; ends on time.

    Args:
        config: the call (a :class:`CallConfig` is valid once made).
        handle_sigint: when running in the main thread, turn the first Ctrl-C into a clean early end
            (the second one interrupts as usual).
    """
    profile = config.profile
    up_q, down_q = config.link_queues()
    loop = asyncio.get_running_loop()
    started_at = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    wall0, cpu0 = time.perf_counter(), _cpu_s()
    stop = asyncio.Event()
    errors: list[str] = []
    rtt_series: list = []
    doc_state = {"scan": False, "print": False}
    listen: list[str] = []
    interrupted = False
    sigint_installed = False

    def on_sigint() -> None:
        nonlocal interrupted
        interrupted = True
        stop.set()
        try:
            loop.remove_signal_handler(signal.SIGINT)  # a second Ctrl-C interrupts for good
        except Exception:
            pass

    with contextlib.ExitStack() as stack:
        applied = stack.enter_context(encoder_limits(profile))
        if config.clock == "virtual":
            from emulators.encoder_setup import coding_delay_ms
            from emulators.virtual_time import (
                CodingDelay,
                VirtualClockLoop,
                VirtualNetwork,
                VirtualRelay,
                deterministic_aiortc,
            )

            if not isinstance(loop, VirtualClockLoop):
                raise RuntimeError("clock='virtual' needs a VirtualClockLoop (use run_emulated_call)")
            encode_ms, decode_ms = coding_delay_ms(profile)
            loop.coding_delay = CodingDelay(encode_s=encode_ms / 1000.0, decode_s=decode_ms / 1000.0)
            network = VirtualNetwork(loop)
            loop.network = network
            virtual_record = stack.enter_context(deterministic_aiortc(loop, config.seed))
            relay: UdpRelay = VirtualRelay(up_q, down_q, network)
        else:
            stack.enter_context(loopback_only())
            virtual_record = None
            relay = UdpRelay(up_q, down_q)
        await relay.start()
        listen.extend(f"{h}:{p}" for h, p in relay.sockets())
        clock = relay.now_s
        ledger_up, ledger_down = FrameLedger(), FrameLedger()
        kiosk = _Peer("kiosk", profile, clock, ledger_out=ledger_up, ledger_in=ledger_down)
        agent = _Peer("agent", profile, clock, ledger_out=ledger_down, ledger_in=ledger_up)
        if handle_sigint:
            try:
                loop.add_signal_handler(signal.SIGINT, on_sigint)
                sigint_installed = True
            except (NotImplementedError, RuntimeError, ValueError):
                pass
        end_s = config.duration_s
        try:
            body = asyncio.ensure_future(_media_phase(kiosk, agent, relay, config, stop, rtt_series, doc_state, listen))
            stopper = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({body, stopper}, timeout=max(0.0, config.duration_s - clock()),
                                         return_when=asyncio.FIRST_COMPLETED)
            if body in done and body.exception() is not None:
                exc = body.exception()
                errors.append(f"call body failed at {clock():.2f} s: {type(exc).__name__}: {exc}")
                # A failed peer does not end the call early: keep measuring until the deadline.
                if not stop.is_set():
                    await asyncio.wait({stopper}, timeout=max(0.0, config.duration_s - clock()))
            end_s = min(clock(), config.duration_s) if interrupted else config.duration_s
            stop.set()
            for task in (body, stopper):
                if not task.done():
                    task.cancel()
            await asyncio.gather(body, stopper, return_exceptions=True)
            try:  # last statistics, taken at the end of the media phase
                await asyncio.wait_for(_poll_stats(kiosk, agent, clock, rtt_series), timeout=1.0)
            except TimeoutError:
                errors.append("final getStats timed out")
        except asyncio.CancelledError:
            interrupted = True
            end_s = min(clock(), config.duration_s)
        finally:
            if sigint_installed:
                try:
                    loop.remove_signal_handler(signal.SIGINT)
                except Exception:
                    pass
            # Freeze the measurement window before closing (closing makes no media).
            kiosk_states_at_end = list(kiosk.states)
            agent_states_at_end = list(agent.states)
            for peer in (kiosk, agent):
                peer.docs.stop()
            for peer in (kiosk, agent):
                try:
                    await asyncio.wait_for(peer.pc.close(), timeout=CLOSE_TIMEOUT_S)
                except (TimeoutError, Exception) as exc:  # noqa: BLE001 - report, never hang
                    errors.append(f"{peer.name} close: {type(exc).__name__}: {exc}")
            for peer in (kiosk, agent):
                # aiortc's decoder threads are not daemons: if close() timed out before stopping a
                # receiver, its thread would keep the process alive. _handle_disconnect() stops it
                # (idempotent; aiortc calls it itself when the DTLS transport closes).
                for transceiver in peer.pc.getTransceivers():
                    try:
                        transceiver.receiver._handle_disconnect()
                    except Exception as exc:  # noqa: BLE001
                        errors.append(f"{peer.name} decoder stop: {type(exc).__name__}: {exc}")
                for task in peer.tasks:
                    task.cancel()
                await asyncio.gather(*peer.tasks, return_exceptions=True)
            relay.close()

    worker = getattr(loop, "coding_worker", None)
    if worker is not None:  # encoding failures aiortc's senders only logged
        errors.extend(worker.failures)
    wall_s = time.perf_counter() - wall0
    wall = WallClock(started_at=started_at, wall_s=wall_s, cpu_s=_cpu_s() - cpu0,
                     speedup=end_s / wall_s if wall_s > 0 else None)
    log.info("call media+close took %.2f s of wall time", wall_s)
    return _assemble(config, relay, up_q, down_q, kiosk, agent, kiosk_states_at_end, agent_states_at_end,
                     end_s, wall, interrupted, applied, virtual_record, errors, rtt_series, listen)


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
    )


def _assemble(config, relay, up_q, down_q, kiosk, agent, kiosk_states, agent_states, end_s, wall,
              interrupted, applied, virtual_record, errors, rtt_series, listen) -> CallResult:
    connected_s = next((t for t, s in kiosk_states if s == "connected"), None)
    window_start = connected_s if connected_s is not None and connected_s < end_s else end_s
    video = PerDirection(
        up=_video_result(agent, kiosk, window_start, end_s, config.compute_ssim),
        down=_video_result(kiosk, agent, window_start, end_s, config.compute_ssim),
    )
    return CallResult(
        config=config,
        wall=wall,
        duration_s=end_s,
        interrupted=interrupted,
        setup=SetupResult(
            ice_completed_s=next((t for t, s in kiosk.ice_states if s == "completed"), None),
            connected_s=connected_s,
            first_frame_up_s=video.up.first_frame_s,
            first_frame_down_s=video.down.first_frame_s,
        ),
        connection=ConnectionResult.from_states(kiosk_states, agent_states, kiosk.ice_states, end_s, listen),
        video=video,
        audio=PerDirection(up=_audio_summary(agent, kiosk), down=_audio_summary(kiosk, agent)),
        network=PerDirection(up=NetworkResult.from_relay(relay, up_q, "up", window_start, end_s),
                             down=NetworkResult.from_relay(relay, down_q, "down", window_start, end_s)),
        rtt_ms=RttResult.from_samples(rtt_series, relay.delay_by_bin("up", end_s), relay.delay_by_bin("down", end_s)),
        documents=DocumentResults(
            scan=DocumentResult.from_transfer(kiosk.docs.outgoing.get("scan"), agent.docs, end_s),
            print=DocumentResult.from_transfer(agent.docs.outgoing.get("print"), kiosk.docs, end_s),
        ),
        encoder=applied,
        virtual_time=virtual_record,
        errors=tuple(errors),
        digest=relay.event_digest(),
    )


def _cpu_s() -> float:
    """User + system CPU seconds of this process and of its children that have been waited for."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def run_emulated_call(config: CallConfig) -> CallResult:
    """Synchronous wrapper: run :func:`run_call` on a fresh event loop (a
    :class:`emulators.virtual_time.VirtualClockLoop` when ``config.clock == "virtual"``)."""
    if config.clock == "virtual":
        from emulators.virtual_time import run_virtual

        return run_virtual(lambda: run_call(config))
    return asyncio.run(run_call(config))
