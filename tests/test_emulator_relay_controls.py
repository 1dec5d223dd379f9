"""The link controls' known answers through the relay (issue 14), in virtual time so that the relay adds
nothing of its own: datagrams sent on the in-memory network cross the VirtualRelay and its LinkQueues,
and what the receiver sees is checked against the same closed forms as the line model (queue growth
at a rate mismatch, netem gemodel stationary loss and mean burst, uniform jitter's reorder rate, none
when order is kept), and against a fresh LinkQueue fed the same send times."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest
from scipy import stats

from emulators.virtual_time import AGENT_HOST, KIOSK_HOST, VirtualNetwork, VirtualRelay, run_virtual
from twin.line import Encapsulation, GilbertElliottLoss, Jitter, LinkQueue

Z = stats.norm.ppf(0.9995)


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, loop) -> None:
        self.loop = loop
        self.got: list[tuple[float, int]] = []  # (time, sequence number)

    def datagram_received(self, data, addr) -> None:
        self.got.append((self.loop.time(), int.from_bytes(data[:4], "big")))


def _up_queue(make) -> tuple[LinkQueue, LinkQueue]:
    down = LinkQueue(100_000.0, Encapsulation.PPPOE_LLC, 10**9, 0.0, np.random.default_rng(99), plain_ip=True)
    return make(), down


def _probe(make, n: int, gap_s: float, ip_bytes: int) -> tuple[np.ndarray, list[tuple[float, int]], VirtualRelay]:
    """n datagrams of ip_bytes (IP) every gap_s from the kiosk to the agent through a relay whose UP queue
    is ``make()``; returns send times, (arrival time, sequence) at the agent, and the relay."""

    async def body():
        loop = asyncio.get_running_loop()
        network = VirtualNetwork(loop)
        loop.network = network
        relay = VirtualRelay(*_up_queue(make), network)
        await relay.start()
        tx, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=(KIOSK_HOST, 0))
        rx_transport, rx = await loop.create_datagram_endpoint(lambda: _Receiver(loop), local_addr=(AGENT_HOST, 0))
        dest = rx_transport.get_extra_info("sockname")
        t0 = loop.time()
        for i in range(n):
            await asyncio.sleep(max(0.0, t0 + i * gap_s - loop.time()))
            tx.sendto(i.to_bytes(4, "big") + bytes(ip_bytes - 28 - 4), dest)
        await asyncio.sleep(60.0)
        return rx.got, relay

    got, relay = run_virtual(body)
    return np.arange(n) * gap_s, got, relay


def test_relay_queue_grows_as_the_closed_form_at_a_rate_mismatch():
    rate_kbps, ip_bytes, load, fixed_ms = 256.0, 1000, 1.5, 20.0
    wire = ip_bytes  # plain IP
    service_s = wire * 8 / (rate_kbps * 1000)
    gap_s = service_s / load
    n = 600

    def make():
        return LinkQueue(rate_kbps, Encapsulation.PPPOE_LLC, 10**9, fixed_ms, np.random.default_rng(1), plain_ip=True)

    send_s, got, relay = _probe(make, n, gap_s, ip_bytes)
    arrival = dict((seq, t) for t, seq in got)
    assert len(arrival) == n
    for i in range(n):
        wait = i * (service_s - gap_s)
        assert arrival[i] - send_s[i] == pytest.approx(wait + service_s + fixed_ms / 1000, abs=1e-6)
    # the relay's per-packet log holds the queue's wait, as the CSV evidence writes it
    waits = np.asarray(relay.logs["up"].queue_delay_s)
    assert waits == pytest.approx(np.arange(n) * (service_s - gap_s), abs=1e-6)


def test_relay_gemodel_loss_matches_netem_closed_form_and_the_line_model():
    p, r = 2.0, 25.0
    n, gap_s = 60_000, 0.001

    def make():
        return LinkQueue(100_000.0, Encapsulation.PPPOE_LLC, 10**9, 5.0, np.random.default_rng(12),
                         loss=GilbertElliottLoss.from_netem(p, r), plain_ip=True)

    send_s, got, relay = _probe(make, n, gap_s, 200)
    received = np.zeros(n, dtype=bool)
    received[[seq for _, seq in got]] = True
    lost = ~received
    pi_b = p / (p + r)
    batches = lost.reshape(200, -1).mean(axis=1)
    assert abs(lost.mean() - pi_b) <= Z * batches.std(ddof=1) / math.sqrt(200)
    edges = np.diff(np.concatenate(([0], lost.astype(np.int8), [0])))
    runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    rr = r / 100
    assert abs(runs.mean() - 1 / rr) <= Z * math.sqrt((1 - rr) / rr**2 / runs.size)
    # packet for packet, what a fresh LinkQueue with the same seed decides
    q = make()
    predicted = np.array([q.send(float(t), 200) is None for t in send_s])
    assert np.array_equal(predicted, lost)
    assert relay.summary("up")["packets_dropped"]["loss"] == lost.sum()


@pytest.mark.parametrize("reorder", [True, False])
def test_relay_reorder_rate_of_uniform_jitter(reorder):
    jitter_ms, gap_ms, n = 10.0, 5.0, 20_000
    jitter = Jitter(jitter_ms, "uniform", reorder=reorder)

    def make():
        return LinkQueue(100_000.0, Encapsulation.PPPOE_LLC, 10**9, 50.0, np.random.default_rng(3), jitter=jitter,
                         plain_ip=True)

    _, got, _ = _probe(make, n, gap_ms / 1000, 100)
    order = np.array([seq for _, seq in sorted(got)])  # the agent's arrival order
    arrival = np.empty(n)
    for t, seq in got:
        arrival[seq] = t
    pairs = arrival.reshape(-1, 2)
    inverted = int((pairs[:, 1] < pairs[:, 0]).sum())
    if reorder:
        p = (2 * jitter_ms - gap_ms) ** 2 / (8 * jitter_ms**2)
        lo, hi = stats.binom.interval(0.999, pairs.shape[0], p)
        assert lo <= inverted <= hi
        assert (np.diff(order) < 0).any()
    else:
        assert inverted == 0 and (np.diff(order) > 0).all()
