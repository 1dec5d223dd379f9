"""The evidence of an emulated call, packet by packet: pcap files of what each side sent and received, a
CSV of every packet's fate on the line, and the DTLS keys that let Wireshark open the data channel.

* ``kiosk.pcap`` / ``agent.pcap``: what each side's interface saw - the datagrams it sent, stamped when it
  sent them, and those it received, stamped when the emulated line delivered them - as Ethernet/IPv4/UDP
  frames (dpkt) between the kiosk's and the agent's addresses (on the real clock the peers' loopback
  sockets, the relay left out as a transparent hop; in virtual time the virtual network's addresses).
  Timestamps are the emulated ones: the call clock plus the call's start (the wall-clock start on the
  real clock, :data:`emulators.virtual_time.VIRTUAL_EPOCH` in virtual time, so the file is the same at
  every run of the same seed). STUN and DTLS are recognised by Wireshark as they are; RTP and RTCP (SRTP:
  headers in clear, payloads encrypted) with ``Decode As... RTP`` on the peers' port, or
  ``tshark -o rtp.heuristic_rtp:TRUE``; the SCTP data channel rides in DTLS: ``dtls-keys.log`` (NSS key
  log format: ``CLIENT_RANDOM <client random> <master secret>``) decrypts it (Wireshark: TLS protocol
  preferences, "(Pre)-Master-Secret log filename").
* ``kiosk-sctp.pcap`` / ``agent-sctp.pcap``: the data channel's SCTP packets in clear, as each side's SCTP
  stack sent them into DTLS and got them out of it (:func:`sctp_capture`), written as SCTP over UDP on
  port 9899 (RFC 6951's encapsulation, which Wireshark dissects as SCTP without any setting) at the same
  emulated times: the documents' DATA chunks, SACKs and the data channel's messages (PPID 50-57).
* ``packets.csv``: one row per datagram offered to the line: direction, arrival time, kind, IP bytes, the
  wait in the line's queue before serialization, delivery time and one-way delay, or the drop reason.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from emulators.relay import DirectionLog

PACKET_COLUMNS = ("direction", "index", "arrival_s", "kind", "ip_bytes", "queue_delay_ms", "delivery_s",
                  "one_way_delay_ms", "drop")
"""Columns of ``packets.csv`` (times in s from the call start, delays in ms; empty where not applicable)."""

SCTP_UDP_PORT = 9899
"""UDP port of SCTP's UDP encapsulation (RFC 6951, IANA ``sctp-tunneling``); Wireshark decodes it as SCTP."""

_KIOSK_MAC = b"\x02\x00\x00\x00\x00\x01"
_AGENT_MAC = b"\x02\x00\x00\x00\x00\x02"


@dataclass
class PacketCapture:
    """What the relay logged of a call, for the evidence files.

    Attributes:
        logs: the relay's per-packet :class:`emulators.relay.DirectionLog` of ``up`` and ``down`` (with
            the datagrams when the call captured them).
        kiosk_addr, agent_addr: the peers' ``(ip, port)``.
        epoch_s: POSIX time of the call clock's 0 (the emulated timestamps of the pcap files).
        dtls_keys: ``(client_random, master_secret)`` of each DTLS association, for ``dtls-keys.log``.
        sctp: per side (``kiosk``/``agent``), ``(time_s, "sent" | "received", sctp_packet)`` in clear
            (:func:`sctp_capture`), times on the call clock.
    """

    logs: dict[str, DirectionLog]
    kiosk_addr: tuple[str, int] | None
    agent_addr: tuple[str, int] | None
    epoch_s: float
    dtls_keys: list[tuple[bytes, bytes]] = field(default_factory=list)
    sctp: dict[str, list[tuple[float, str, bytes]]] = field(default_factory=dict)

    @property
    def captured(self) -> bool:
        """Whether the datagrams themselves were kept (pcap files possible)."""
        return any(log.data for log in self.logs.values())


