"""SimPy stepped on the asyncio loop (emulators/cosim.py): the same model gives the same event times as a
pure SimPy run, a process waits for an asyncio task exactly as for a timeout, and the model's clock
never runs ahead of the loop's."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import simpy

from emulators.cosim import SimPyOnLoop
from emulators.virtual_time import run_virtual

SECONDS_PER_UNIT = 60.0


def _queue_model(env: simpy.Environment, trace: list, service, n: int = 40, seed: int = 7):
    """An M/M/2 queue of ``n`` customers; ``service(env, k, duration)`` returns what a customer yields
    to be served (a timeout in pure SimPy, a live task on the loop). Records (time, event, k)."""
    rng = np.random.default_rng(seed)
    inter, durations = rng.exponential(3.0, n), rng.exponential(5.0, n)
    servers = simpy.Resource(env, capacity=2)

    def customer(k: int):
        trace.append((env.now, "arrive", k))
        with servers.request() as req:
            yield req
            trace.append((env.now, "start", k))
            yield service(env, k, float(durations[k]))
            trace.append((env.now, "end", k))

    def source():
        for k in range(n):
            yield env.timeout(float(inter[k]))
            env.process(customer(k))

    env.process(source())


def _pure_trace() -> list:
    env, trace = simpy.Environment(), []
    _queue_model(env, trace, lambda env, k, d: env.timeout(d))
    env.run()
    return trace


def _driven_trace(live: set[int]) -> tuple[list, list]:
    """The same model driven on a virtual loop; customers in ``live`` are served by an asyncio task
    (sleeping the duration on the loop); returns the model's trace and the loop times the tasks ended."""
    ended: list[tuple[int, float]] = []

    async def main():
        env, trace = simpy.Environment(), []
        driver = SimPyOnLoop(env, SECONDS_PER_UNIT)
        loop = asyncio.get_running_loop()

        async def live_service(k: int, d: float) -> int:
            await asyncio.sleep(d * SECONDS_PER_UNIT)
            ended.append((k, loop.time()))
            return k

        def service(env, k, d):
            return driver.external(live_service(k, d)) if k in live else env.timeout(d)

        _queue_model(env, trace, service)
        origin = loop.time()
        await driver.run(until=float("inf"))
        return trace, [(k, (t - origin) / SECONDS_PER_UNIT) for k, t in ended]

    return run_virtual(main)


def test_driving_without_live_tasks_gives_the_pure_simpy_trace():
    trace, _ = _driven_trace(set())
    assert trace == _pure_trace()


def test_a_process_waits_for_a_live_task_exactly_as_for_a_timeout():
    live = {0, 3, 4, 5, 11, 20, 39}
    trace, ended = _driven_trace(live)
    pure = _pure_trace()
    assert [(e, k) for _, e, k in trace] == [(e, k) for _, e, k in pure]
    assert np.allclose([t for t, _, _ in trace], [t for t, _, _ in pure], rtol=0, atol=1e-9)
    assert sorted(k for k, _ in ended) == sorted(live)
    ends = {k: t for t, e, k in trace if e == "end"}
    for k, t_loop in ended:  # the model saw each call end at the loop time it ended
        assert ends[k] == pytest.approx(t_loop, abs=1e-9)


def test_driving_is_deterministic():
    assert _driven_trace({1, 2, 8}) == _driven_trace({1, 2, 8})


def test_the_model_never_runs_ahead_of_the_loop_and_stops_at_until():
    async def main():
        env = simpy.Environment()
        driver = SimPyOnLoop(env, SECONDS_PER_UNIT)
        loop = asyncio.get_running_loop()
        origin = loop.time()
        lags = []

        def ticker():
            while True:
                yield env.timeout(1.5)
                lags.append((loop.time() - origin) / SECONDS_PER_UNIT - env.now)

        env.process(ticker())
        await driver.run(until=10.0)
        return lags, env.now

    lags, now = run_virtual(main)
    assert len(lags) == 6 and all(abs(lag) < 1e-9 for lag in lags)
    assert now == pytest.approx(9.0)


def test_a_failed_task_fails_the_event_the_process_waits_for():
    async def main():
        env = simpy.Environment()
        driver = SimPyOnLoop(env, SECONDS_PER_UNIT)
        caught = []

        async def failing_call():
            await asyncio.sleep(30.0)
            raise ConnectionError("consent expired")

        def interview():
            try:
                yield driver.external(failing_call())
            except ConnectionError as exc:
                caught.append((env.now, str(exc)))

        env.process(interview())
        await driver.run(until=5.0)
        return caught

    assert run_virtual(main) == [(0.5, "consent expired")]


def test_bad_arguments():
    with pytest.raises(ValueError, match="seconds_per_unit"):
        SimPyOnLoop(simpy.Environment(), 0.0)
    driver = SimPyOnLoop(simpy.Environment())
    with pytest.raises(RuntimeError, match="not driven"):
        driver.external(asyncio.sleep(0))
