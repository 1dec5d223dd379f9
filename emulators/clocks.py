"""The clock an emulated call runs on, chosen once per call, as SimPy swaps ``Environment`` for
``RealtimeEnvironment``: the call itself (:class:`emulators.call.CallSession`) is the same code on both.

* :class:`RealClock` - the wall clock: a standard asyncio loop, real UDP sockets on 127.0.0.1 through
  :class:`emulators.relay.UdpRelay`, aioice kept on the loopback interface
  (:func:`emulators.relay.loopback_only`). Results vary with the host's load; it is the cross-check.
* :class:`VirtualClock` - virtual time (:mod:`emulators.virtual_time`): a
  :class:`~emulators.virtual_time.VirtualClockLoop`, an in-memory network routed through a
  :class:`~emulators.virtual_time.VirtualRelay` (the same LinkQueues), aiortc made deterministic
  (:func:`~emulators.virtual_time.deterministic_aiortc`) and the per-frame video coding delay of the
  profile (:func:`emulators.encoder_setup.coding_delay_ms`) added, since coding costs no virtual time.

A backend runs the call's coroutine on a fresh loop of its kind (:meth:`~ClockBackend.run`);
:meth:`~ClockBackend.open_line` installs, for the duration of the call, what the clock needs (on the
call's ``ExitStack``, after the encoder limits: the virtual clock's coding workers fork with them) and
returns the relay; :meth:`~ClockBackend.failures` reports what went wrong out of the call's sight.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from emulators import virtual_time
from emulators.encoder_setup import coding_delay_ms
from emulators.relay import UdpRelay, loopback_only
from emulators.virtual_time import CodingDelay, VirtualClockLoop, VirtualNetwork, VirtualRelay, VirtualTimeRecord
from twin.line import LinkQueue
from twin.profiles import EncoderProfile

T = TypeVar("T")


class ClockBackend(Protocol):
    """What a call needs from its clock (see the module docstring)."""

    name: str

    def run(self, main: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run ``main()`` to completion on a fresh event loop of this clock; close the loop after."""
        ...

    def open_line(self, stack: contextlib.ExitStack, up_queue: LinkQueue, down_queue: LinkQueue,
                  profile: EncoderProfile, seed: int) -> tuple[UdpRelay, VirtualTimeRecord | None]:
        """Install what this clock needs until ``stack`` closes; the relay between the peers through
        ``up_queue``/``down_queue`` (not started), and the virtual-time record (None on the real clock)."""
        ...

    def failures(self) -> list[str]:
        """Failures the call's own code could not see (encoders that aiortc's senders only logged)."""
        ...


class RealClock:
    """The wall clock: a standard asyncio loop and real UDP sockets on 127.0.0.1."""

    name = "real"

    def run(self, main: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """``asyncio.run(main())``."""
        return asyncio.run(main())

    def open_line(self, stack: contextlib.ExitStack, up_queue: LinkQueue, down_queue: LinkQueue,
                  profile: EncoderProfile, seed: int) -> tuple[UdpRelay, None]:
        """Keep aioice's candidates on 127.0.0.1; a :class:`emulators.relay.UdpRelay`. (``profile`` and
        ``seed`` are not needed: encoding takes its real time and scheduling is the host's.)"""
        stack.enter_context(loopback_only())
        return UdpRelay(up_queue, down_queue), None

    def failures(self) -> list[str]:
        """None: encoding runs inline in aiortc."""
        return []


class VirtualClock:
    """Virtual time: a :class:`~emulators.virtual_time.VirtualClockLoop` and an in-memory network.

    One instance per call (it remembers the call's loop, whose coding worker reports failures).
    """

    name = "virtual"

    def __init__(self) -> None:
        self._loop: VirtualClockLoop | None = None

    def run(self, main: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """``main()`` on a fresh :class:`~emulators.virtual_time.VirtualClockLoop`
        (:func:`emulators.virtual_time.run_virtual`)."""
        return virtual_time.run_virtual(main)

    def open_line(self, stack: contextlib.ExitStack, up_queue: LinkQueue, down_queue: LinkQueue,
                  profile: EncoderProfile, seed: int) -> tuple[UdpRelay, VirtualTimeRecord]:
        """Give the running loop the profile's coding delay and a virtual network, make aiortc
        deterministic from ``seed`` until ``stack`` closes; a :class:`~emulators.virtual_time.VirtualRelay`.

        Raises:
            RuntimeError: the running loop is not a :class:`~emulators.virtual_time.VirtualClockLoop`.
        """
        loop = asyncio.get_running_loop()
        if not isinstance(loop, VirtualClockLoop):
            raise RuntimeError("clock='virtual' needs a VirtualClockLoop (use run_emulated_call)")
        self._loop = loop
        encode_ms, decode_ms = coding_delay_ms(profile)
        loop.coding_delay = CodingDelay(encode_s=encode_ms / 1000.0, decode_s=decode_ms / 1000.0)
        network = VirtualNetwork(loop)
        loop.network = network
        # Looked up on the module at each call, so that a test can swap it for a variant.
        record = stack.enter_context(virtual_time.deterministic_aiortc(loop, seed))
        return VirtualRelay(up_queue, down_queue, network), record

    def failures(self) -> list[str]:
        """Encoding failures of the call's coding worker, if it had one."""
        worker = getattr(self._loop, "coding_worker", None)
        return list(worker.failures) if worker is not None else []


BACKENDS: dict[str, Callable[[], ClockBackend]] = {"real": RealClock, "virtual": VirtualClock}
"""Backend of each clock of :data:`twin.vocabulary.CLOCKS`."""


def clock_backend(name: str) -> ClockBackend:
    """A new backend for the clock called ``name`` (one of :data:`twin.vocabulary.CLOCKS`).

    Raises:
        ValueError: unknown clock (a :class:`emulators.config.CallConfig` never has one).
    """
    try:
        return BACKENDS[name]()
    except KeyError:
        raise ValueError(f"unknown clock {name!r}; expected one of {', '.join(BACKENDS)}") from None
