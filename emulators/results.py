"""What one emulated call measured, as frozen, typed records (:class:`CallResult` and its parts).

Times are seconds from the call start (the relay clock's origin) unless a docstring says otherwise;
names carry the other units (``_ms``, ``_kbps``, ``_pct``, ``_bytes``). Per-direction records sit in a
:class:`PerDirection`: ``up`` = kiosk -> agent (what the agent receives), ``down`` = agent -> kiosk.

:meth:`CallResult.to_dict` is the JSON form written to ``result.json``: its keys and values are the
file's layout (the attribute names follow it, except that the virtual-time record, an attribute of its
own here, is written under ``encoder``). The alternative constructors (``from_...``) take what the
call's relay, peers and document endpoints recorded; :mod:`emulators.call` assembles them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

from emulators.causes import CallEnd
from emulators.encoder_setup import EncoderSettings
from emulators.evidence import PacketCapture
from emulators.metrics import AudioSummary, VideoSummary
from emulators.relay import EventDigest, link_stats_dict
from emulators.virtual_time import VirtualTimeRecord
from twin.quality import VIDEO_PACKET_OVERHEAD_BYTES

if TYPE_CHECKING:
    from emulators.config import CallConfig
    from emulators.media import DocumentEndpoint, DocumentTransfer
    from emulators.relay import UdpRelay
    from twin.line import LinkQueue

T = TypeVar("T")

DIRECTIONS = ("up", "down")
"""``up`` = kiosk -> agent, ``down`` = agent -> kiosk."""

#: Kinds of packet whose mean delivered bitrate :class:`NetworkResult` reports.
MEAN_RATE_KINDS = ("video", "audio", "dtls", "rtcp")


@dataclass(frozen=True)
class PerDirection(Generic[T]):
    """One record per direction of the call: ``up`` (kiosk -> agent), ``down`` (agent -> kiosk);
    ``pair["up"]`` reads like ``pair.up``."""

    up: T
    down: T

    def __getitem__(self, direction: str) -> T:
        """The record of ``direction`` (``"up"`` or ``"down"``); KeyError otherwise."""
        if direction == "up":
            return self.up
        if direction == "down":
            return self.down
        raise KeyError(direction)

    def to_dict(self) -> dict:
        """``{"up": ..., "down": ...}`` with each record as a dict."""
        return {"up": asdict(self.up), "down": asdict(self.down)}


@dataclass(frozen=True)
class WallClock:
    """Everything read from the host's clocks (so that two virtual-time calls with the same configuration
    give identical results outside it).

    Attributes:
        started_at: UTC start of the call, ISO 8601 to the second.
        wall_s: wall time of the call and its teardown, s.
        cpu_s: CPU time of the process and of its finished children (the virtual-time coding workers)
            over the same span, s.
        speedup: call seconds per wall second (``duration_s / wall_s``; None if ``wall_s`` is 0).
    """

    started_at: str
    wall_s: float
    cpu_s: float
    speedup: float | None


@dataclass(frozen=True)
class SetupResult:
    """How fast the call came up, s from the call start (None: never): ICE ``completed`` at the kiosk,
    kiosk ``connected``, first video frame decoded at the agent (``up``) and at the kiosk (``down``)."""

    ice_completed_s: float | None
    connected_s: float | None
    first_frame_up_s: float | None
    first_frame_down_s: float | None


@dataclass(frozen=True)
class ConnectionResult:
    """The peer connections' fate.

    Attributes:
        kiosk_states, agent_states: ``(time_s, connectionState)`` changes of each peer until the end of
            the media phase (the teardown's ``closed`` is not in them).
        kiosk_ice_states: ``(time_s, iceConnectionState)`` changes of the kiosk.
        ever_connected: the kiosk reached ``connected``.
        died: a peer went ``failed`` or ``closed`` before the end; ``died_at_s`` the first such time,
            ``failure_state`` that state (None when it did not die).
        listen_addresses: ``ip:port`` of every socket the call listened on (relay sockets, then the
            peers' ICE candidates).
    """

    kiosk_states: tuple[tuple[float, str], ...]
    agent_states: tuple[tuple[float, str], ...]
    kiosk_ice_states: tuple[tuple[float, str], ...]
    ever_connected: bool
    died: bool
    died_at_s: float | None
    failure_state: str | None
    listen_addresses: tuple[str, ...]

    @classmethod
    def from_states(cls, kiosk_states: list, agent_states: list, kiosk_ice_states: list, end_s: float,
                    listen_addresses: list[str]) -> ConnectionResult:
        """From the peers' ``[time_s, state]`` lists; a peer dies if ``failed``/``closed`` before ``end_s``."""
        died_at = None
        failure = None
        for t, s in list(kiosk_states) + list(agent_states):
            if s in ("failed", "closed") and t < end_s - 1e-3 and (died_at is None or t < died_at):
                died_at, failure = t, s
        return cls(
            kiosk_states=_pairs(kiosk_states),
            agent_states=_pairs(agent_states),
            kiosk_ice_states=_pairs(kiosk_ice_states),
            ever_connected=any(s == "connected" for _, s in kiosk_states),
            died=died_at is not None,
            died_at_s=died_at,
            failure_state=failure,
            listen_addresses=tuple(listen_addresses),
        )


def _pairs(rows: list) -> tuple[tuple[Any, ...], ...]:
    return tuple(tuple(row) for row in rows)


LOSS_BURST_MIN_PACKETS = 3
"""Consecutive packets a direction must lose (to random loss, a full queue or the AQM) for the run to count
as a loss burst whose recovery is timed."""

MAX_RECOVERIES = 100
"""Episodes timed per direction at most (the first ones; a call with thousands of bursts is summed up by
its loss figures)."""


@dataclass(frozen=True)
class Recovery:
    """How one direction's video came back after an outage or a loss burst.

    Attributes:
        cause: ``"outage"`` (a scheduled line outage) or ``"loss burst"`` (at least
            :data:`LOSS_BURST_MIN_PACKETS` packets of the direction lost in a row).
        start_s, end_s: the episode, s from the call start (an outage's interval; a burst's first and last
            lost packet).
        packets_dropped: packets of the direction the line dropped during it.
        recovered_s: when the first good video frame (intact reference chain) captured at or after
            ``end_s`` was decoded: live video is back (frames captured during the episode and repaired
            by retransmissions only catch up); None if none came before the end of the call.
        time_to_recover_s: ``recovered_s - end_s`` (None: not recovered).
    """

    cause: str
    start_s: float
    end_s: float
    packets_dropped: int
    recovered_s: float | None
    time_to_recover_s: float | None


def find_recoveries(arrival_s: Sequence[float], drop: Sequence[str], outages: Sequence[tuple[float, float]],
                    good_frames: Sequence[tuple[float, float]], end_s: float) -> tuple[Recovery, ...]:
    """The episodes of one direction (its outages within the call, and its loss bursts from the relay's
    per-packet log, merged where they overlap) and the first good frame after each.

    Args:
        arrival_s, drop: the relay's per-packet arrival times and drop reasons (``""``: delivered).
        outages: the call's outage intervals, s.
        good_frames: ``(capture_s, decoded_s)`` of the good frames of the direction, in decoding order.
        end_s: end of the call.
    """
    episodes: list[list] = [["outage", s, min(e, end_s), 0] for s, e in outages if s < end_s]
    run: list[float] = []
    for t, reason in zip(list(arrival_s) + [math.inf], list(drop) + [""]):
        if reason and reason != "outage":
            run.append(t)
            continue
        if len(run) >= LOSS_BURST_MIN_PACKETS:
            episodes.append(["loss burst", run[0], run[-1], 0])
        run = []
    episodes.sort(key=lambda e: (e[1], e[0] != "outage"))
    merged: list[list] = []
    for ep in episodes:
        if merged and ep[1] <= merged[-1][2]:
            merged[-1][2] = max(merged[-1][2], ep[2])
        else:
            merged.append(ep)
    out = []
    for cause, start, end, _ in merged[:MAX_RECOVERIES]:
        dropped = sum(1 for t, reason in zip(arrival_s, drop) if reason and start <= t <= end)
        recovered = next((decoded for captured, decoded in good_frames if captured >= end and decoded <= end_s), None)
        out.append(Recovery(cause, start, end, dropped, recovered, None if recovered is None else recovered - end))
    return tuple(out)


@dataclass(frozen=True)
class VideoResult(VideoSummary):
    """One direction's video: the receiver's :class:`emulators.metrics.VideoSummary` over the
    measurement window (from ``connected`` to the end), plus the sender's encoder rate and the receiver's
    RTP statistics.

    Unlike in :class:`~emulators.metrics.VideoSummary`, ``first_frame_s`` is from the call start; the
    stalls' ``start_s`` and the times of ``delay_series_ms`` stay from the window start (``window_s[0]``).

    Attributes:
        window_s: ``(start_s, end_s)`` of the measurement window, s from the call start.
        encoder_kbps: RTP payload the sender sent over the window, kbit/s (None: no statistics).
        rtp_packets_received, rtp_packets_lost, rtp_loss_pct: the receiver's RTP counters and the loss
            they imply, % (None: no statistics).
        jitter_ms: the receiver's RTP interarrival jitter, ms.
        recoveries: each outage and loss burst of the direction and how the video came back
            (:class:`Recovery`); ``time_to_recover_s`` the longest recovery among them (None: none, or
            none recovered), ``unrecovered`` how many never recovered before the end.
    """

    window_s: tuple[float, float]
    encoder_kbps: float | None
    rtp_packets_received: int | None
    rtp_packets_lost: int | None
    rtp_loss_pct: float | None
    jitter_ms: float | None
    recoveries: tuple[Recovery, ...] = ()
    time_to_recover_s: float | None = None
    unrecovered: int = 0

    @classmethod
    def from_summary(cls, summary: VideoSummary, **call_fields: Any) -> VideoResult:
        """``summary``'s fields with ``first_frame_s`` moved to the call start (``+ window_s[0]``), and
        ``call_fields`` (the fields this class adds)."""
        window_start = call_fields["window_s"][0]
        values = {f.name: getattr(summary, f.name) for f in fields(summary)}
        if summary.first_frame_s is not None:
            values["first_frame_s"] = summary.first_frame_s + window_start
        return cls(**values, **call_fields)


@dataclass(frozen=True)
class QueueDelayMs:
    """Delay the emulated line added to delivered packets (queueing, serialization, fixed delay), ms
    (None: no packet delivered)."""

    mean: float | None
    p50: float | None
    p95: float | None
    max: float | None


@dataclass(frozen=True)
class LateMs:
    """How late the relay actually sent packets compared with the line's delivery time, ms (the
    emulator's own error; 0 in virtual time; None: nothing sent)."""

    mean: float | None
    p95: float | None
    max: float | None


@dataclass(frozen=True)
class NetworkResult:
    """One direction of the emulated line, from the relay's per-packet log
    (:meth:`emulators.relay.UdpRelay.summary`) and the direction's LinkQueue.

    Packets and bytes are IP datagrams; kinds are those of :data:`emulators.relay.KINDS`; series have one
    value per second of the call.

    Attributes:
        packets_in, packets_delivered: datagrams offered to the line, and given a delivery time.
        packets_dropped: dropped datagrams by reason (``buffer``, ``loss``, ``outage``).
        foreign_packets: datagrams from unknown addresses, ignored.
        bytes_in, bytes_delivered: IP bytes offered and delivered.
        queue_delay_ms: added delay of delivered packets; ``delay_series_ms`` its ``(arrival_s, ms)``
            per packet (decimated).
        late_ms: the relay's lateness.
        offered_kbps_series: IP bitrate offered to the line, kbit/s per second.
        kbps_by_kind: delivered IP bitrate per kind, kbit/s per second.
        packets_by_kind, delivered_packets_by_kind, dropped_packets_by_kind: datagram counts per kind
            (delivered: within the call).
        link: the LinkQueue's counters (:class:`twin.line.LinkStats` fields, ``packets_dropped``,
            ``loss_fraction``).
        video_kbps_mean, audio_kbps_mean, dtls_kbps_mean, rtcp_kbps_mean: delivered IP bitrate per kind
            over the measurement window, kbit/s.
        video_payload_kbps_mean: video codec payload delivered over the window, kbit/s: IP bitrate minus
            :data:`twin.quality.VIDEO_PACKET_OVERHEAD_BYTES` per packet, comparable with an encoder
            bitrate (G.1070's Br).
        video_drop_pct, audio_drop_pct: dropped / offered packets of the kind, % (None: none offered).
    """

    packets_in: int
    packets_delivered: int
    packets_dropped: dict[str, int]
    foreign_packets: int
    bytes_in: int
    bytes_delivered: int
    queue_delay_ms: QueueDelayMs
    late_ms: LateMs
    offered_kbps_series: tuple[float, ...]
    kbps_by_kind: dict[str, list[float]]
    packets_by_kind: dict[str, int]
    delivered_packets_by_kind: dict[str, int]
    dropped_packets_by_kind: dict[str, int]
    link: dict[str, float]
    delay_series_ms: tuple[tuple[float, float], ...]
    video_kbps_mean: float
    audio_kbps_mean: float
    dtls_kbps_mean: float
    rtcp_kbps_mean: float
    video_payload_kbps_mean: float
    video_drop_pct: float | None
    audio_drop_pct: float | None

    @classmethod
    def from_relay(cls, relay: UdpRelay, queue: LinkQueue, direction: str, window_start_s: float,
                   end_s: float) -> NetworkResult:
        """Direction ``direction`` of ``relay`` (its LinkQueue ``queue``), means over
        ``[window_start_s, end_s]``."""
        s = relay.summary(direction, end_s=end_s)
        span = max(end_s - window_start_s, 1e-9)
        means = {}
        for kind in MEAN_RATE_KINDS:
            series = s["kbps_by_kind"].get(kind, [])
            vals = series[int(math.floor(window_start_s)):]
            means[f"{kind}_kbps_mean"] = float(np.sum(vals)) / span if vals and end_s > window_start_s else 0.0
        # Codec payload received: IP bytes minus the per-packet headers twin.quality counts (IPv4, UDP,
        # RTP, header extensions, SRTP tag), so it compares with an encoder bitrate (G.1070's Br).
        n_video = s["delivered_packets_by_kind"].get("video", 0)
        overhead_kbps = n_video * VIDEO_PACKET_OVERHEAD_BYTES * 8 / 1000.0 / span if end_s > window_start_s else 0.0
        drop_pct = {}
        for kind in ("video", "audio"):
            arrived = s["packets_by_kind"].get(kind, 0)
            dropped = s["dropped_packets_by_kind"].get(kind, 0)
            drop_pct[f"{kind}_drop_pct"] = 100.0 * dropped / arrived if arrived else None
        return cls(
            **{**s, "queue_delay_ms": QueueDelayMs(**s["queue_delay_ms"]), "late_ms": LateMs(**s["late_ms"]),
               "offered_kbps_series": tuple(s["offered_kbps_series"])},
            link=link_stats_dict(queue),
            delay_series_ms=_pairs(relay.delay_series(direction)),
            **means,
            video_payload_kbps_mean=max(0.0, means["video_kbps_mean"] - overhead_kbps),
            **drop_pct,
        )


@dataclass(frozen=True)
class RttResult:
    """Round-trip times, ms.

    Attributes:
        mean, p95: aiortc's own RTT samples (RTCP SR/RR at the kiosk); ``series`` holds
            ``(time_s, kind, rtt_ms)`` per sample. They exist only while the RTT is below aiortc's ~1 s
            SR interval: it matches a receiver report against the *last* SR sent only, so a bloated
            buffer leaves them empty (None).
        path_mean, path_p95: path RTT seen by the emulated line: mean added delay up + down, per second
            of the call; ``path_series`` holds ``(second, rtt_ms)`` for the seconds with packets both ways.
    """

    mean: float | None
    p95: float | None
    series: tuple[tuple[float, str, float], ...]
    path_mean: float | None
    path_p95: float | None
    path_series: tuple[tuple[float, float], ...]

    @classmethod
    def from_samples(cls, rtt_series: list, up_delay_ms: list[float | None],
                     down_delay_ms: list[float | None]) -> RttResult:
        """From aiortc's ``[time_s, kind, rtt_ms]`` samples and the relay's mean added delay per second
        of each direction (:meth:`emulators.relay.UdpRelay.delay_by_bin`)."""
        rtts = [r for _, _, r in rtt_series]
        path = [(float(i), round(u + d, 2)) for i, (u, d) in enumerate(zip(up_delay_ms, down_delay_ms))
                if u is not None and d is not None]
        path_values = [v for _, v in path]
        return cls(
            mean=float(np.mean(rtts)) if rtts else None,
            p95=float(np.percentile(rtts, 95)) if rtts else None,
            series=_pairs(rtt_series),
            path_mean=float(np.mean(path_values)) if path_values else None,
            path_p95=float(np.percentile(path_values, 95)) if path_values else None,
            path_series=tuple(path),
        )


@dataclass(frozen=True)
class DocumentResult:
    """One document over the data channel (a scan up or a print down).

    Attributes:
        size_kb: document size, KB (1000 bytes); 0 when the transfer was off.
        started_s: first byte handed to the channel, s from the call start (None: never started).
        received_s: last byte at the receiver (None: not within the call); ``received_duration_s`` from
            the start.
        completed_s: the sender got the receiver's acknowledgement, within the call (None otherwise);
            ``duration_s`` from the start; ``complete`` whether it happened.
        bytes_received: bytes at the receiver.
        goodput_kbps: document bytes over the transfer's time (to the acknowledgement, or to the end of
            the call), kbit/s: the transfer's throughput.
        message_bytes, messages_sent: the data-channel messages the document went in.
        buffer_waits, max_buffered_bytes: how often the sender waited for ``bufferedamountlow``
            (back-pressure) and the largest ``bufferedAmount`` it saw, bytes.
    """

    size_kb: float
    started_s: float | None
    received_s: float | None
    received_duration_s: float | None
    completed_s: float | None
    duration_s: float | None
    bytes_received: int
    complete: bool
    goodput_kbps: float | None
    message_bytes: int = 0
    messages_sent: int = 0
    buffer_waits: int = 0
    max_buffered_bytes: int = 0

    @classmethod
    def from_transfer(cls, transfer: DocumentTransfer | None, receiver: DocumentEndpoint | None,
                      end_s: float) -> DocumentResult:
        """From the sender's :class:`emulators.media.DocumentTransfer` (None: never sent) and the
        receiving :class:`emulators.media.DocumentEndpoint`; events after ``end_s`` do not count."""
        if transfer is None:
            return cls(size_kb=0.0, started_s=None, received_s=None, received_duration_s=None, completed_s=None,
                       duration_s=None, bytes_received=0, complete=False, goodput_kbps=None)
        got = receiver.incoming.get(transfer.kind) if receiver is not None else None
        received = got.bytes_received if got is not None else 0
        duration = transfer.duration_s
        complete = transfer.acked_s is not None and transfer.acked_s <= end_s
        span = ((transfer.acked_s if complete else end_s) - transfer.started_s
                if transfer.started_s is not None else None)
        received_s = (got.received_s if got is not None and got.received_s is not None and got.received_s <= end_s
                      else None)
        return cls(
            size_kb=transfer.size_bytes / 1000.0,
            started_s=transfer.started_s,
            received_s=received_s,
            received_duration_s=(received_s - transfer.started_s) if received_s is not None else None,
            completed_s=transfer.acked_s if complete else None,
            duration_s=duration if complete else None,
            bytes_received=received,
            complete=complete,
            goodput_kbps=(received * 8 / 1000.0 / span) if span and span > 0 else None,
            message_bytes=transfer.message_bytes,
            messages_sent=transfer.messages_sent,
            buffer_waits=transfer.buffer_waits,
            max_buffered_bytes=transfer.max_buffered_bytes,
        )


@dataclass(frozen=True)
class DocumentResults:
    """The call's two documents: ``scan`` (kiosk -> agent) and ``print`` (agent -> kiosk);
    ``docs["scan"]`` reads like ``docs.scan``."""

    scan: DocumentResult
    print: DocumentResult

    def __getitem__(self, name: str) -> DocumentResult:
        """The document called ``name`` (``"scan"`` or ``"print"``); KeyError otherwise."""
        if name not in ("scan", "print"):
            raise KeyError(name)
        return getattr(self, name)

    def to_dict(self) -> dict:
        """``{"scan": ..., "print": ...}`` with each record as a dict."""
        return {"scan": asdict(self.scan), "print": asdict(self.print)}


@dataclass(frozen=True)
class CallResult:
    """Everything measured in one call. Times are seconds from the call start (relay clock origin).

    Attributes:
        config: the call's configuration (written as :meth:`emulators.config.CallConfig.describe`).
        wall: everything read from the host's clocks; two virtual-time calls with the same
            configuration give identical results outside it.
        duration_s: end of the measurements, s (``config.duration_s``, or earlier when interrupted).
        interrupted: Ctrl-C or cancellation ended the media phase early; the measurements are partial.
        setup, connection: how the call came up and what became of it.
        video, audio, network: per direction (:class:`PerDirection`).
        rtt_ms: round-trip times.
        documents: the scan and the print.
        encoder: what aiortc's encoders were set to.
        virtual_time: what virtual time set up (None on the real clock); written under ``encoder``.
        errors: what went wrong without stopping the call (a failed peer, a close that timed out...).
        digest: :meth:`emulators.relay.UdpRelay.event_digest` (SHA-256 over every network event).
        end: why and when the call ended, with the evidence (:class:`emulators.causes.CallEnd`).
        packets: the relay's per-packet log (and datagrams, if captured) for the evidence files
            (:mod:`emulators.evidence`); not part of ``result.json``.
    """

    config: CallConfig
    wall: WallClock
    duration_s: float
    interrupted: bool
    setup: SetupResult
    connection: ConnectionResult
    video: PerDirection[VideoResult]
    audio: PerDirection[AudioSummary]
    network: PerDirection[NetworkResult]
    rtt_ms: RttResult
    documents: DocumentResults
    encoder: EncoderSettings
    virtual_time: VirtualTimeRecord | None
    errors: tuple[str, ...]
    digest: EventDigest
    end: CallEnd | None = None
    packets: PacketCapture | None = field(default=None, compare=False, repr=False)

    @property
    def dead(self) -> bool:
        """No video frame arrived in either direction."""
        return self.video.up.frames_decoded == 0 and self.video.down.frames_decoded == 0

    @property
    def verdict(self) -> tuple[str, ...]:
        """Short human verdict (:func:`verdict_lines`)."""
        return tuple(verdict_lines(self))

    @property
    def wall_s(self) -> float:
        """Wall time of the call and its teardown, s."""
        return float(self.wall.wall_s)

    def fps(self, direction: str) -> float:
        """Mean decoded frame rate of ``direction`` over the measurement window, frames/s."""
        return float(self.video[direction].fps_mean)

    def video_kbps(self, direction: str) -> float:
        """Mean delivered IP bitrate of ``direction``'s video over the measurement window, kbit/s."""
        return float(self.network[direction].video_kbps_mean)

    def to_dict(self) -> dict:
        """The JSON form (``result.json``): plain dicts and lists, non-finite floats as None."""
        encoder = asdict(self.encoder)
        if self.virtual_time is not None:
            encoder["virtual_time"] = self.virtual_time.to_dict()
        return _json_safe({
            "config": self.config.describe(),
            "wall": asdict(self.wall),
            "duration_s": self.duration_s,
            "interrupted": self.interrupted,
            "setup": asdict(self.setup),
            "connection": asdict(self.connection),
            "video": self.video.to_dict(),
            "audio": self.audio.to_dict(),
            "network": self.network.to_dict(),
            "rtt_ms": asdict(self.rtt_ms),
            "documents": self.documents.to_dict(),
            "encoder": encoder,
            "errors": list(self.errors),
            "end": None if self.end is None else asdict(self.end),
            "dead": self.dead,
            "verdict": list(self.verdict),
            "digest": asdict(self.digest),
        })

    def deterministic_dict(self) -> dict:
        """:meth:`to_dict` without the ``wall`` section (what two same-seed virtual calls share)."""
        d = self.to_dict()
        d.pop("wall", None)
        return d


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
# Verdict
# --------------------------------------------------------------------------------------------------


def _fmt(v: float | None, spec: str, unit: str = "") -> str:
    return "n/a" if v is None else f"{v:{spec}}{unit}"


def verdict_lines(result: CallResult) -> list[str]:
    """Short human verdict: one line per video direction, documents, connection fate."""
    lines = []
    conn = result.connection
    if result.dead:
        why = "line dead" if not conn.ever_connected else "connection up but no frame decoded"
        if conn.ever_connected and conn.died:
            why = f"connection {conn.failure_state} at {conn.died_at_s:.1f} s"
        lines.append(f"no video received: {why}")
    names = {"up": "uplink (kiosk->agent)", "down": "downlink (agent->kiosk)"}
    for direction in DIRECTIONS:
        v = result.video[direction]
        if v.frames_decoded == 0:
            if not result.dead:
                lines.append(f"{names[direction]}: no video received")
            continue
        pauses = f", {v.pause_count} pauses" if v.pause_count else ""
        if v.frames_broken_reference:
            pauses += f", {v.frames_broken_reference} frames from a broken reference"
        lines.append(
            f"{names[direction]} video {v.fps_mean:.1f} fps, {v.freeze_count} freezes{pauses}, "
            f"p95 delay {_fmt(v.delay.p95_ms, '.0f', ' ms')}, PSNR {_fmt(v.psnr_db, '.1f', ' dB')}, "
            f"{result.network[direction].video_kbps_mean:.0f} kbit/s"
        )
    docs = []
    for name in ("scan", "print"):
        d = result.documents[name]
        if d.size_kb <= 0 or d.started_s is None:
            continue
        if d.complete:
            docs.append(f"{name} {d.size_kb:.0f} KB in {d.duration_s:.1f} s ({d.goodput_kbps:.0f} kbit/s, "
                        f"{d.messages_sent} messages of {d.message_bytes} B)")
        elif d.received_s is not None:
            docs.append(f"{name} {d.size_kb:.0f} KB received in {d.received_duration_s:.1f} s (ack not back)")
        else:
            docs.append(f"{name} incomplete: {d.bytes_received / 1000:.0f} of {d.size_kb:.0f} KB "
                        f"in {result.duration_s - d.started_s:.0f} s")
    if docs:
        lines.append("; ".join(docs))
    for direction in DIRECTIONS:
        recs = result.video[direction].recoveries
        if len(recs) > 3:  # a lossy line: one line for all of them
            back = [r.time_to_recover_s for r in recs if r.time_to_recover_s is not None]
            worst = f" (worst {max(back):.2f} s)" if back else ""
            lines.append(f"{names[direction]}: {len(recs)} outages or loss bursts: good video back after "
                         f"{len(back)}{worst}, not after {len(recs) - len(back)}")
            continue
        for rec in recs:
            what = f"{rec.cause} {rec.start_s:.1f}-{rec.end_s:.1f} s"
            back = (f"good video back {rec.time_to_recover_s:.2f} s after it" if rec.time_to_recover_s is not None
                    else "video never came back")
            lines.append(f"{names[direction]}: {what}: {back}")
    for direction in DIRECTIONS:
        a = result.audio[direction]
        if a.frames_sent:
            lines.append(f"{names[direction]} audio: {a.frames_decoded} of {a.frames_sent} frames decoded, "
                         f"{_fmt(a.decoded_loss_pct, '.1f', ' %')} of samples not played, "
                         f"jitter {_fmt(a.jitter_ms, '.0f', ' ms')}")
            sp = a.speech
            if sp is not None:
                lines.append(f"{names[direction]} speech: PESQ {_fmt(sp.pesq_mos, '.2f', '')} (P.862 narrowband; "
                             f"wideband P.862.2 {_fmt(sp.pesq_wb_mos, '.2f', '')}) over "
                             f"{sp.scored_s:.1f} s; frames not decoded: {sp.frames_before} before the first, "
                             f"{sp.frames_missing} lost in between, {sp.frames_after} after the last (in flight at "
                             f"the end)")
    if result.end is not None:
        lines.append(result.end.describe())
    if result.interrupted:
        lines.append(f"interrupted at {result.duration_s:.1f} s: partial measurements")
    return lines
