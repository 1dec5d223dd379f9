"""A userspace UDP relay between the two peers of an emulated call, on 127.0.0.1 only.

The relay owns no line arithmetic: each datagram's fate and delivery time come from
:meth:`twin.line.LinkQueue.send` (the UP queue for kiosk -> agent, the DOWN queue for agent -> kiosk),
called with the relay clock ``loop.time() - origin_s`` and the datagram's IP size (UDP payload + 8-byte
UDP header + 20-byte IPv4 header). Delivery is scheduled with ``loop.call_at`` at the returned time.

How the relay gets between the peers:

* each peer binds its ICE socket on 127.0.0.1 only (:func:`loopback_only` makes aioice gather that one
  host address, instead of every interface's);
* the relay opens two sockets on 127.0.0.1: ``port_for_agent`` stands for the agent in the kiosk's eyes,
  ``port_for_kiosk`` stands for the kiosk in the agent's eyes;
* :func:`rewrite_candidates` replaces the IPv4 host candidates of the kiosk's offer by
  ``127.0.0.1:port_for_kiosk`` before the agent sees it, and those of the agent's answer by
  ``127.0.0.1:port_for_agent`` (IPv6, TCP and non-host candidates are dropped; the original addresses
  are returned so the relay knows where to deliver);
* datagrams reach the relay only from the two known peer addresses; anything else is counted as
  ``foreign`` and ignored.

Packets are classified on delivery (RFC 7983 first-byte demultiplexing: STUN, DTLS - which carries the
SCTP data channel -, RTP, RTCP; RTP by payload type into audio/video once the negotiated payload types
are known), so the results can show delivered media bitrates per kind without decrypting anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field, fields

import numpy as np

from twin.line import LinkPath

LOOPBACK = "127.0.0.1"
TIMER_ADVANCE_S = 0.0005
"""Deliveries are scheduled this much before their due time. Python's epoll selector rounds every
timeout *up* to a whole millisecond (``selectors.EpollSelector.select``), so a timer fires 0-1 ms late
(measured median 0.4-0.7 ms); half a millisecond of advance centres the error on zero. The actual send
time of every packet is logged (``sent_s``) and summarised as ``late_ms``."""
IPV4_UDP_HEADER_BYTES = 28  # 20-byte IPv4 header + 8-byte UDP header
KINDS = ("audio", "video", "rtp", "rtcp", "dtls", "stun", "other")
DROP_REASONS = ("buffer", "aqm", "loss", "outage")


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """Make aioice gather host candidates on 127.0.0.1 only (restored on exit).

    ``aioice.ice.Connection.gather_candidates`` calls the module function ``get_host_addresses`` (which
    deliberately skips 127.0.0.1 and lists every interface); replacing it keeps every ICE socket on the
    loopback interface. Process-wide while active.
    """
    import aioice.ice

    original = aioice.ice.get_host_addresses

    def loopback_addresses(use_ipv4: bool = True, use_ipv6: bool = True) -> list[str]:
        return [LOOPBACK]

    aioice.ice.get_host_addresses = loopback_addresses
    try:
        yield
    finally:
        aioice.ice.get_host_addresses = original


def rewrite_candidates(sdp: str, host: str, port: int) -> tuple[str, list[tuple[str, int]]]:
    """Point every IPv4 UDP host candidate of ``sdp`` at ``host:port``; drop all other candidates.

    Also rewrites the ``m=`` port and ``c=IN IP4`` address (default candidate). Returns the new SDP
    and the original ``(ip, port)`` of the kept candidates, in order.
    """
    out: list[str] = []
    originals: list[tuple[str, int]] = []
    lines = sdp.split("\r\n") if "\r\n" in sdp else sdp.split("\n")
    sep = "\r\n" if "\r\n" in sdp else "\n"
    for line in lines:
        if line.startswith("a=candidate:"):
            bits = line.split()
            # foundation component transport priority ip port "typ" type [...]
            if len(bits) < 8 or bits[6] != "typ":
                continue
            ip, cport, transport, ctype = bits[4], bits[5], bits[2].lower(), bits[7]
            if transport != "udp" or ctype != "host" or ":" in ip or ip.endswith(".local"):
                continue
            if (ip, int(cport)) not in originals:
                originals.append((ip, int(cport)))
            bits[4], bits[5] = host, str(port)
            out.append(" ".join(bits))
        elif line.startswith("m="):
            bits = line.split(" ")
            if len(bits) > 1 and bits[1] != "0":
                bits[1] = str(port)
            out.append(" ".join(bits))
        elif line.startswith("c=IN IP4 ") or line.startswith("c=IN IP6 "):
            out.append(f"c=IN IP4 {host}")
        else:
            out.append(line)
    return sep.join(out), originals


def classify(data: bytes, payload_kinds: dict[int, str]) -> str:
    """Kind of one datagram by its first bytes (RFC 7983; RTCP by packet type 192-223, RFC 5761)."""
    if not data:
        return "other"
    b0 = data[0]
    if b0 <= 3:
        return "stun"
    if 20 <= b0 <= 63:
        return "dtls"
    if 128 <= b0 <= 191 and len(data) >= 2:
        if 192 <= data[1] <= 223:
            return "rtcp"
        return payload_kinds.get(data[1] & 0x7F, "rtp")
    return "other"


@dataclass
class DirectionLog:
    """Per-packet record of one relay direction (parallel lists; times on the relay clock, seconds).

    ``delivery_s`` is NaN for a dropped packet and ``drop`` names the reason (``buffer``, ``aqm``,
    ``loss``, ``outage``; empty when delivered). ``queue_delay_s`` is the wait in the line's queue before
    serialization (NaN when dropped before it). ``sent_s`` is when the relay actually handed the packet to
    the destination socket (NaN if never: dropped, or still in flight when the relay closed). ``data``
    holds the datagrams themselves when the relay captures (:attr:`UdpRelay.capture`), else stays empty.
    """

    arrival_s: list[float] = field(default_factory=list)
    queue_delay_s: list[float] = field(default_factory=list)
    data: list[bytes] = field(default_factory=list)
    ip_bytes: list[int] = field(default_factory=list)
    kind: list[str] = field(default_factory=list)
    delivery_s: list[float] = field(default_factory=list)
    drop: list[str] = field(default_factory=list)
    sent_s: list[float] = field(default_factory=list)
    foreign_packets: int = 0

    def __len__(self) -> int:
        return len(self.arrival_s)


@dataclass(frozen=True)
class EventDigest:
    """Fingerprint of every network event of a call (:meth:`UdpRelay.event_digest`): ``sha256`` (hex)
    over the events, and their number."""

    sha256: str
    events: int


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, relay: UdpRelay, side: str) -> None:
        self.relay = relay
        self.side = side  # which peer this socket listens to
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.relay._on_datagram(self.side, data, addr)

    def error_received(self, exc) -> None:  # ICMP port unreachable after a peer closed: ignore
        pass


class UdpRelay:
    """Relay between a kiosk and an agent through two :class:`twin.line.LinkQueue` objects.

    Args:
        up_queue: the kiosk -> agent queue (line direction UP at the kiosk).
        down_queue: the agent -> kiosk queue.
        host: bind address; only 127.0.0.1 is allowed (the emulator never listens outside).
        timer_advance_s: see :data:`TIMER_ADVANCE_S`.

    Use: ``await relay.start()``; rewrite the offer with ``relay.sdp_for_agent(offer_sdp)`` and the
    answer with ``relay.sdp_for_kiosk(answer_sdp)``; ``relay.close()`` at the end. ``logs["up"]`` and
    ``logs["down"]`` hold per-packet records; :meth:`summary` reduces them.
    """

    def __init__(self, up_queue, down_queue, host: str = LOOPBACK, timer_advance_s: float = TIMER_ADVANCE_S) -> None:
        if host != LOOPBACK:
            raise ValueError("the relay listens on 127.0.0.1 only")
        self.host = host
        self.timer_advance_s = timer_advance_s
        self.queues = {"up": up_queue, "down": down_queue}
        self.logs = {"up": DirectionLog(), "down": DirectionLog()}
        self.payload_kinds: dict[int, str] = {}
        self.capture = False  # keep every datagram (for pcap files)
        self.origin_s: float | None = None
        self.kiosk_addr: tuple[str, int] | None = None
        self.agent_addr: tuple[str, int] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._from_kiosk: _Endpoint | None = None  # socket the kiosk sends to (stands for the agent)
        self._from_agent: _Endpoint | None = None  # socket the agent sends to (stands for the kiosk)
        self.closed = False

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self, origin_s: float | None = None) -> None:
        """Open both sockets on 127.0.0.1 (ephemeral ports); the relay clock starts at ``origin_s``
        (default: now on the loop clock)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self.origin_s = loop.time() if origin_s is None else origin_s
        _, self._from_kiosk = await loop.create_datagram_endpoint(
            lambda: _Endpoint(self, "kiosk"), local_addr=(self.host, 0)
        )
        _, self._from_agent = await loop.create_datagram_endpoint(
            lambda: _Endpoint(self, "agent"), local_addr=(self.host, 0)
        )

    @property
    def port_for_agent(self) -> int:
        """Port the kiosk sends to (it stands for the agent)."""
        return self._from_kiosk.transport.get_extra_info("sockname")[1]

    @property
    def port_for_kiosk(self) -> int:
        """Port the agent sends to (it stands for the kiosk)."""
        return self._from_agent.transport.get_extra_info("sockname")[1]

    def sockets(self) -> list[tuple[str, int]]:
        """Local addresses the relay listens on (for checks that nothing listens outside loopback)."""
        return [ep.transport.get_extra_info("sockname")[:2] for ep in (self._from_kiosk, self._from_agent)]

    def close(self) -> None:
        """Close both sockets; deliveries still in flight are discarded when their timer fires."""
        self.closed = True
        for ep in (self._from_kiosk, self._from_agent):
            if ep is not None and ep.transport is not None:
                ep.transport.close()

    def now_s(self) -> float:
        """The relay clock: seconds since ``origin_s`` on the loop clock."""
        return self._loop.time() - self.origin_s

    # -- signalling --------------------------------------------------------------------------------

    def sdp_for_agent(self, kiosk_sdp: str) -> str:
        """The kiosk's SDP as the agent must see it (candidates -> relay); learns the kiosk address."""
        sdp, originals = rewrite_candidates(kiosk_sdp, self.host, self.port_for_kiosk)
        if originals:
            self.kiosk_addr = originals[0]
        return sdp

    def sdp_for_kiosk(self, agent_sdp: str) -> str:
        """The agent's SDP as the kiosk must see it (candidates -> relay); learns the agent address."""
        sdp, originals = rewrite_candidates(agent_sdp, self.host, self.port_for_agent)
        if originals:
            self.agent_addr = originals[0]
        return sdp

    def set_payload_kinds(self, sdp: str) -> None:
        """Learn RTP payload type -> media kind from a negotiated SDP (``m=audio ... 96 0 8`` etc.)."""
        for line in sdp.splitlines():
            if line.startswith("m="):
                bits = line.split()
                kind = bits[0][2:]
                for pt in bits[3:]:
                    if pt.isdigit() and kind in ("audio", "video"):
                        self.payload_kinds[int(pt)] = kind

    # -- forwarding --------------------------------------------------------------------------------

    def _on_datagram(self, side: str, data: bytes, addr) -> None:
        if self.closed:
            return
        if side == "kiosk":
            direction, expected, dest, out = "up", self.kiosk_addr, self.agent_addr, self._from_agent
        else:
            direction, expected, dest, out = "down", self.agent_addr, self.kiosk_addr, self._from_kiosk
        if expected is None or dest is None or (addr[0], addr[1]) != expected:
            self.logs[direction].foreign_packets += 1
            return
        self._forward(direction, data, out, dest)

    def _forward(self, direction: str, data: bytes, *deliver_args) -> None:
        """Pass one datagram through the direction's LinkQueue (the first hop of a
        :class:`twin.line.LinkPath`), log it, schedule its delivery (or its next hop).

        ``deliver_args`` are handed to :meth:`_send_out` when the delivery timer fires.
        """
        log = self.logs[direction]
        now = self.now_s()
        path = self.queues[direction]
        queue = path.hops[0] if isinstance(path, LinkPath) else path
        ip_bytes = len(data) + IPV4_UDP_HEADER_BYTES
        delivery = queue.send(now, ip_bytes)
        index = len(log.arrival_s)
        log.arrival_s.append(now)
        log.ip_bytes.append(ip_bytes)
        log.kind.append(classify(data, self.payload_kinds))
        log.sent_s.append(math.nan)
        wait = queue.last_queue_delay_s
        log.queue_delay_s.append(math.nan if wait is None else wait)
        if self.capture:
            log.data.append(bytes(data))
        if delivery is None:
            log.delivery_s.append(math.nan)
            log.drop.append(queue.last_drop or "unknown")
            return
        log.delivery_s.append(delivery)
        log.drop.append("")
        self._schedule(direction, index, 1, delivery, data, deliver_args)

    def _schedule(self, direction: str, index: int, hop: int, delivery: float, data: bytes, deliver_args) -> None:
        """At ``delivery`` (relay clock): offer the packet to hop ``hop`` of a path, or deliver it."""
        path = self.queues[direction]
        if isinstance(path, LinkPath) and hop < len(path.hops):
            self._loop.call_at(self.origin_s + delivery, self._next_hop, direction, index, hop, data, deliver_args)
        else:
            self._loop.call_at(self.origin_s + delivery - self.timer_advance_s, self._deliver, direction, index, data,
                               *deliver_args)

    def _next_hop(self, direction: str, index: int, hop: int, data: bytes, deliver_args) -> None:
        """Hop ``hop`` of a path receives the packet the previous hop delivered (now)."""
        if self.closed:
            return
        log, queue = self.logs[direction], self.queues[direction].hops[hop]
        delivery = queue.send(self.now_s(), log.ip_bytes[index])
        if delivery is None:
            log.delivery_s[index] = math.nan
            log.drop[index] = queue.last_drop or "unknown"
            return
        wait = queue.last_queue_delay_s
        if wait is not None and not math.isnan(log.queue_delay_s[index]):
            log.queue_delay_s[index] += wait
        log.delivery_s[index] = delivery
        self._schedule(direction, index, hop + 1, delivery, data, deliver_args)

    def _deliver(self, direction: str, index: int, data: bytes, *deliver_args) -> None:
        if self.closed:
            return
        if self._send_out(data, *deliver_args):
            self.logs[direction].sent_s[index] = self.now_s()

    def _send_out(self, data: bytes, out: _Endpoint, dest) -> bool:
        """Hand a datagram to its destination; False if it could not be sent (socket closed)."""
        if out.transport is None or out.transport.is_closing():
            return False
        out.transport.sendto(data, dest)
        return True

    def event_digest(self) -> EventDigest:
        """SHA-256 over every network event of both directions, and the number of events.

        One event per datagram offered to the line, in arrival order, UP direction first:
        ``"<arrival_us>,<direction>,<ip_bytes>,<fate>"`` where fate is ``d<delivery_us>`` or the drop
        reason; times in integer microseconds on the relay clock. Two virtual-time calls with the same
        configuration and seed give the same digest (see :mod:`emulators.virtual_time`).
        """
        h = hashlib.sha256()
        n = 0
        for direction in ("up", "down"):
            log = self.logs[direction]
            for a, size, d, drop in zip(log.arrival_s, log.ip_bytes, log.delivery_s, log.drop):
                fate = drop if drop else f"d{round(d * 1e6)}"
                h.update(f"{round(a * 1e6)},{direction},{size},{fate}\n".encode())
                n += 1
        return EventDigest(sha256=h.hexdigest(), events=n)

    # -- results -----------------------------------------------------------------------------------

    def summary(self, direction: str, end_s: float | None = None, bin_s: float = 1.0) -> dict:
        """Counters and time series of one direction (relay clock, seconds; delays in ms).

        ``queue_delay_ms``: added delay (delivery - arrival) per delivered packet: queueing + cell
        serialization + fixed line delay, as the LinkQueue decided. ``late_ms``: how late the event loop
        actually sent packets compared with the scheduled time (the emulator's own error).
        ``kbps_by_kind``: delivered IP bitrate per second by packet kind.
        """
        log = self.logs[direction]
        arrival = np.asarray(log.arrival_s, float)
        delivery = np.asarray(log.delivery_s, float)
        sent = np.asarray(log.sent_s, float)
        size = np.asarray(log.ip_bytes, float)
        kinds = np.asarray(log.kind, dtype=object)
        ok = ~np.isnan(delivery)
        if end_s is None:
            end_s = float(np.nanmax(delivery)) if ok.any() else (float(arrival.max()) if arrival.size else 0.0)
        delays_ms = (delivery[ok] - arrival[ok]) * 1000.0
        was_sent = ~np.isnan(sent)
        late_ms = (sent[was_sent] - delivery[was_sent]) * 1000.0
        drops = {r: int(sum(1 for d in log.drop if d == r)) for r in DROP_REASONS}
        n_bins = max(1, int(math.ceil(end_s / bin_s - 1e-9))) if end_s > 0 else 0
        by_kind: dict[str, list[float]] = {}
        in_window = ok & (delivery < end_s)
        for kind in KINDS:
            mask = in_window & (kinds == kind)
            if not mask.any():
                continue
            idx = np.floor(delivery[mask] / bin_s).astype(int)
            sums = np.bincount(idx, weights=size[mask] * 8.0, minlength=n_bins)[:n_bins]
            by_kind[kind] = [round(float(x) / bin_s / 1000.0, 3) for x in sums]
        offered_idx = np.floor(arrival / bin_s).astype(int) if arrival.size else np.zeros(0, int)
        keep = offered_idx < n_bins
        offered = np.bincount(offered_idx[keep], weights=size[keep] * 8.0, minlength=n_bins)[:n_bins]

        def pct(values: np.ndarray, q: float) -> float | None:
            return float(np.percentile(values, q)) if values.size else None

        return {
            "packets_in": int(arrival.size),
            "packets_delivered": int(ok.sum()),
            "packets_dropped": drops,
            "foreign_packets": log.foreign_packets,
            "bytes_in": int(size.sum()),
            "bytes_delivered": int(size[ok].sum()),
            "queue_delay_ms": {
                "mean": float(delays_ms.mean()) if delays_ms.size else None,
                "p50": pct(delays_ms, 50),
                "p95": pct(delays_ms, 95),
                "max": float(delays_ms.max()) if delays_ms.size else None,
            },
            "late_ms": {
                "mean": float(late_ms.mean()) if late_ms.size else None,
                "p95": pct(late_ms, 95),
                "max": float(late_ms.max()) if late_ms.size else None,
            },
            "offered_kbps_series": [round(float(x) / bin_s / 1000.0, 3) for x in offered],
            "kbps_by_kind": by_kind,
            "packets_by_kind": {k: int(np.sum(kinds == k)) for k in KINDS if np.any(kinds == k)},
            "delivered_packets_by_kind": {k: int(np.sum(in_window & (kinds == k))) for k in by_kind},
            "dropped_packets_by_kind": {k: int(np.sum(~ok & (kinds == k))) for k in KINDS if np.any(~ok & (kinds == k))},
        }

    def delay_by_bin(self, direction: str, end_s: float, bin_s: float = 1.0) -> list[float | None]:
        """Mean added delay (ms) of the delivered packets arriving in each ``bin_s`` bin of
        ``[0, end_s)`` (``None`` for a bin without delivered packets)."""
        log = self.logs[direction]
        n_bins = max(0, int(math.ceil(end_s / bin_s - 1e-9)))
        sums = np.zeros(n_bins)
        counts = np.zeros(n_bins)
        for a, d in zip(log.arrival_s, log.delivery_s):
            i = int(a // bin_s)
            if 0 <= i < n_bins and not math.isnan(d):
                sums[i] += (d - a) * 1000.0
                counts[i] += 1
        return [float(s / c) if c else None for s, c in zip(sums, counts)]

    def delay_series(self, direction: str, max_points: int = 4000) -> list[list[float]]:
        """``[arrival_s, added_delay_ms]`` of delivered packets (decimated to ``max_points``)."""
        log = self.logs[direction]
        pts = [
            [round(a, 4), round((d - a) * 1000.0, 2)]
            for a, d in zip(log.arrival_s, log.delivery_s)
            if not math.isnan(d)
        ]
        step = max(1, int(math.ceil(len(pts) / max_points)))
        return pts[::step]


def link_stats_dict(queue) -> dict:
    """A LinkQueue's :class:`twin.line.LinkStats` as a plain dict (with derived totals)."""
    st = queue.stats
    out = {f.name: getattr(st, f.name) for f in fields(st)}
    out["packets_dropped"] = st.packets_dropped
    out["loss_fraction"] = st.loss_fraction
    return out