def packets_csv(capture: PacketCapture) -> str:
    """The text of ``packets.csv`` (:data:`PACKET_COLUMNS`), UP then DOWN, in arrival order."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(PACKET_COLUMNS)

    def num(value: float, scale: float = 1.0, digits: int = 6) -> str:
        return "" if value is None or math.isnan(value) else f"{value * scale:.{digits}f}"

    for direction in ("up", "down"):
        log = capture.logs[direction]
        waits = log.queue_delay_s if len(log.queue_delay_s) == len(log) else [math.nan] * len(log)
        for i, (a, kind, size, wait, d, drop) in enumerate(zip(log.arrival_s, log.kind, log.ip_bytes, waits,
                                                               log.delivery_s, log.drop)):
            writer.writerow([direction, i, num(a), kind, size, num(wait, 1000.0, 3), num(d),
                             num(d - a if not math.isnan(d) else math.nan, 1000.0, 3), drop])
    return out.getvalue()


def _frame(src: tuple[str, int], dst: tuple[str, int], payload: bytes, src_mac: bytes, dst_mac: bytes) -> bytes:
    import dpkt

    udp = dpkt.udp.UDP(sport=src[1], dport=dst[1], data=payload)
    udp.ulen = len(udp)
    ip = dpkt.ip.IP(src=socket.inet_aton(src[0]), dst=socket.inet_aton(dst[0]), p=dpkt.ip.IP_PROTO_UDP, ttl=64,
                    data=udp)
    ip.len = len(ip)
    return bytes(dpkt.ethernet.Ethernet(src=src_mac, dst=dst_mac, type=dpkt.ethernet.ETH_TYPE_IP, data=ip))


def side_events(capture: PacketCapture, side: str) -> list[tuple[float, bytes, str]]:
    """``(time_s, frame, "sent" | "received")`` of everything ``side`` (``kiosk``/``agent``) sent and
    received, in time order (a datagram dropped by the line is sent, never received)."""
    kiosk, agent = capture.kiosk_addr or ("10.0.0.1", 1), capture.agent_addr or ("10.0.0.2", 1)
    out_dir, in_dir = ("up", "down") if side == "kiosk" else ("down", "up")
    events = []
    for direction, what in ((out_dir, "sent"), (in_dir, "received")):
        log = capture.logs[direction]
        src, dst, smac, dmac = ((kiosk, agent, _KIOSK_MAC, _AGENT_MAC) if direction == "up"
                                else (agent, kiosk, _AGENT_MAC, _KIOSK_MAC))
        for a, d, data in zip(log.arrival_s, log.delivery_s, log.data):
            t = a if what == "sent" else d
            if not math.isnan(t):
                events.append((t, _frame(src, dst, data, smac, dmac), what))
    events.sort(key=lambda e: e[0])
    return events


def write_pcaps(capture: PacketCapture, folder: str | Path) -> list[Path]:
    """Write ``kiosk.pcap``, ``agent.pcap`` and ``dtls-keys.log`` into ``folder`` (atomically); returns
    the paths. Needs a call run with ``capture=True``.

    Raises:
        ValueError: the call did not keep its datagrams.
    """
    import dpkt

    from twin.run.atomic import atomic_write_bytes

    if not capture.captured:
        raise ValueError("the call did not capture its datagrams (run it with capture=True)")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for side in ("kiosk", "agent"):
        buf = io.BytesIO()
        writer = dpkt.pcap.Writer(buf, snaplen=65535, linktype=dpkt.pcap.DLT_EN10MB, nano=True)
        for t, frame, _ in side_events(capture, side):
            writer.writepkt(frame, ts=capture.epoch_s + t)
        path = out / f"{side}.pcap"
        atomic_write_bytes(path, buf.getvalue())
        paths.append(path)
    for side in ("kiosk", "agent"):
        events = capture.sctp.get(side)
        if not events:
            continue
        me, other = (capture.kiosk_addr, capture.agent_addr) if side == "kiosk" else (capture.agent_addr,
                                                                                       capture.kiosk_addr)
        me, other = (me or ("10.0.0.1", 1))[0], (other or ("10.0.0.2", 1))[0]
        macs = (_KIOSK_MAC, _AGENT_MAC) if side == "kiosk" else (_AGENT_MAC, _KIOSK_MAC)
        buf = io.BytesIO()
        writer = dpkt.pcap.Writer(buf, snaplen=65535, linktype=dpkt.pcap.DLT_EN10MB, nano=True)
        for t, what, data in events:
            src, dst = ((me, SCTP_UDP_PORT), (other, SCTP_UDP_PORT)) if what == "sent" else \
                ((other, SCTP_UDP_PORT), (me, SCTP_UDP_PORT))
            smac, dmac = macs if what == "sent" else macs[::-1]
            writer.writepkt(_frame(src, dst, data, smac, dmac), ts=capture.epoch_s + t)
        path = out / f"{side}-sctp.pcap"
        atomic_write_bytes(path, buf.getvalue())
        paths.append(path)
    keys = "".join(f"CLIENT_RANDOM {cr.hex()} {mk.hex()}\n" for cr, mk in capture.dtls_keys)
    key_path = out / "dtls-keys.log"
    atomic_write_bytes(key_path, keys.encode("ascii"))
    paths.append(key_path)
    return paths


def dtls_keys(pc) -> list[tuple[bytes, bytes]]:
    """``(client_random, master_secret)`` of the DTLS transports of an aiortc peer connection (handshake done)."""
    keys = []
    seen = set()
    for transceiver in pc.getTransceivers():
        transport = getattr(transceiver.sender, "transport", None)
        ssl = getattr(transport, "_ssl", None)
        if ssl is None or id(ssl) in seen:
            continue
        seen.add(id(ssl))
        try:
            client_random, master = ssl.client_random(), ssl.master_key()
        except Exception:  # noqa: BLE001 - no handshake: no key
            continue
        if client_random and master:
            keys.append((bytes(client_random), bytes(master)))
    return keys


_sctp_users = 0
_sctp_saved: list = []


@contextlib.contextmanager
def sctp_capture() -> Iterator[None]:
    """Keep, on each aiortc ``RTCDtlsTransport``, the SCTP packets its data channel sends into DTLS and
    receives out of it, in clear: ``transport._twin_sctp`` lists ``(loop_time_s, "sent" | "received",
    packet)``. Process-wide while active, counted like the call's other patches."""
    global _sctp_users
    import asyncio

    from aiortc.rtcdtlstransport import RTCDtlsTransport
    from aiortc.rtcsctptransport import RTCSctpTransport

    def note(transport, what: str, data: bytes) -> None:
        events = transport.__dict__.setdefault("_twin_sctp", [])
        events.append((asyncio.get_running_loop().time(), what, bytes(data)))

    if _sctp_users == 0:
        send, handle = RTCDtlsTransport._send_data, RTCSctpTransport._handle_data

        async def send_data(self, data):
            note(self, "sent", data)
            return await send(self, data)

        async def handle_data(self, data):
            note(self.transport, "received", data)
            return await handle(self, data)

        _sctp_saved[:] = [(RTCDtlsTransport, "_send_data", send), (RTCSctpTransport, "_handle_data", handle)]
        RTCDtlsTransport._send_data = send_data
        RTCSctpTransport._handle_data = handle_data
    _sctp_users += 1
    try:
        yield
    finally:
        _sctp_users -= 1
        if _sctp_users == 0:
            for cls, name, value in _sctp_saved:
                setattr(cls, name, value)
            _sctp_saved.clear()


def sctp_events(pc, origin_s: float) -> list[tuple[float, str, bytes]]:
    """The clear SCTP packets :func:`sctp_capture` kept for a peer connection, times from ``origin_s``."""
    sctp = getattr(pc, "sctp", None)
    transport = getattr(sctp, "transport", None)
    return [(t - origin_s, what, data) for t, what, data in getattr(transport, "_twin_sctp", [])]
