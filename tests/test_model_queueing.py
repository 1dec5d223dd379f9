"""The SimPy model's agent pool against queueing theory (Erlang C for M/M/c, Erlang B for M/M/c/c).

A scenario (built in memory, :func:`conftest.queue_scenario`) with one commune, one kiosk at its town hall (so every need comes to the kiosk), kiosk and
service open around the clock, lines that never fail and many booths reduces the model to an M/M/c
queue (appointments: no abandonment) or an M/M/c/c loss system (walk-in with zero patience). The
analytic values must fall inside the simulated 95% confidence interval over independent replications.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import queue_scenario
from scipy import stats

from twin.model import prepare, simulate
from twin.quality import OpinionQualityModel


def erlang_b(offered_erlangs: float, servers: int) -> float:
    """Erlang B by the recursion B(E,0)=1, B(E,m) = E B(E,m-1) / (m + E B(E,m-1)) (docs/facts.md)."""
    b = 1.0
    for m in range(1, servers + 1):
        b = offered_erlangs * b / (m + offered_erlangs * b)
    return b


def erlang_c(offered_erlangs: float, servers: int) -> float:
    """Erlang C, C = m B / (m - E (1 - B)) (docs/facts.md)."""
    b = erlang_b(offered_erlangs, servers)
    return servers * b / (servers - offered_erlangs * (1 - b))


def _ci95(values: np.ndarray) -> tuple[float, float]:
    mean = float(values.mean())
    half = float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))
    return mean, half


def test_agent_pool_matches_erlang_c() -> None:
    lam, mean_s, c = 0.24, 10.0, 3  # offered load 2.4 erlangs on 3 agents (80 % busy)
    inputs = prepare(queue_scenario(arrivals_per_min=lam, mean_service_min=mean_s, servers=c, booking="appointment",
                                    patience_min=30, days=40), OpinionQualityModel())
    p_wait, mean_wait = [], []
    for child in np.random.SeedSequence(2024).spawn(12):
        served = simulate(inputs, child).served
        waits = served["wait_min"]
        p_wait.append(float((waits > 1e-9).mean()))
        mean_wait.append(float(waits.mean()))
    erlang = lam * mean_s
    c_prob = erlang_c(erlang, c)
    wq = c_prob / (c / mean_s - lam)
    m, h = _ci95(np.array(p_wait))
    assert abs(m - c_prob) <= h, f"P(wait) {m:.4f} ± {h:.4f} vs Erlang C {c_prob:.4f}"
    m, h = _ci95(np.array(mean_wait))
    assert abs(m - wq) <= h, f"mean wait {m:.3f} ± {h:.3f} min vs Erlang C {wq:.3f} min"


def test_loss_system_matches_erlang_b() -> None:
    lam, mean_s, c = 0.3, 10.0, 4  # 3 erlangs on 4 agents, no waiting allowed
    inputs = prepare(queue_scenario(arrivals_per_min=lam, mean_service_min=mean_s, servers=c, booking="walk-in",
                                    patience_min=0, days=30), OpinionQualityModel())
    blocking = []
    for child in np.random.SeedSequence(99).spawn(12):
        records = simulate(inputs, child)
        served = len(records.served["wait_min"])
        lost = records.unmet.get((0, 0, "gave_up"), 0)
        blocking.append(lost / (served + lost))
    b = erlang_b(lam * mean_s, c)
    m, h = _ci95(np.array(blocking))
    assert abs(m - b) <= h, f"blocking {m:.4f} ± {h:.4f} vs Erlang B {b:.4f}"


@pytest.mark.parametrize("e, m, expected", [(2.0, 3, 0.2105263), (10.0, 10, 0.2145823)])
def test_erlang_reference_values(e: float, m: int, expected: float) -> None:
    # The references of the test itself: Erlang B equals poisson.pmf / poisson.cdf (docs/facts.md).
    assert erlang_b(e, m) == pytest.approx(stats.poisson.pmf(m, e) / stats.poisson.cdf(m, e), rel=1e-12)
    assert erlang_b(e, m) == pytest.approx(expected, rel=1e-6)
