"""The model's queues: booths of a user kiosk and agent stations of a service, as small SimPy resources.

Both grant at once, without a SimPy event, when a unit is free and nobody waits (most citizens), and
otherwise hand the waiting citizen an event that succeeds with the unit, or with ``None`` when the
citizen's patience runs out first. They keep the semantics of ``simpy.Resource`` (booths: first come,
first served) and ``simpy.FilterStore`` (stations: a returned station goes to the first waiting citizen
it suits; a generation-1 kiosk only takes expert stations) at a fraction of the events: the twin spends
most of its time in these two queues.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from typing import Any

import simpy

#: An agent station unit: ("expert", site index, k) for the k-th station of an expert kiosk, ("vc", -1, k)
#: for a service's k-th standard videoconference room.
Unit = tuple[str, int, int]

#: An agent token: (unique id, station kind, site index or -1, unit).
Token = tuple[int, str, int, Unit]


class _Waiter:
    """A citizen waiting for a unit: its event, and for stations whether it takes expert stations only."""

    __slots__ = ("event", "experts_only")

    def __init__(self, event: simpy.Event, experts_only: bool = False) -> None:
        self.event = event
        self.experts_only = experts_only


def _give_up_after(env: simpy.Environment, queue: deque[_Waiter], waiter: _Waiter, patience_min: float) -> None:
    """After ``patience_min`` the waiter leaves the queue and its event succeeds with None (if it still
    waits)."""
    if math.isinf(patience_min):
        return

    def expire(_: Any) -> None:
        if not waiter.event.triggered:
            queue.remove(waiter)
            waiter.event.succeed(None)

    env.timeout(patience_min).callbacks.append(expire)


class BoothPool:
    """The booths of one user kiosk, first come, first served.

    Args:
        env: the replication's environment.
        capacity: booths (>= 1).
    """

    def __init__(self, env: simpy.Environment, capacity: int) -> None:
        self.env = env
        self.free = capacity
        self.queue: deque[_Waiter] = deque()

    def acquire(self, patience_min: float) -> simpy.Event | None:
        """None when a booth is taken at once; else an event that succeeds with True (a booth) or None
        (patience ran out)."""
        if self.free > 0 and not self.queue:
            self.free -= 1
            return None
        waiter = _Waiter(self.env.event())
        self.queue.append(waiter)
        _give_up_after(self.env, self.queue, waiter, patience_min)
        return waiter.event

    def release(self) -> None:
        """Free a booth: the first waiting citizen takes it."""
        if self.queue:
            self.queue.popleft().event.succeed(True)
        else:
            self.free += 1


class AgentPool:
    """The agent stations of one service.

    At a phase start :meth:`replace` swaps the station set: a station kept busy stays with its interview
    and counts towards the new set (a cut of agents lets running interviews finish but starts no new one
    above the new number); a station dropped while busy is retired when its interview ends.

    Args:
        env: the replication's environment.
        ids: a counter of token ids shared by every service of the replication.
    """

    def __init__(self, env: simpy.Environment, ids: Iterator[int]) -> None:
        self.env = env
        self._ids = ids
        self.idle: list[Token] = []
        self.queue: deque[_Waiter] = deque()
        self._live: dict[Unit, Token] = {}
        self._retired: set[int] = set()

    def acquire(self, experts_only: bool, patience_min: float) -> Token | simpy.Event:
        """A station at once when one suits and is idle (no earlier waiter can take an idle station: it
        would have been given one), else an event that succeeds with a token or None (patience ran out)."""
        for i, token in enumerate(self.idle):
            if not experts_only or token[1] == "expert":
                return self.idle.pop(i)
        waiter = _Waiter(self.env.event(), experts_only)
        self.queue.append(waiter)
        _give_up_after(self.env, self.queue, waiter, patience_min)
        return waiter.event

    def release(self, token: Token) -> None:
        """Give a station back after an interview: to the first waiting citizen it suits, else idle
        (a retired station is dropped)."""
        if token[0] in self._retired:
            self._retired.discard(token[0])
            return
        self._offer(token)

    def _offer(self, token: Token) -> None:
        for waiter in self.queue:
            if not waiter.experts_only or token[1] == "expert":
                self.queue.remove(waiter)
                waiter.event.succeed(token)
                return
        self.idle.append(token)

    def replace(self, wanted: tuple[tuple[str, int], ...]) -> None:
        """Make the station set ``wanted`` ((kind, site) per station, in order of preference)."""
        counts: dict[tuple[str, int], int] = {}
        units: list[Unit] = []
        for kind, site in wanted:
            k = counts.get((kind, site), 0)
            counts[(kind, site)] = k + 1
            units.append((kind, site, k))
        keep = set(units)
        idle_ids = {token[0] for token in self.idle}
        for unit, token in list(self._live.items()):
            if unit not in keep:
                del self._live[unit]
                if token[0] not in idle_ids:
                    self._retired.add(token[0])
        self.idle = [token for token in self.idle if token[3] in keep]
        for unit in units:
            if unit not in self._live:
                token = (next(self._ids), unit[0], unit[1], unit)
                self._live[unit] = token
                self._offer(token)

    @property
    def stations(self) -> int:
        """Stations in the current set (busy or idle)."""
        return len(self._live)


__all__ = ["AgentPool", "BoothPool", "Token", "Unit"]
