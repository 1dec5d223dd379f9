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

    def open_group(self, stack: contextlib.ExitStack, profile: EncoderProfile, seed: int, calls: int) -> Any:
        """Install what ``calls`` concurrent calls of one process need, once, until ``stack`` closes; the
        virtual-time record (None on the real clock)."""
        ...

    def relay(self, up_queue: LinkQueue, down_queue: LinkQueue, index: int) -> UdpRelay:
        """A relay (not started) for call ``index`` of a group opened with :meth:`open_group`."""
        ...


class RealClock:
    """The wall clock: a standard asyncio loop and real UDP sockets on 127.0.0.1.

    Args:
        lean: spend less CPU per call (for many concurrent calls, ``twin emulate --calls``): aiortc's
            per-sample audio level in numpy (:func:`emulators.virtual_time.audio_level_dbov`, the same
            integer), each receiver decoding and each sender encoding in the loop's thread instead of a
            decoder thread and the default executor (a gen1 frame decodes in 0.13 ms and encodes in 0.7
            ms; the thread hand-offs cost more). The profile of a lone real-time call (README, "Many
            calls") found these among the largest costs.
    """

    name = "real"

    def __init__(self, lean: bool = False) -> None:
        self.lean = lean

    def run(self, main: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """``asyncio.run(main())``."""
        return asyncio.run(main())

    def open_line(self, stack: contextlib.ExitStack, up_queue: LinkQueue, down_queue: LinkQueue,
                  profile: EncoderProfile, seed: int) -> tuple[UdpRelay, None]:
        """Keep aioice's candidates on 127.0.0.1; a :class:`emulators.relay.UdpRelay`. (``profile`` and
        ``seed`` are not needed: encoding takes its real time and scheduling is the host's.)"""
        self.open_group(stack, profile, seed, calls=1)
        return self.relay(up_queue, down_queue, 0), None

    def open_group(self, stack: contextlib.ExitStack, profile: EncoderProfile, seed: int,
                   calls: int) -> None:
        """What every call of a group needs, once: loopback-only candidates, and the lean patches."""
        stack.enter_context(loopback_only())
        if self.lean:
            stack.enter_context(virtual_time.lean_real_time())
            loop = asyncio.get_running_loop()
            loop.run_in_executor = _inline_executor(loop)  # encode in the loop's thread, no hand-off
            stack.callback(lambda: loop.__dict__.pop("run_in_executor", None))

    def relay(self, up_queue: LinkQueue, down_queue: LinkQueue, index: int) -> UdpRelay:
        """A relay for call ``index`` of the group (its own sockets)."""
        return UdpRelay(up_queue, down_queue)

    def failures(self) -> list[str]:
        """None: encoding runs inline in aiortc."""
        return []


def _inline_executor(loop: asyncio.AbstractEventLoop) -> Callable[..., asyncio.Future]:
    """``loop.run_in_executor`` that runs the function at once in the loop's thread (aiortc encodes
    through it: a gen1 frame takes 0.7 ms, less than the thread hand-off costs a busy process)."""
    def run_in_executor(executor, func, *args) -> asyncio.Future:
        future = loop.create_future()
        try:
            future.set_result(func(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            future.set_exception(exc)
        return future

    return run_in_executor


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
        record = self.open_group(stack, profile, seed, calls=1)
        return self.relay(up_queue, down_queue, 0), record

    def open_group(self, stack: contextlib.ExitStack, profile: EncoderProfile, seed: int,
                   calls: int) -> VirtualTimeRecord:
        """The running loop's coding delay and virtual network, aiortc made deterministic from ``seed``
        for ``calls`` calls (their peers' addresses: :func:`emulators.virtual_time.call_hosts`).

        Raises:
            RuntimeError: the running loop is not a :class:`~emulators.virtual_time.VirtualClockLoop`.
        """
        loop = asyncio.get_running_loop()
        if not isinstance(loop, VirtualClockLoop):
            raise RuntimeError("clock='virtual' needs a VirtualClockLoop (use run_emulated_call)")
        self._loop = loop
        encode_ms, decode_ms = coding_delay_ms(profile)
        loop.coding_delay = CodingDelay(encode_s=encode_ms / 1000.0, decode_s=decode_ms / 1000.0)
        loop.network = VirtualNetwork(loop)
        # Looked up on the module at each call, so that a test can swap it for a variant.
        if calls == 1:
            return stack.enter_context(virtual_time.deterministic_aiortc(loop, seed))
        return stack.enter_context(virtual_time.deterministic_aiortc(loop, seed, calls=calls))

    def relay(self, up_queue: LinkQueue, down_queue: LinkQueue, index: int) -> VirtualRelay:
        """A relay for call ``index`` of the group on the loop's virtual network."""
        return VirtualRelay(up_queue, down_queue, self._loop.network, index=index)

    def failures(self) -> list[str]:
        """Encoding failures of the call's coding worker, if it had one."""
        worker = getattr(self._loop, "coding_worker", None)
        return list(worker.failures) if worker is not None else []


BACKENDS: dict[str, Callable[..., ClockBackend]] = {"real": RealClock, "virtual": VirtualClock}
"""Backend of each clock of :data:`twin.vocabulary.CLOCKS`."""


def clock_backend(name: str, lean: bool = False) -> ClockBackend:
    """A new backend for the clock called ``name`` (one of :data:`twin.vocabulary.CLOCKS`); ``lean``: see
    :class:`RealClock` (virtual time is always lean).

    Raises:
        ValueError: unknown clock (a :class:`emulators.config.CallConfig` never has one).
    """
    try:
        factory = BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown clock {name!r}; expected one of {', '.join(BACKENDS)}") from None
    return factory(lean=lean) if name == "real" else factory()
