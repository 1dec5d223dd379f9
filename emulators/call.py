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
:class:`CallResult` (JSON-ready via :meth:`CallResult.to_dict`, written with :func:`write_call_result`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import io
import logging
import math
import os
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

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
from emulators.relay import UdpRelay, link_stats_dict, loopback_only
from twin.profiles import EncoderProfile
from twin.quality import VIDEO_PACKET_OVERHEAD_BYTES

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 3.0
"""Bound on each peer's ``close()`` after the deadline (a peer stuck on a dead line must not hang)."""

STATS_INTERVAL_S = 1.0


# --------------------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------------------


@dataclass
class CallResult:
    """Everything measured in one call. Times are seconds from the call start (relay clock origin).

    ``video``/``audio``/``network`` are keyed by direction: ``"up"`` = kiosk -> agent (what the agent
    sees), ``"down"`` = agent -> kiosk. ``dead`` is True when no video frame arrived in either direction.

    Everything read from the host's clocks is under ``wall`` (``started_at``, ``wall_s`` = wall time of
    the call and its teardown, ``cpu_s`` = CPU time of the process and of its finished children (the
    virtual-time coding workers) over the same span, ``speedup`` =
    ``duration_s / wall_s``), so that two virtual-time calls with the same configuration give identical
    results outside ``wall``. ``digest`` is :meth:`emulators.relay.UdpRelay.event_digest` (SHA-256 over
    every network event).
    """

    config: dict
    wall: dict
    duration_s: float
    interrupted: bool
    setup: dict
    connection: dict
    video: dict
    audio: dict
    network: dict
    rtt_ms: dict
    documents: dict
    encoder: dict
    errors: list[str]
    dead: bool
    verdict: list[str]
    digest: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return _json_safe(asdict(self))

    def deterministic_dict(self) -> dict:
        """:meth:`to_dict` without the ``wall`` section (what two same-seed virtual calls share)."""
        d = self.to_dict()
        d.pop("wall", None)
        return d

    @property
    def wall_s(self) -> float:
        return float(self.wall["wall_s"])

    # Convenience accessors used by the CLI, the calibration and tests.
    def fps(self, direction: str) -> float:
        return float(self.video[direction]["fps_mean"])

    def video_kbps(self, direction: str) -> float:
        return float(self.network[direction]["video_kbps_mean"])


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


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
            applied = {**applied, "virtual_time": stack.enter_context(deterministic_aiortc(loop, config.seed))}
            relay: UdpRelay = VirtualRelay(up_q, down_q, network)
        else:
            stack.enter_context(loopback_only())
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
    wall = {"started_at": started_at, "wall_s": wall_s, "cpu_s": _cpu_s() - cpu0,
            "speedup": end_s / wall_s if wall_s > 0 else None}
    log.info("call media+close took %.2f s of wall time", wall_s)
    return _assemble(config, relay, up_q, down_q, kiosk, agent, kiosk_states_at_end, agent_states_at_end,
                     end_s, wall, interrupted, applied, errors, rtt_series, listen)


def _doc_record(transfer, receiver_side, end_s: float) -> dict:
    if transfer is None:
        return {"size_kb": 0.0, "started_s": None, "received_s": None, "received_duration_s": None,
                "completed_s": None, "duration_s": None,
                "bytes_received": 0, "complete": False, "goodput_kbps": None}
    got = receiver_side.incoming.get(transfer.kind) if receiver_side is not None else None
    received = got.bytes_received if got is not None else 0
    duration = transfer.duration_s
    complete = transfer.acked_s is not None and transfer.acked_s <= end_s
    span = (transfer.acked_s if complete else end_s) - transfer.started_s if transfer.started_s is not None else None
    received_s = got.received_s if got is not None and got.received_s is not None and got.received_s <= end_s else None
    return {
        "size_kb": transfer.size_bytes / 1000.0,
        "started_s": transfer.started_s,
        "received_s": received_s,
        "received_duration_s": (received_s - transfer.started_s) if received_s is not None else None,
        "completed_s": transfer.acked_s if complete else None,
        "duration_s": duration if complete else None,
        "bytes_received": received,
        "complete": complete,
        "goodput_kbps": (received * 8 / 1000.0 / span) if span and span > 0 else None,
    }


def _assemble(config, relay, up_q, down_q, kiosk, agent, kiosk_states, agent_states, end_s, wall,
              interrupted, applied, errors, rtt_series, listen) -> CallResult:
    connected_s = next((t for t, s in kiosk_states if s == "connected"), None)
    window_start = connected_s if connected_s is not None and connected_s < end_s else end_s
    video = {}
    for direction, sink, sender in (("up", agent.video_sink, kiosk), ("down", kiosk.video_sink, agent)):
        summary = summarize_video(sink, sender.scene, window_start, end_s, compute_ssim=config.compute_ssim)
        d = summary.to_dict()
        d["window_s"] = [window_start, end_s]
        video[direction] = d
    network = {}
    for direction, queue in (("up", up_q), ("down", down_q)):
        s = relay.summary(direction, end_s=end_s)
        s["link"] = link_stats_dict(queue)
        s["delay_series_ms"] = relay.delay_series(direction)
        span = max(end_s - window_start, 1e-9)
        kinds = s["kbps_by_kind"]
        for kind in ("video", "audio", "dtls", "rtcp"):
            series = kinds.get(kind, [])
            lo = int(math.floor(window_start))
            vals = series[lo:]
            s[f"{kind}_kbps_mean"] = float(np.sum(vals)) / span if vals and end_s > window_start else 0.0
        # Codec payload received: IP bytes minus the per-packet headers twin.quality counts (IPv4, UDP,
        # RTP, header extensions, SRTP tag), so it compares with an encoder bitrate (G.1070's Br).
        n_video = s["delivered_packets_by_kind"].get("video", 0)
        overhead_kbps = n_video * VIDEO_PACKET_OVERHEAD_BYTES * 8 / 1000.0 / span if end_s > window_start else 0.0
        s["video_payload_kbps_mean"] = max(0.0, s["video_kbps_mean"] - overhead_kbps)
        for kind in ("video", "audio"):
            arrived = s["packets_by_kind"].get(kind, 0)
            dropped = s["dropped_packets_by_kind"].get(kind, 0)
            s[f"{kind}_drop_pct"] = 100.0 * dropped / arrived if arrived else None
        network[direction] = s
    audio = {}
    for direction, receiver, sender in (("up", agent, kiosk), ("down", kiosk, agent)):
        inbound = receiver.stats.get("inbound", {}).get("audio", {})
        rec, lost = inbound.get("packets_received"), inbound.get("packets_lost")
        decoded_frames = len(receiver.audio_sink.frame_times_s)
        sent = sender.voice.frames_sent
        samples_sent, samples_decoded = sender.voice.samples_sent, receiver.audio_sink.samples_received
        audio[direction] = AudioSummary(
            frames_sent=sent,
            frames_decoded=decoded_frames,
            samples_sent=samples_sent,
            samples_decoded=samples_decoded,
            packets_received=rec,
            packets_lost=lost,
            packet_loss_pct=loss_pct(rec, lost),
            jitter_ms=inbound.get("jitter_ms"),
            decoded_loss_pct=(100.0 * max(0.0, 1.0 - samples_decoded / samples_sent)) if samples_sent else None,
        ).to_dict()
        out = sender.stats.get("outbound", {}).get("video", {})
        span = end_s - window_start
        sent_bytes = out.get("bytes_sent")
        video[direction]["encoder_kbps"] = (sent_bytes * 8 / 1000.0 / span) if sent_bytes and span > 0 else None
        vin = receiver.stats.get("inbound", {}).get("video", {})
        video[direction]["rtp_packets_received"] = vin.get("packets_received")
        video[direction]["rtp_packets_lost"] = vin.get("packets_lost")
        video[direction]["rtp_loss_pct"] = loss_pct(vin.get("packets_received"), vin.get("packets_lost"))
        video[direction]["jitter_ms"] = vin.get("jitter_ms")
    rtts = [r for _, _, r in rtt_series]
    # Path RTT seen by the emulated line: mean added delay up + down per second (relay records).
    # aiortc's own RTT (RTCP SR/RR) exists only while the RTT is below its ~1 s SR interval: it matches
    # a receiver report against the *last* SR sent only, so a bloated buffer leaves it empty.
    up_d, down_d = relay.delay_by_bin("up", end_s), relay.delay_by_bin("down", end_s)
    path = [[float(i), round(u + d, 2)] for i, (u, d) in enumerate(zip(up_d, down_d)) if u is not None and d is not None]
    path_values = [v for _, v in path]
    rtt = {
        "mean": float(np.mean(rtts)) if rtts else None,
        "p95": float(np.percentile(rtts, 95)) if rtts else None,
        "series": rtt_series,
        "path_mean": float(np.mean(path_values)) if path_values else None,
        "path_p95": float(np.percentile(path_values, 95)) if path_values else None,
        "path_series": path,
    }
    died_at = None
    failure = None
    for t, s in kiosk_states + agent_states:
        if s in ("failed", "closed") and t < end_s - 1e-3:
            if died_at is None or t < died_at:
                died_at, failure = t, s
    ice_completed = next((t for t, s in kiosk.ice_states if s == "completed"), None)
    connection = {
        "kiosk_states": kiosk_states,
        "agent_states": agent_states,
        "kiosk_ice_states": kiosk.ice_states,
        "ever_connected": connected_s is not None,
        "died": died_at is not None,
        "died_at_s": died_at,
        "failure_state": failure,
        "listen_addresses": listen,
    }
    setup = {
        "ice_completed_s": ice_completed,
        "connected_s": connected_s,
        "first_frame_up_s": video["up"]["first_frame_s"] + window_start if video["up"]["first_frame_s"] is not None else None,
        "first_frame_down_s": video["down"]["first_frame_s"] + window_start if video["down"]["first_frame_s"] is not None else None,
    }
    # summarize_video reports first_frame relative to its window start; store absolute call times.
    for direction in ("up", "down"):
        video[direction]["first_frame_s"] = setup[f"first_frame_{direction}_s"]
    documents = {
        "scan": _doc_record(kiosk.docs.outgoing.get("scan"), agent.docs, end_s),
        "print": _doc_record(agent.docs.outgoing.get("print"), kiosk.docs, end_s),
    }
    dead = video["up"]["frames_decoded"] == 0 and video["down"]["frames_decoded"] == 0
    result = CallResult(
        config=config.describe(),
        wall=wall,
        duration_s=end_s,
        interrupted=interrupted,
        setup=setup,
        connection=connection,
        video=video,
        audio=audio,
        network=network,
        rtt_ms=rtt,
        documents=documents,
        encoder=applied,
        errors=errors,
        dead=dead,
        verdict=[],
        digest=relay.event_digest(),
    )
    result.verdict = verdict_lines(result)
    return result


# --------------------------------------------------------------------------------------------------
# Verdict, files, plots
# --------------------------------------------------------------------------------------------------


def _fmt(v: float | None, spec: str, unit: str = "") -> str:
    return "n/a" if v is None else f"{v:{spec}}{unit}"


def verdict_lines(result: CallResult) -> list[str]:
    """Short human verdict: one line per video direction, documents, connection fate."""
    lines = []
    conn = result.connection
    if result.dead:
        why = "line dead" if not conn["ever_connected"] else "connection up but no frame decoded"
        if conn["ever_connected"] and conn["died"]:
            why = f"connection {conn['failure_state']} at {conn['died_at_s']:.1f} s"
        lines.append(f"no video received: {why}")
    names = {"up": "uplink (kiosk->agent)", "down": "downlink (agent->kiosk)"}
    for direction in ("up", "down"):
        v = result.video[direction]
        if v["frames_decoded"] == 0:
            if not result.dead:
                lines.append(f"{names[direction]}: no video received")
            continue
        pauses = f", {v['pause_count']} pauses" if v["pause_count"] else ""
        lines.append(
            f"{names[direction]} video {v['fps_mean']:.1f} fps, {v['freeze_count']} freezes{pauses}, "
            f"p95 delay {_fmt(v['delay']['p95_ms'], '.0f', ' ms')}, PSNR {_fmt(v['psnr_db'], '.1f', ' dB')}, "
            f"{result.network[direction]['video_kbps_mean']:.0f} kbit/s"
        )
    docs = []
    for name in ("scan", "print"):
        d = result.documents[name]
        if d["size_kb"] <= 0 or d["started_s"] is None:
            continue
        if d["complete"]:
            docs.append(f"{name} {d['size_kb']:.0f} KB in {d['duration_s']:.1f} s")
        elif d["received_s"] is not None:
            docs.append(f"{name} {d['size_kb']:.0f} KB received in {d['received_duration_s']:.1f} s (ack not back)")
        else:
            docs.append(f"{name} incomplete: {d['bytes_received'] / 1000:.0f} of {d['size_kb']:.0f} KB "
                        f"in {result.duration_s - d['started_s']:.0f} s")
    if docs:
        lines.append("; ".join(docs))
    if conn["died"] and not result.dead:
        before = [v for t, v in result.rtt_ms["path_series"] if t < conn["died_at_s"]]
        why = (f"path RTT {before[-1] / 1000:.1f} s before it: ICE consent checks time out"
               if before and before[-1] > 1000 else "cause not identified")
        lines.append(f"connection {conn['failure_state']} itself at {conn['died_at_s']:.1f} s ({why})")
    if result.interrupted:
        lines.append(f"interrupted at {result.duration_s:.1f} s: partial measurements")
    return lines


def plot_call(result: CallResult):
    """Figure with frame rate, delivered bitrate and frame delay per direction (a matplotlib ``Figure``
    on the Agg canvas, made without pyplot: no global figure state, and pyplot's import is skipped)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 9))
    FigureCanvasAgg(fig)
    axes = fig.subplots(3, 1, sharex=True)
    colors = {"up": "tab:blue", "down": "tab:orange"}
    label = {"up": "kiosk->agent", "down": "agent->kiosk"}
    for direction in ("up", "down"):
        v = result.video[direction]
        start = v["window_s"][0]
        fps = v["fps_series"]
        if fps:
            axes[0].step(start + np.arange(len(fps) + 1), fps + fps[-1:], where="post", color=colors[direction],
                         label=label[direction])
        kinds = result.network[direction]["kbps_by_kind"]
        for kind, style in (("video", "-"), ("audio", ":"), ("dtls", "--")):
            series = kinds.get(kind)
            if series:
                axes[1].step(np.arange(len(series) + 1), series + series[-1:], where="post", linestyle=style,
                             color=colors[direction],
                             label=f"{label[direction]} {kind if kind != 'dtls' else 'data'}")
        pts = np.asarray(v["delay_series_ms"], float).reshape(-1, 2)
        if pts.size:
            axes[2].plot(pts[:, 0] + start, pts[:, 1], ".", ms=3, color=colors[direction], label=f"{label[direction]} frames")
    axes[0].set_ylabel("decoded frames/s")
    axes[1].set_ylabel("delivered kbit/s (IP)")
    axes[2].set_ylabel("frame delay (ms)")
    axes[2].set_xlabel("time from call start (s)")
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # an empty call (interrupted at once, dead line) has none
            ax.legend(fontsize=7, loc="upper right")
    line = result.config["line"]
    fig.suptitle(f"{line['offer']} ({line['sync_rate_up_kbps']:.0f}/{line['sync_rate_down_kbps']:.0f} kbit/s up/down), "
                 f"profile {result.config['profile']['name']}", fontsize=10)
    fig.tight_layout()
    return fig


def write_call_result(result: CallResult, out_dir: str | Path, plot: bool = True) -> Path:
    """Write ``result.json`` and ``timeseries.png`` into ``out_dir`` (atomically); returns the folder."""
    from twin.run.atomic import atomic_write_bytes, atomic_write_json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "result.json", result.to_dict())
    if plot:
        fig = plot_call(result)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        atomic_write_bytes(out / "timeseries.png", buf.getvalue())
    return out


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
