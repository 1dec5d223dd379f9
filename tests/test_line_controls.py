"""Known answers for the link controls of twin.line (issue 14): queue growth at a rate mismatch, queue
limits in bytes / packets / ms, CoDel's drop schedule (RFC 8289), netem's Gilbert-Elliott parameters
(stationary loss, mean burst), jitter's reorder rate (uniform: triangular closed form; none when order is
kept), plain IP, and mahimahi's trace parser and delivery rule, read from mahimahi's own source
(src/frontend/link_queue.cc, src/util/ezio.cc)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from twin.errors import LineError, TwinInputError
from twin.line import (
    MAHIMAHI_OPPORTUNITY_BYTES,
    CapacityTrace,
    CoDel,
    Encapsulation,
    GilbertElliottLoss,
    Jitter,
    LinkQueue,
    atm_wire_bytes,
)

Z = stats.norm.ppf(0.9995)  # two-sided 99.9 %


def queue(rate_kbps=256.0, buffer_bytes=10**9, fixed_ms=0.0, seed=1, **kw) -> LinkQueue:
    return LinkQueue(rate_kbps, Encapsulation.PPPOE_LLC, buffer_bytes, fixed_ms, np.random.default_rng(seed), **kw)


# ---------------------------------------------------------------- queue growth at a rate mismatch


@pytest.mark.parametrize("plain_ip", [False, True])
def test_queue_delay_grows_linearly_at_a_rate_mismatch(plain_ip):
    """Packets of s wire bytes every T seconds into a line serving one in s/mu > T: packet n waits
    exactly n (s/mu - T) (a D/D/1 queue that never empties); delivery = arrival + wait + s/mu + fixed."""
    rate_kbps, ip_bytes, load, fixed_ms = 256.0, 1000, 1.5, 20.0
    q = queue(rate_kbps, fixed_ms=fixed_ms, plain_ip=plain_ip)
    wire = ip_bytes if plain_ip else atm_wire_bytes(ip_bytes, "pppoe-llc")
    service_s = wire * 8 / (rate_kbps * 1000)
    gap_s = service_s / load
    for n in range(2000):
        delivery = q.send(n * gap_s, ip_bytes)
        wait = n * (service_s - gap_s)
        assert q.last_queue_delay_s == pytest.approx(wait, abs=1e-9)
        assert delivery == pytest.approx(n * gap_s + wait + service_s + fixed_ms / 1000, abs=1e-9)
    # the queueing delay grows by (lambda - mu) / mu = load - 1 seconds per second
    assert q.stats.max_queue_delay_s / (1999 * gap_s) == pytest.approx(load - 1, rel=1e-9)


def test_queue_limits_in_packets_bytes_and_ms():
    ip_bytes = 1000
    wire = atm_wire_bytes(ip_bytes, "pppoe-llc")
    service_s = wire * 8 / 256_000
    # packets: a burst of 20 keeps 7 (waiting or being serialized)
    q = queue(queue_packets=7)
    assert sum(q.send(0.0, ip_bytes) is not None for _ in range(20)) == 7
    assert q.stats.dropped_buffer == 13 and q.last_drop == "buffer"
    # bytes: the limit counts wire bytes
    q = queue(buffer_bytes=5 * wire)
    assert sum(q.send(0.0, ip_bytes) is not None for _ in range(20)) == 5
    # ms: a packet may wait at most queue_ms before its serialization starts
    q = queue(queue_ms=1000 * 4.5 * service_s)
    assert sum(q.send(0.0, ip_bytes) is not None for _ in range(20)) == 5  # waits 0, 1, 2, 3, 4 services
    with pytest.raises(LineError, match="queue_packets"):
        queue(queue_packets=0)
    with pytest.raises(LineError, match="queue_ms"):
        queue(queue_ms=-1.0)


# ---------------------------------------------------------------- CoDel (RFC 8289)


def test_codel_drop_schedule_follows_the_control_law():
    """A standing overload: the first drop comes at the first dequeue at least INTERVAL after the
    sojourn time first reached TARGET; then drop_next advances by INTERVAL / sqrt(count) from its own
    previous value (RFC 8289 section 5.5), whatever the exact dequeue times."""
    rate_kbps, ip_bytes, load = 10_000.0, 200, 1.25
    q = queue(rate_kbps, plain_ip=True, aqm="codel")
    service_s = ip_bytes * 8 / (rate_kbps * 1000)
    gap_s = service_s / load
    events = []  # (dequeue time, sojourn, dropped)
    for n in range(40_000):
        now = n * gap_s
        start = max(now, q._busy_until_s)
        delivered = q.send(now, ip_bytes) is not None
        events.append((start, start - now, not delivered))
    assert q.stats.dropped_aqm > 5 and q.stats.dropped_buffer == 0
    above = next(t for t, sojourn, _ in events if sojourn >= 0.005)
    drops = [t for t, _, dropped in events if dropped]
    interval = 0.100
    # first drop: the first dequeue at or after above + INTERVAL
    assert drops[0] == next(t for t, _, _ in events if t >= above + interval)
    drop_next = drops[0] + interval  # count = 1 at entry
    for count, t in enumerate(drops[1:6], start=2):
        assert t == next(t2 for t2, _, _ in events if t2 >= drop_next)  # the same float arithmetic as CoDel
        drop_next += interval / math.sqrt(count)
    # every drop shortens the standing queue by one service time: the last sojourn is the D/D/1 one
    # (load - 1) t minus one service per drop made before it
    t_end, sojourn_end, _ = events[-1]
    arrival_end = t_end - sojourn_end
    ddone = (load - 1) * arrival_end
    assert sojourn_end == pytest.approx(ddone - q.stats.dropped_aqm * service_s, abs=2 * service_s)


def test_codel_never_drops_below_target():
    q = queue(1000.0, plain_ip=True, aqm="codel")
    for n in range(5000):
        q.send(n * 0.01, 100)  # 0.8 ms of service every 10 ms: no queue
    assert q.stats.dropped_aqm == 0
    with pytest.raises(LineError):
        CoDel(target_ms=0.0)
    with pytest.raises(LineError, match="queue discipline"):
        queue(aqm="red")


# ---------------------------------------------------------------- Gilbert-Elliott with netem's parameters


def _runs(lost: np.ndarray) -> np.ndarray:
    edges = np.diff(np.concatenate(([0], lost.astype(np.int8), [0])))
    return np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)


@pytest.mark.parametrize("p, r, one_minus_h, one_minus_k", [(2.0, 25.0, 100.0, 0.0), (5.0, 30.0, 70.0, 1.0)])
def test_gemodel_stationary_loss(p, r, one_minus_h, one_minus_k):
    """netem's ``loss gemodel p r 1-h 1-k``: long-run loss pi_B (1-h) + pi_G (1-k), pi_B = p / (p + r),
    within a 99.9 % interval (batch means over 400 batches: the chain is correlated)."""
    model = GilbertElliottLoss.from_netem(p, r, one_minus_h, one_minus_k)
    q = queue(100_000.0, plain_ip=True, loss=model, seed=5)
    n = 400_000
    lost = np.array([q.send(i * 0.001, 100) is None for i in range(n)])
    pi_b = p / (p + r)
    expected = pi_b * one_minus_h / 100 + (1 - pi_b) * one_minus_k / 100
    assert model.mean_loss_pct == pytest.approx(100 * expected)
    batches = lost.reshape(400, -1).mean(axis=1)
    assert abs(lost.mean() - expected) <= Z * batches.std(ddof=1) / math.sqrt(400)
    assert q.stats.dropped_loss == lost.sum()


def test_gemodel_mean_burst_length_is_one_over_r():
    """Simple Gilbert (1-h = 100 %, 1-k = 0): loss bursts are geometric, mean 1 / r, variance (1 - r) / r^2."""
    p, r = 1.0, 20.0
    model = GilbertElliottLoss.from_netem(p, r)
    rng = np.random.default_rng(9)
    lost = np.fromiter((model.lost(rng) for _ in range(400_000)), dtype=bool)
    runs = _runs(lost)
    rr = r / 100
    assert abs(runs.mean() - 1 / rr) <= Z * math.sqrt((1 - rr) / rr**2 / runs.size)
    assert model.mean_burst_packets == pytest.approx(5.0)


def test_gemodel_defaults_and_bounds_follow_netem():
    model = GilbertElliottLoss.from_netem(10.0)
    assert (model.p_good_to_bad, model.p_bad_to_good, model.loss_in_bad, model.loss_in_good) == (0.1, 0.9, 1.0, 0.0)
    with pytest.raises(LineError, match="1-h"):
        GilbertElliottLoss.from_netem(1.0, 10.0, 120.0)
    with pytest.raises(LineError, match="absorbs"):
        GilbertElliottLoss.from_netem(1.0, 0.0)


# ---------------------------------------------------------------- jitter and reordering


def _adjacent_inversions(deliveries: np.ndarray) -> tuple[int, int]:
    """Inversions in disjoint pairs (0, 1), (2, 3)...: independent Bernoulli trials."""
    pairs = deliveries[: deliveries.size // 2 * 2].reshape(-1, 2)
    return int((pairs[:, 1] < pairs[:, 0]).sum()), pairs.shape[0]


@pytest.mark.parametrize("jitter_ms, gap_ms", [(10.0, 5.0), (10.0, 15.0), (4.0, 1.0)])
def test_uniform_jitter_reorder_rate_matches_the_triangular_closed_form(jitter_ms, gap_ms):
    """Delay + U(-j, j) per packet, packets gap_ms apart on an idle fast line: the second of two packets
    arrives first with probability (2j - gap)^2 / (8 j^2); binomial 99.9 % interval."""
    jitter = Jitter(jitter_ms, "uniform", reorder=True)
    q = queue(100_000.0, fixed_ms=50.0, plain_ip=True, jitter=jitter, seed=3)
    n = 40_000
    d = np.array([q.send(i * gap_ms / 1000, 100) for i in range(n)])
    inverted, trials = _adjacent_inversions(d)
    p = jitter.adjacent_reorder_probability(gap_ms)
    assert p == pytest.approx((2 * jitter_ms - gap_ms) ** 2 / (8 * jitter_ms**2))
    lo, hi = stats.binom.interval(0.999, trials, p)
    assert lo <= inverted <= hi, (inverted, trials * p)
    # the delay itself: mean fixed + serialization, spread uniform over +-j
    extra_ms = (d - np.arange(n) * gap_ms / 1000) * 1000 - 50.0
    assert extra_ms.min() >= -jitter_ms - 1e-6 and extra_ms.max() <= jitter_ms + 0.1


@pytest.mark.parametrize("distribution", ["uniform", "normal", "exponential"])
def test_no_reordering_when_order_is_kept(distribution):
    q = queue(100_000.0, fixed_ms=50.0, plain_ip=True, jitter=Jitter(10.0, distribution, reorder=False))
    d = np.array([q.send(i * 0.002, 100) for i in range(20_000)])
    assert (np.diff(d) >= 0).all()


def test_normal_jitter_reorder_rate():
    jitter = Jitter(5.0, "normal", reorder=True)
    q = queue(100_000.0, fixed_ms=50.0, plain_ip=True, jitter=jitter, seed=4)
    d = np.array([q.send(i * 0.004, 100) for i in range(40_000)])
    inverted, trials = _adjacent_inversions(d)
    lo, hi = stats.binom.interval(0.999, trials, jitter.adjacent_reorder_probability(4.0))
    assert lo <= inverted <= hi


def test_jitter_validation():
    with pytest.raises(LineError, match="distribution"):
        Jitter(5.0, "pareto")
    with pytest.raises(LineError, match="jitter_ms"):
        Jitter(0.0)
    with pytest.raises(LineError, match="not both"):
        queue(jitter_ms=3.0, jitter=Jitter(3.0))


# ---------------------------------------------------------------- mahimahi traces, as mahimahi reads them


@pytest.mark.parametrize(
    "content, values",
    [
        (b"1\n", [1]),
        (b"0\n0\n5\n", [0, 0, 5]),  # opportunities at 0 are allowed, the period is the last one
        (b" 5\n\t7\n", [5, 7]),  # strtol skips leading white space
        (b"+5\n007\n", [5, 7]),  # a sign, leading zeros: base 10
        (b"3\n4", [3, 4]),  # no final newline: getline still reads the last line
    ],
)
def test_mahimahi_accepts_what_mahimahi_accepts(content, values):
    trace = CapacityTrace.parse(content, name="t.trace")
    assert [trace.opportunity_time_ms(k) for k in range(len(values))] == values


@pytest.mark.parametrize(
    "content, lineno, needle",
    [
        (b"", None, "no valid timestamps"),
        (b"\n", 1, "invalid empty line"),
        (b"1\n\n2\n", 2, "invalid empty line"),
        (b"1\n2\n\n", 3, "invalid empty line"),  # a blank line at the end too
        (b"5 \n", 1, "invalid integer"),  # trailing space
        (b"5\r\n6\r\n", 1, "invalid integer"),  # CRLF: getline keeps the \r, strtol stops there
        (b"1\n2.5\n", 2, "invalid integer"),
        (b"0x10\n", 1, "invalid integer"),
        (b"1\n \n", 2, "invalid integer"),  # only white space: no digit
        (b"abc\n", 1, "invalid integer"),
        (b"\xff\xfe1\n", 1, "invalid integer"),  # binary
        (b"5\n3\n", 2, "nondecreasing"),
        (b"0\n0\n", 2, "nonzero amount of time"),
        (b"-5\n", 1, "18446744073709551611"),  # stricter than mahimahi, which wraps it
    ],
)
def test_mahimahi_rejects_what_mahimahi_rejects_with_the_line_number(content, lineno, needle):
    with pytest.raises(TwinInputError, match=needle) as info:
        CapacityTrace.parse(content, name="bad.trace")
    message = str(info.value)
    assert message.startswith("bad.trace: ")
    if lineno is not None:
        assert f"line {lineno}:" in message


def test_mahimahi_delivery_rule():
    """Opportunities at 0 and 10 ms, period 10 (so 0, 10, 10, 20, 20, ...): a packet arriving in
    millisecond m uses only opportunities after m; an opportunity's leftover bytes serve a packet
    queued before it; a packet larger than an opportunity spans the next ones."""
    trace = CapacityTrace.parse(b"0\n10\n")
    q = queue(plain_ip=True, capacity_trace=trace, trace_start_s=0.0)
    assert q.send(0.0, 100) == pytest.approx(0.010)  # the opportunity at 0 is burnt before it is queued
    assert q.send(0.005, 100) == pytest.approx(0.010)  # queued before 10 ms: the leftover of the same one
    assert q.send(0.0102, 100) == pytest.approx(0.020)  # arrives in ms 10: both opportunities at 10 are gone
    # 1505 bytes: the 1404 left of the first opportunity at 20 ms, then 101 of the second one at 20 ms
    assert q.send(0.0105, MAHIMAHI_OPPORTUNITY_BYTES + 1) == pytest.approx(0.020)
    assert q.send(0.0106, MAHIMAHI_OPPORTUNITY_BYTES + 1) == pytest.approx(0.030)  # 1403 at 20 ms, 102 at 30 ms
    assert MAHIMAHI_OPPORTUNITY_BYTES == 1504
