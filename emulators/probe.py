"""A UDP probe through the relay without WebRTC: checks the relay against its LinkQueue, and times it.

Two plain UDP sockets on 127.0.0.1 play the kiosk and the agent; the "kiosk" sends numbered datagrams of
a fixed size at a constant rate to the relay, the "agent" timestamps what arrives. Sender and receiver
share the loop clock, so one-way delays are exact up to event-loop latency.
"""

from __future__ import annotations

import asyncio
import math
import struct
from dataclasses import dataclass, field

import numpy as np

from emulators.relay import IPV4_UDP_HEADER_BYTES, LOOPBACK, UdpRelay


@dataclass
class ProbeResult:
    """Send and receive times (relay clock, s) of each probe datagram; NaN receive = never arrived."""

    ip_bytes: int
    send_s: np.ndarray
    recv_s: np.ndarray
    relay: UdpRelay = field(repr=False)

    @property
    def delivered(self) -> np.ndarray:
        return ~np.isnan(self.recv_s)

    def delivered_rate_kbps(self, t0_s: float, t1_s: float) -> float:
        """IP bitrate arriving in ``[t0_s, t1_s)`` (kbit/s)."""
        r = self.recv_s[self.delivered]
        n = np.count_nonzero((r >= t0_s) & (r < t1_s))
        return n * self.ip_bytes * 8.0 / (t1_s - t0_s) / 1000.0

    def delays_s(self) -> np.ndarray:
        """One-way delay of each delivered datagram (receive - send), s."""
        ok = self.delivered
        return self.recv_s[ok] - self.send_s[ok]


class _Sink(asyncio.DatagramProtocol):
    def __init__(self, clock, recv_s: np.ndarray) -> None:
        self.clock = clock
        self.recv_s = recv_s

    def datagram_received(self, data: bytes, addr) -> None:
        (seq,) = struct.unpack_from("!I", data)
        if seq < self.recv_s.size and math.isnan(self.recv_s[seq]):
            self.recv_s[seq] = self.clock()


async def udp_probe(
    up_queue,
    down_queue,
    *,
    ip_bytes: int,
    rate_kbps: float,
    duration_s: float,
    drain_s: float = 0.3,
) -> ProbeResult:
    """Send ``ip_bytes`` datagrams at ``rate_kbps`` (IP level) for ``duration_s`` kiosk -> agent.

    Sending is paced by absolute due times on the loop clock (a late wake-up sends the overdue packets
    at once, as a real sender's socket buffer would). After the last send, waits until the last scheduled
delivery plus ``drain_s``.
    """
    if ip_bytes < IPV4_UDP_HEADER_BYTES + 4:
        raise ValueError("ip_bytes too small for the probe header")
    loop = asyncio.get_running_loop()
    relay = UdpRelay(up_queue, down_queue)
    await relay.start()
    interval_s = ip_bytes * 8.0 / (rate_kbps * 1000.0)
    count = int(duration_s / interval_s)
    send_s = np.full(count, np.nan)
    recv_s = np.full(count, np.nan)
    payload_pad = b"\0" * (ip_bytes - IPV4_UDP_HEADER_BYTES - 4)
    kiosk, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=(LOOPBACK, 0))
    agent, _ = await loop.create_datagram_endpoint(lambda: _Sink(relay.now_s, recv_s), local_addr=(LOOPBACK, 0))
    try:
        relay.kiosk_addr = kiosk.get_extra_info("sockname")[:2]
        relay.agent_addr = agent.get_extra_info("sockname")[:2]
        target = (LOOPBACK, relay.port_for_agent)
        start = relay.now_s() + 0.05
        i = 0
        while i < count:
            due = start + i * interval_s
            wait = due - relay.now_s()
            if wait > 0:
                await asyncio.sleep(wait)
            now = relay.now_s()
            while i < count and start + i * interval_s <= now + 1e-6:
                send_s[i] = relay.now_s()
                kiosk.sendto(struct.pack("!I", i) + payload_pad, target)
                i += 1
        scheduled = [d for d in relay.logs["up"].delivery_s if not math.isnan(d)]
        last = max(scheduled) if scheduled else relay.now_s()
        await asyncio.sleep(max(0.0, last - relay.now_s()) + drain_s)
    finally:
        kiosk.close()
        agent.close()
        relay.close()
    return ProbeResult(ip_bytes=ip_bytes, send_s=send_s, recv_s=recv_s, relay=relay)
