"""Tests of twin.line: exact cell-tax arithmetic, rate-reach, the line object, and LinkQueue against
analytic values (rates, drop-tail limits, binomial / Markov-chain confidence intervals)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from twin.datafiles import read_capacity_trace
from twin.errors import LineError, TwinInputError
from twin.line import (
    ATM_CELL_BYTES,
    ATM_PAYLOAD_BYTES,
    ELIGIBILITY_LIMIT_DB,
    ENCAPSULATION_OVERHEAD_BYTES,
    OFFERS,
    AdslLine,
    BernoulliLoss,
    Direction,
    Encapsulation,
    GilbertElliottLoss,
    LineFamily,
    LinkQueue,
    OutageSchedule,
    atm_cells,
    atm_efficiency,
    atm_wire_bytes,
    attainable_sync_rate_kbps,
    get_offer,
    ip_capacity_kbps,
    loop_attenuation_db,
    serialization_time_s,
)

TRACES = Path(__file__).parent / "data" / "traces"


# ---------------------------------------------------------------- ATM cell tax (docs/facts.md worked values)


def test_worked_values_pppoa_1500():
    assert atm_cells(1500, Encapsulation.PPPOA_VCMUX) == 32
    assert atm_wire_bytes(1500, Encapsulation.PPPOA_VCMUX) == 32 * 53
    assert round(100 * atm_efficiency(1500, Encapsulation.PPPOA_VCMUX), 1) == 88.4


def test_worked_values_pppoe_llc_1500():
    assert atm_cells(1500, Encapsulation.PPPOE_LLC) == 33
    assert round(100 * atm_efficiency(1500, "pppoe-llc"), 1) == 85.8
    assert round(1000 * serialization_time_s(1500, 385, Encapsulation.PPPOE_LLC), 2) == 36.34
    assert round(ip_capacity_kbps(385, 1500, Encapsulation.PPPOE_LLC), 1) == 330.2


def test_worked_values_small_packets():
    assert atm_cells(200, Encapsulation.PPPOA_VCMUX) == 5
    assert round(100 * atm_efficiency(200, Encapsulation.PPPOA_VCMUX), 1) == 75.5
    assert atm_cells(100, Encapsulation.PPPOE_LLC) == 3
    assert round(100 * atm_efficiency(100, Encapsulation.PPPOE_LLC), 1) == 62.9


def test_overheads_of_facts():
    assert ENCAPSULATION_OVERHEAD_BYTES[Encapsulation.PPPOA_VCMUX] == 10
    assert ENCAPSULATION_OVERHEAD_BYTES[Encapsulation.PPPOE_LLC] == 40
    assert ENCAPSULATION_OVERHEAD_BYTES[Encapsulation.PPPOE_LLC_FCS] == 44
    assert set(ENCAPSULATION_OVERHEAD_BYTES) == set(Encapsulation)


def test_bad_sizes_and_encapsulation():
    with pytest.raises(ValueError):
        atm_cells(0, Encapsulation.PPPOA_VCMUX)
    with pytest.raises(LineError, match="unknown encapsulation"):
        atm_cells(100, "pppoz")


@given(st.integers(1, 9000), st.integers(1, 200), st.sampled_from(list(Encapsulation)))
def test_cells_monotone_and_tight(size, extra, enc):
    cells = atm_cells(size, enc)
    overhead = ENCAPSULATION_OVERHEAD_BYTES[enc]
    assert (cells - 1) * ATM_PAYLOAD_BYTES < size + overhead <= cells * ATM_PAYLOAD_BYTES
    assert atm_cells(size + extra, enc) >= cells
    assert 0 < atm_efficiency(size, enc) <= ATM_PAYLOAD_BYTES / ATM_CELL_BYTES


@given(st.integers(1, 3000), st.floats(8, 30000), st.sampled_from(list(Encapsulation)))
def test_capacity_times_serialization_is_packet(size, rate, enc):
    # a saturated line delivers one packet per serialization time
    t = serialization_time_s(size, rate, enc)
    assert math.isclose(ip_capacity_kbps(rate, size, enc) * 1000 * t, size * 8, rel_tol=1e-9)


# ---------------------------------------------------------------- rate-reach


def test_rate_reach_table_points():
    rows = [(170, 4.1, 8000, 19400), (1301, 20.3, 7300, 14200), (2540, 39.6, 5700, 7400),
            (3909, 47.6, 4200, 5400), (5004, 53.0, 3100, 4300), (5755, 60.8, 2000, 3000)]
    for length, att, adsl, adsl2p in rows:
        assert math.isclose(loop_attenuation_db(length), att)
        assert math.isclose(attainable_sync_rate_kbps(length, LineFamily.ADSL)[0], adsl)
        assert math.isclose(attainable_sync_rate_kbps(length, LineFamily.ADSL2PLUS)[0], adsl2p)


@given(st.floats(0, 6600), st.floats(0, 6600))
def test_rates_fall_with_length(a, b):
    short, long_ = sorted((a, b))
    assert loop_attenuation_db(short) <= loop_attenuation_db(long_)
    for fam in (LineFamily.ADSL, LineFamily.ADSL2PLUS):
        ds, us = attainable_sync_rate_kbps(short, fam)
        dl, ul = attainable_sync_rate_kbps(long_, fam)
        assert dl <= ds and ul <= us and dl > 0 and ul > 0
    assert attainable_sync_rate_kbps(long_, "adsl2plus")[0] >= attainable_sync_rate_kbps(long_, "adsl")[0]


def test_eligibility_limit():
    # find the limit by bisection on attenuation, check just inside / just outside
    lo, hi = 5755.0, 10000.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if loop_attenuation_db(mid) <= ELIGIBILITY_LIMIT_DB else (lo, mid)
    attainable_sync_rate_kbps(lo, "adsl")
    with pytest.raises(LineError, match=r"adsl.*|.*adsl") as exc:
        attainable_sync_rate_kbps(hi + 1, "adsl")
    assert f"{hi + 1:.0f} m" in str(exc.value)


def test_readsl_reach():
    assert attainable_sync_rate_kbps(7999, LineFamily.READSL) == (512.0, 128.0)
    with pytest.raises(LineError, match="8100 m.*readsl"):
        attainable_sync_rate_kbps(8100, LineFamily.READSL)
    with pytest.raises(LineError):
        attainable_sync_rate_kbps(-1, LineFamily.ADSL)


# ---------------------------------------------------------------- offers and lines


def test_offers():
    assert {"adsl-512-128", "adsl-1024-256", "adsl-2048-256", "adsl-max", "readsl-512-128", "adsl2plus"} <= set(OFFERS)
    assert get_offer("adsl-512-128").up_kbps == 128
    with pytest.raises(LineError, match="adsl-512-128"):
        get_offer("adsl-9999")


def test_line_sync_is_min_of_cap_and_attainable():
    short = AdslLine(get_offer("adsl-max"), loop_length_m=150)
    assert short.sync_rate_down_kbps == 8000 and short.sync_rate_up_kbps == 800
    long_ = AdslLine("adsl-max", loop_length_m=5004)
    assert long_.sync_rate_down_kbps == 3100
    capped = AdslLine("adsl-512-128", loop_length_m=5004)
    assert (capped.sync_rate_down_kbps, capped.sync_rate_up_kbps) == (512, 128)


def test_line_validation_names_field():
    with pytest.raises(LineError, match="loss_pct.*-1"):
        AdslLine("adsl-512-128", 1000, loss_pct=-1)
    with pytest.raises(LineError, match="up_buffer_bytes"):
        AdslLine("adsl-512-128", 1000, up_buffer_bytes=-5)
    with pytest.raises(LineError, match="7500 m"):
        AdslLine("adsl-512-128", 7500)
    AdslLine("readsl-512-128", 7500)


def test_line_delays():
    line = AdslLine("adsl-512-128", 2000, interleaving_delay_ms=16, propagation_delay_ms=5)
    assert line.fixed_delay_ms(Direction.UP) == 21
    t_ser_ms = 1000 * serialization_time_s(1500, 128, Encapsulation.PPPOE_LLC)
    assert math.isclose(line.one_way_delay_ms("up", 1500), 21 + t_ser_ms)
    assert math.isclose(line.one_way_delay_ms("up", 1500, queue_bytes=16000), 21 + t_ser_ms + 1000)
    assert math.isclose(line.ip_capacity_kbps("down", 1500), 512 * 1500 / 1749)


# ---------------------------------------------------------------- LinkQueue


def make_queue(rate=256.0, buffer_bytes=10**9, fixed_ms=20.0, seed=1, **kw):
    return LinkQueue(rate, Encapsulation.PPPOE_LLC, buffer_bytes, fixed_ms, np.random.default_rng(seed), **kw)


def test_saturated_rate_matches_ip_capacity():
    rate = 256.0
    q = make_queue(rate, fixed_ms=0.0)
    ser = serialization_time_s(1500, rate, Encapsulation.PPPOE_LLC)
    interval = ser / 1.5  # offered at 1.5x capacity for a long time
    n = 5000
    deliveries = [q.send(i * interval, 1500) for i in range(n)]
    assert all(d is not None for d in deliveries)
    horizon = n * interval
    delivered_bits = sum(1500 * 8 for d in deliveries if d <= horizon)
    assert math.isclose(delivered_bits / horizon / 1000, ip_capacity_kbps(rate, 1500, "pppoe-llc"), rel_tol=0.005)
    # a single saturated burst drains at exactly the IP capacity
    q2 = make_queue(rate, fixed_ms=0.0)
    last = [q2.send(0.0, 1500) for _ in range(1000)][-1]
    assert math.isclose(1000 * 1500 * 8 / last / 1000, ip_capacity_kbps(rate, 1500, "pppoe-llc"), rel_tol=1e-9)


def test_fixed_delay_and_fifo_with_jitter():
    rng = np.random.default_rng(7)
    q = make_queue(512.0, fixed_ms=21.0, jitter_ms=15.0)
    t, prev = 0.0, -1.0
    for _ in range(5000):
        t += rng.exponential(0.01)
        size = int(rng.integers(60, 1500))
        d = q.send(t, size)
        assert d is not None
        assert d >= prev
        assert d >= t + serialization_time_s(size, 512.0, "pppoe-llc") + 0.021 - 1e-12
        prev = d
    # no jitter: an idle line delivers after serialization + fixed delay exactly
    q0 = make_queue(128.0, fixed_ms=21.0)
    assert math.isclose(q0.send(3.0, 100), 3.0 + 159 * 8 / 128000 + 0.021)


def test_drop_tail_at_buffer_size():
    buffer_bytes = 120_000
    q = make_queue(256.0, buffer_bytes=buffer_bytes)
    accepted = sum(q.send(0.0, 1500) is not None for _ in range(200))
    assert accepted == buffer_bytes // 1749
    assert q.stats.dropped_buffer == 200 - accepted
    assert q.backlog_bytes(0.0) == accepted * 1749
    assert math.isclose(q.queue_delay_s(0.0), accepted * 1749 * 8 / 256000)
    # after 10 packets' serialization, exactly 10 more fit
    t = 10 * 1749 * 8 / 256000 + 1e-9
    assert sum(q.send(t, 1500) is not None for _ in range(50)) == 10


def test_bernoulli_loss_in_binomial_interval():
    n, pct = 100_000, 2.0
    q = make_queue(10_000.0, loss=BernoulliLoss(pct), seed=3)
    for i in range(n):
        q.send(i * 0.01, 200)
    lo, hi = stats.binom.interval(0.99, n, pct / 100)
    assert lo <= q.stats.dropped_loss <= hi
    assert q.stats.packets_delivered + q.stats.dropped_loss == n


def test_from_line_uses_line_loss():
    line = AdslLine("adsl-512-128", 2000, loss_pct=1.0)
    q = LinkQueue.from_line(line, Direction.UP, np.random.default_rng(0))
    assert q.sync_rate_kbps == 128 and q.buffer_bytes == 120_000 and isinstance(q.loss, BernoulliLoss)
    assert math.isclose(q.fixed_delay_s, line.fixed_delay_ms("up") / 1000)
    with pytest.raises(LineError, match="bogus"):
        LinkQueue.from_line(line, "up", np.random.default_rng(0), bogus=1)


def test_gilbert_elliott_mean_loss_and_burst():
    loss_pct, burst = 3.0, 4.0
    model = GilbertElliottLoss.from_mean_loss(loss_pct, burst)
    assert math.isclose(model.mean_loss_pct, loss_pct) and math.isclose(model.mean_burst_packets, burst)
    rng = np.random.default_rng(11)
    n = 400_000
    x = np.fromiter((model.lost(rng) for _ in range(n)), dtype=bool, count=n)
    pi = loss_pct / 100
    lam = 1 - model.p_good_to_bad - model.p_bad_to_good
    se_mean = math.sqrt(pi * (1 - pi) * (1 + lam) / (1 - lam) / n)  # Markov-chain CLT
    z = stats.norm.ppf(0.995)
    assert abs(x.mean() - pi) <= z * se_mean
    # runs of losses: geometric with mean 1/r, variance (1-r)/r^2
    edges = np.diff(np.concatenate(([0], x.astype(np.int8), [0])))
    runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    r = model.p_bad_to_good
    se_run = math.sqrt((1 - r) / r**2 / runs.size)
    assert abs(runs.mean() - burst) <= z * se_run


def test_gilbert_elliott_validation():
    with pytest.raises(LineError):
        GilbertElliottLoss.from_mean_loss(60.0, 1.0)  # needs p > 1
    with pytest.raises(LineError):
        GilbertElliottLoss(1.5, 0.5)


def test_trace_constant_12mbps(tmp_path):
    path = tmp_path / "c.trace"
    path.write_text("1\n")
    trace = read_capacity_trace(path)
    assert trace.mean_rate_kbps == 12032  # 1504 bytes a millisecond (mahimahi PACKET_SIZE)
    q = make_queue(capacity_trace=trace, fixed_ms=0.0, trace_start_s=0.0)
    # 1500 B PPPoE LLC = 1749 wire bytes: 8 packets = 13992 B need 10 opportunities (1 per ms)
    deliveries = [q.send(0.0, 1500) for _ in range(8)]
    assert math.isclose(deliveries[-1], 0.010)
    assert math.isclose(deliveries[0], 0.002)  # 1749 B spans opportunities at 1 and 2 ms


def test_trace_driven_mean_rate():
    trace = read_capacity_trace(TRACES / "TMobile-UMTS-driving.up")
    assert math.isclose(trace.mean_rate_kbps, len(trace) * 1504 * 8 / trace.period_ms)
    # saturate for about one full period: every opportunity used, wire rate = trace mean rate
    n_packets = (len(trace) * 1504) // 1749 - 5
    q = make_queue(capacity_trace=trace, fixed_ms=0.0, trace_start_s=0.0)
    last = None
    for _ in range(n_packets):
        last = q.send(0.0, 1500)
    wire_kbps = n_packets * 1749 * 8 / last / 1000
    assert math.isclose(wire_kbps, trace.mean_rate_kbps, rel_tol=0.005)


def test_trace_errors(tmp_path):
    with pytest.raises(TwinInputError, match="nope.trace"):
        read_capacity_trace(tmp_path / "nope.trace")
    bad = tmp_path / "bad.trace"
    bad.write_text("1\n2\nabc\n")
    with pytest.raises(TwinInputError, match=r"bad.trace.*line 3.*abc"):
        read_capacity_trace(bad)
    dec = tmp_path / "dec.trace"
    dec.write_text("5\n3\n")
    with pytest.raises(TwinInputError, match="line 2"):
        read_capacity_trace(dec)


def test_outages_drop():
    outages = OutageSchedule.from_intervals([(10.0, 20.0)])
    assert outages.is_up(9.99) and not outages.is_up(10.0) and not outages.is_up(19.9) and outages.is_up(20.0)
    q = make_queue(128.0, outages=outages)
    assert q.send(5.0, 1500) is not None
    # a packet whose serialization (109 ms at 128 kbit/s) would run into the outage is flushed
    assert q.send(10.0 - 0.05, 1500) is None
    assert q.send(15.0, 1500) is None
    assert q.send(20.0, 1500) is not None
    assert q.stats.dropped_outage == 2 and q.stats.packets_delivered == 2


def test_outage_schedule_from_mtbf_availability():
    mtbf_h, mttr_h = 10.0, 1.0
    horizon_s = 2_000 * 11 * 3600.0  # about 2000 cycles
    sched = OutageSchedule.from_mtbf(mtbf_h, mttr_h, horizon_s, np.random.default_rng(5))
    cycles = horizon_s / ((mtbf_h + mttr_h) * 3600)
    # number of renewals: mean ~ cycles, sd ~ sqrt(cycles * (mtbf^2+mttr^2)/(mtbf+mttr)^2)
    sd = math.sqrt(cycles * (mtbf_h**2 + mttr_h**2) / (mtbf_h + mttr_h) ** 2)
    assert abs(len(sched) - cycles) <= 4 * sd
    unavail = sched.downtime_s(0, horizon_s) / horizon_s
    assert abs(unavail - mttr_h / (mtbf_h + mttr_h)) < 0.01
    with pytest.raises(LineError):
        OutageSchedule([(5.0, 4.0)])


def test_time_must_not_go_backwards():
    q = make_queue()
    q.send(1.0, 100)
    with pytest.raises(ValueError):
        q.send(0.5, 100)
