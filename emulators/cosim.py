"""One clock for the SimPy model and the emulated calls: a SimPy environment stepped on the asyncio loop.

The hybrid twin runs the regional model (SimPy) and real emulated calls (aiortc, asyncio) together: an
interview the model routes through a live site is a real call, and the model must wait for that call
to end exactly as it waits for a modelled interview. :class:`SimPyOnLoop` makes the asyncio loop the
master clock (on a :class:`emulators.virtual_time.VirtualClockLoop` it is virtual time, deterministic):

* SimPy time is in model units (the twin's are minutes): unit ``u`` is loop time ``origin + u *
  seconds_per_unit``, the origin fixed when driving starts, so that the environment's ``now`` maps to the
  loop's ``time()`` at that moment;
* :meth:`SimPyOnLoop.run` processes SimPy events in order, each when the loop's clock reaches its time
  (sleeping on the loop in between, which lets the calls run); it never processes an event before its
  time, so the model's ``now`` never runs ahead of the calls;
* :meth:`SimPyOnLoop.external` starts a coroutine (a live call) as a task and gives the model a SimPy
  event that fires at the loop time the task ends, with its result (or its exception, which the waiting
  process receives). The model ``yield``s it like a timeout.

Nothing here knows calls or kiosks: it is the bridge only (tests check it against a pure SimPy run).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Coroutine
from typing import Any

import simpy


class DrivingStopped(Exception):
    """:meth:`SimPyOnLoop.run` stopped because its ``stop`` callable said so (a signal): the tasks still
    running were cancelled and awaited."""


class SimPyOnLoop:
    """Drive ``env`` from the running asyncio loop (see the module docstring).

    Args:
        env: the SimPy environment (its processes already created or created while driving).
        seconds_per_unit: loop seconds per SimPy time unit (60 for the twin's minutes).
    """

    def __init__(self, env: simpy.Environment, seconds_per_unit: float = 60.0) -> None:
        if not seconds_per_unit > 0:
            raise ValueError(f"seconds_per_unit must be > 0, got {seconds_per_unit!r}")
        self.env = env
        self.seconds_per_unit = seconds_per_unit
        self._origin_s: float | None = None
        self._wake: asyncio.Event | None = None
        self._running: set[asyncio.Task] = set()

    def loop_units(self) -> float:
        """The loop's clock in SimPy units (valid once :meth:`run` started)."""
        assert self._origin_s is not None, "SimPyOnLoop.run has not started"
        return (asyncio.get_running_loop().time() - self._origin_s) / self.seconds_per_unit

    @property
    def pending(self) -> int:
        """External tasks started and not finished."""
        return len(self._running)

    def external(self, coro: Coroutine[Any, Any, Any]) -> simpy.Event:
        """Run ``coro`` as a task on the loop; a SimPy event that fires when it ends, at that loop time,
        with its result as value (or failed with its exception; a cancelled task fails with
        ``asyncio.CancelledError``). Call it while :meth:`run` drives the environment."""
        if self._origin_s is None:
            coro.close()
            raise RuntimeError("SimPyOnLoop.external called while the environment is not driven")
        done_event = self.env.event()
        task = asyncio.ensure_future(coro)
        self._running.add(task)

        def finished(t: asyncio.Task) -> None:
            self._running.discard(t)
            delay = max(0.0, self.loop_units() - self.env.now)
            fire = self.env.timeout(delay)
            if t.cancelled():
                fire.callbacks.append(lambda _: done_event.fail(asyncio.CancelledError()))
            elif t.exception() is not None:
                exc = t.exception()
                fire.callbacks.append(lambda _: done_event.fail(exc))
            else:
                result = t.result()
                fire.callbacks.append(lambda _: done_event.succeed(result))
            if self._wake is not None:
                self._wake.set()

        task.add_done_callback(finished)
        return done_event

    async def run(self, until: float, stop: Callable[[], bool] | None = None) -> None:
        """Process the environment's events before ``until`` (SimPy units), each when the loop's clock
        reaches it, then wait for the external tasks still running (their events, and what they set off
        before ``until``, are processed too). Leaves ``env.now`` at the last event processed.

        ``stop`` is asked before each event: when it returns True the external tasks still running are
        cancelled and awaited, and :class:`DrivingStopped` is raised.

        Raises:
            ValueError: ``until`` before the environment's ``now``.
            DrivingStopped: ``stop`` returned True.
        """
        env = self.env
        if until < env.now:
            raise ValueError(f"until={until!r} is before the environment's now ({env.now!r})")
        loop = asyncio.get_running_loop()
        self._origin_s = loop.time() - env.now * self.seconds_per_unit
        self._wake = asyncio.Event()
        try:
            while True:
                if stop is not None and stop():
                    await self._cancel_running()
                    raise DrivingStopped("stopped while driving the environment")
                t_next = env.peek()
                if t_next >= until or t_next == math.inf:
                    if not self._running:
                        return
                    t_next = math.inf  # only the tasks can bring new events now
                wait_s = (math.inf if t_next == math.inf
                          else self._origin_s + t_next * self.seconds_per_unit - loop.time())
                if wait_s > 0:
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), None if wait_s == math.inf else wait_s)
                        continue  # a task ended: its event may come first
                    except TimeoutError:
                        pass  # the loop's clock reached t_next
                env.step()
        finally:
            self._wake = None

    async def _cancel_running(self) -> None:
        tasks = list(self._running)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


__all__ = ["DrivingStopped", "SimPyOnLoop"]
