"""Emulated calls in virtual time: an asyncio loop whose clock jumps, an in-memory network, and aiortc
made deterministic (the idea of libwebrtc's simulated time, applied to aiortc 1.16 / aioice 0.13).

Why: on the wall clock an emulated call runs at one second per second, its results drift when the host
is busy (a late timer is a late packet), and two runs never agree. In virtual time nothing waits: the
loop runs whatever is ready, then sets its clock to the next scheduled timer. A call costs only the CPU
it needs (about 8x faster than real time for gen1), and the same seed gives the same call, event for
event, whatever the host load (docs/facts.md, "aiortc in virtual time").

The pieces, each owning one effect:

* :class:`VirtualClockLoop` - a ``SelectorEventLoop`` whose :meth:`~VirtualClockLoop.time` is a number
  it owns. Its selector polls real descriptors with a zero timeout (the self-pipe, so Ctrl-C still
  works; every 32nd iteration while callbacks are ready); when nothing is ready it sets the clock to
  the earliest timer instead of sleeping. When
  nothing at all is scheduled it raises :class:`VirtualTimeDeadlock` (after a short real-time grace
  for callbacks from other threads). ``run_in_executor`` runs the function inline (aiortc encodes in
  the default executor), and ``create_datagram_endpoint`` opens an in-memory endpoint on the loop's
  :class:`VirtualNetwork` (no sockets). Relies on asyncio internals: ``_scheduled`` (the timer heap)
  and the ``selector`` argument of ``SelectorEventLoop`` (Python 3.11-3.13).
* :class:`VirtualNetwork` - in-memory datagram endpoints ``(host, port)``; every datagram goes to a
  router (:class:`VirtualRelay`, which passes it through the same :class:`twin.line.LinkQueue` as the
  real-time :class:`emulators.relay.UdpRelay` and logs it the same way).
* :func:`deterministic_aiortc` - a context manager patching aiortc/aioice module attributes (restored on
  exit) so that the call reads no wall clock, starts no thread and draws no unseeded random number:

  - clocks: ``aiortc.clock.current_datetime/current_ms/current_ntp_time`` and the ``time`` module seen
    by ``mediastreams``, ``rtcrtpreceiver``, ``rtcrtpsender``, ``rtcsctptransport`` read
    :data:`VIRTUAL_EPOCH` + loop time (RTCP, ICE consent, STUN and SCTP *timers* already use the loop);
    the complete list of wall-clock reads in the installed sources, patched or harmless, is
    :data:`WALL_CLOCK_READS` (a test fails when a new one appears);
  - threads: each RTP receiver's decoder thread is replaced by an inline decoder (``threading`` and
    ``queue`` seen by ``rtcrtpreceiver``); encoding runs inline through ``run_in_executor``;
  - coding delay: virtual time makes coding free, so a per-frame encode and decode delay
    (:class:`CodingDelay`, from :data:`emulators.encoder_setup.CODING_DELAY_MS`) is added explicitly to
    video frames;
  - DTLS: a fixed-size RSA-2048 certificate (made once per process, fixed name, serial and validity)
    and ``ECDHE-RSA-AES128-GCM-SHA256`` over DTLS 1.2 only, so every handshake flight has the same size
    (stock aiortc's ECDSA signatures vary by 1-2 bytes); OpenSSL's retransmission timer runs on the real
    clock inside C, so :class:`_VirtualDtlsMixin` shows aiortc a timeout on the virtual clock and,
    when it expires, waits out OpenSSL's real timer before letting it retransmit (a lost or late
    handshake flight costs up to its real timeout, 1 s, 2 s..., of wall time, and nothing else).
    OpenSSL also retransmits by itself when a handshake read finds its real timer expired (a flight
    answered after more than a real second: a loaded host, several calls in one loop); a host without
    load never does, so such a retransmission is forestalled before the read and dropped, and its
    doubling of the timer taken off the next virtual timeout (measured: a 4 s call whose first six DTLS
    datagrams are each held 1.3 s of real time had 338 events instead of 345 before, the same call
    since; ``tests/test_virtual_time.py``);
  - randomness: SSRCs, RTP sequence numbers and timestamps, SCTP tags, ICE ufrag/pwd/foundations/
    tie-breaker, STUN transaction ids, RTCP and consent intervals, VP8 picture ids, UUIDs - all drawn
    from streams seeded by the call's seed (``random.Random`` objects, never the global state);
  - addresses: ``aioice.ice.get_host_addresses`` gives the first peer that gathers :data:`KIOSK_HOST`
    and the second :data:`AGENT_HOST`; no SDP is rewritten;
  - CPU and wall time only (the call is the same without them, event for event, as tests check):
    aiortc's per-sample audio level in numpy (:func:`audio_level_dbov`), the two peers' identical voice
    Opus-encoded once (:class:`SharedVoiceEncoding`), and VP8 and voice encoding done ahead of the call
    in two forked processes (:mod:`emulators.coding_worker`), so that a call uses a second core.

The real-time mode (real sockets through :class:`emulators.relay.UdpRelay`) stays the cross-check;
``docs/virtual-time-agreement.md`` compares the two.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import datetime as _dt
import math
import multiprocessing
import os
import random
import re
import secrets
import selectors
import threading
import time as _time
import uuid as _uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emulators.relay import UdpRelay

KIOSK_HOST = "10.0.0.1"
AGENT_HOST = "10.0.0.2"


CALL_INDEX: contextvars.ContextVar[int] = contextvars.ContextVar("twin_call_index", default=0)
"""Index of the call whose task is running (set by :class:`emulators.call.CallSession`): the peers of call
``i`` gather the addresses :func:`call_hosts` ``(i)``, kiosk first, whatever order the calls gather in."""


def call_hosts(index: int) -> tuple[str, str]:
    """The kiosk's and the agent's addresses of call ``index`` (0-based) of a group on one virtual network:
    ``10.0.<index>.1`` and ``10.0.<index>.2`` (call 0: :data:`KIOSK_HOST`, :data:`AGENT_HOST`)."""
    if not 0 <= index < 256:
        raise ValueError(f"call index {index} outside 0-255")
    return f"10.0.{index}.1", f"10.0.{index}.2"
FIRST_PORT = 50_000
VIRTUAL_EPOCH = _dt.datetime(2008, 1, 7, 9, 0, 0, tzinfo=_dt.UTC)
"""Wall-clock date that loop time 0 stands for (RTCP NTP timestamps, SCTP cookies, statistics)."""
DEADLOCK_GRACE_S = 0.5
"""Real seconds the loop waits for a descriptor when nothing is scheduled before declaring a deadlock."""
DTLS_MAX_TIMEOUT_S = 60.0
"""Longest DTLS retransmission timeout, s: RFC 6347 section 4.2.4.1 (OpenSSL's ``dtls1_double_timeout``
caps it there too)."""
DTLS_INITIAL_TIMEOUT_S = 1.0
"""First DTLS retransmission timeout, s: RFC 6347 section 4.2.4.1 (OpenSSL's default timer, restarted at
this value for every new flight)."""
DTLS_TIMER_MARGIN_S = 0.5
"""A DTLS handshake read that finds OpenSSL's real retransmission timer this close to expiring, s, lets it
expire and drops the retransmission first (:class:`_VirtualDtlsMixin`): a read takes far less, so only a
host that stalls the process for longer than this between the check and the read (an injected 1.5 s
sleep there did) can still let OpenSSL retransmit by itself. On a host without load the timer is never
this close when a read comes (flights are answered within milliseconds)."""


class VirtualTimeDeadlock(RuntimeError):
    """Nothing is ready, no timer is scheduled and no descriptor became readable: the program under the
    virtual clock waits for something that can never happen (e.g. a thread that was never started)."""


# --------------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------------


class _VirtualSelector(selectors.DefaultSelector):
    """Real selector polled with a zero timeout; instead of blocking, it advances the loop's clock."""

    loop: VirtualClockLoop | None = None
    POLL_EVERY = 32
    """While callbacks are ready, real descriptors (the self-pipe: signals, ``call_soon_threadsafe``) are
    polled on every 32nd loop iteration only; they carry nothing the call's events depend on."""

    _skipped = 0

    def select(self, timeout: float | None = None):
        if timeout == 0 and self.loop is not None and self._skipped < self.POLL_EVERY:
            self._skipped += 1
            return []
        self._skipped = 0
        events = super().select(0)
        if events or self.loop is None:
            return events
        if timeout is None:
            # Nothing ready and nothing scheduled: only another thread could still wake us.
            events = super().select(DEADLOCK_GRACE_S)
            if events:
                return events
            raise VirtualTimeDeadlock(
                f"virtual-time loop deadlocked at t={self.loop.time():.6f} s: no ready callback, no timer, "
                f"no readable descriptor after {DEADLOCK_GRACE_S} s of real time"
            )
        if timeout > 0:
            self.loop._advance_to_next_timer()
        return events


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An asyncio loop on a virtual clock (seconds, starting at ``start_s``).

    Attributes:
        network: the :class:`VirtualNetwork` that ``create_datagram_endpoint`` binds on (None: the loop
            refuses to open datagram endpoints, since real sockets would not follow its clock).
        coding_delay: per-frame delay added to video encodes run through ``run_in_executor``.
    """

    def __init__(self, start_s: float = 0.0) -> None:
        selector = _VirtualSelector()
        super().__init__(selector)
        self._virtual_now_s = float(start_s)
        selector.loop = self
        self.network: VirtualNetwork | None = None
        self.coding_delay = CodingDelay()
        self.coding_worker = None  # the call's emulators.coding_worker.CodingWorker (kept once closed: its failures)

    def time(self) -> float:
        """The virtual clock, s (it moves only when the loop jumps to its next timer)."""
        return self._virtual_now_s

    def _advance_to_next_timer(self) -> None:
        scheduled = self._scheduled  # asyncio internal: heap of TimerHandle, earliest first
        if scheduled:
            self._virtual_now_s = max(self._virtual_now_s, scheduled[0].when())

    def run_in_executor(self, executor, func, *args) -> asyncio.Future:
        """Run ``func(*args)`` now, in the loop's thread; the future resolves after the coding delay
        when ``func`` encodes a video frame (``args[0]`` an ``av.VideoFrame``), else at once."""
        future = self.create_future()
        try:
            result = func(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            future.set_exception(exc)
            return future
        delay_s = self.coding_delay.encode_s if args and _is_video_frame(args[0]) else 0.0
        if delay_s > 0:
            self.call_later(delay_s, _resolve, future, result)
        else:
            future.set_result(result)
        return future

    async def create_datagram_endpoint(self, protocol_factory, local_addr=None, remote_addr=None, **kwargs):
        """An in-memory endpoint on the loop's :class:`VirtualNetwork`, bound at ``local_addr``
        (``remote_addr`` and the socket options are ignored).

        Raises:
            RuntimeError: the loop has no network (real sockets would not follow its clock).
        """
        if self.network is None:
            raise RuntimeError("VirtualClockLoop has no VirtualNetwork: real sockets cannot run in virtual time")
        return self.network.create_endpoint(protocol_factory, local_addr)


def _resolve(future: asyncio.Future, result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _is_video_frame(obj: Any) -> bool:
    import av

    return isinstance(obj, av.VideoFrame)


def run_virtual(coro_factory: Callable[[], Any], start_s: float = 0.0) -> Any:
    """Run ``coro_factory()`` to completion on a fresh :class:`VirtualClockLoop`; close it after."""
    with asyncio.Runner(loop_factory=lambda: VirtualClockLoop(start_s)) as runner:
        return runner.run(coro_factory())


# --------------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------------


class _VirtualDatagramTransport(asyncio.DatagramTransport):
    def __init__(self, network: VirtualNetwork, address: tuple[str, int], protocol) -> None:
        super().__init__()
        self._network = network
        self._address = address
        self._protocol = protocol
        self._closing = False

    def get_extra_info(self, name, default=None):
        if name == "sockname":
            return self._address
        return default  # no "socket", "peername", "related_address"

    def sendto(self, data, addr=None) -> None:
        if self._closing or addr is None:
            return
        self._network.send(self._address, (addr[0], addr[1]), bytes(data))

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._network.unbind(self._address)
        self._network.loop.call_soon(self._protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def get_write_buffer_size(self) -> int:
        return 0


class VirtualNetwork:
    """In-memory UDP: endpoints bound to ``(host, port)`` (ports from :data:`FIRST_PORT` per host, in
    bind order), every datagram sent handed to ``router(src, dst, data)``; the router calls
    :meth:`deliver` when (and if) the datagram arrives."""

    def __init__(self, loop: asyncio.AbstractEventLoop, router: Callable[[tuple, tuple, bytes], None] | None = None):
        self.loop = loop
        self.router = router
        self._endpoints: dict[tuple[str, int], _VirtualDatagramTransport] = {}
        self._next_port: dict[str, int] = {}

    def create_endpoint(self, protocol_factory, local_addr) -> tuple[_VirtualDatagramTransport, Any]:
        """Bind a datagram endpoint at ``local_addr`` (``(host, port)``; no address: :data:`KIOSK_HOST`;
        port 0: the host's next port from :data:`FIRST_PORT`, in bind order); returns
        ``(transport, protocol)`` as asyncio does.

        Raises:
            OSError: the address is already bound.
        """
        host = local_addr[0] if local_addr else KIOSK_HOST
        port = local_addr[1] if local_addr and local_addr[1] else self._next_port.get(host, FIRST_PORT)
        if (host, port) in self._endpoints:
            raise OSError(f"virtual address {host}:{port} already in use")
        self._next_port[host] = max(self._next_port.get(host, FIRST_PORT), port + 1)
        protocol = protocol_factory()
        transport = _VirtualDatagramTransport(self, (host, port), protocol)
        self._endpoints[(host, port)] = transport
        protocol.connection_made(transport)
        return transport, protocol

    def unbind(self, address: tuple[str, int]) -> None:
        """Forget the endpoint at ``address`` (datagrams to it are lost from now on)."""
        self._endpoints.pop(address, None)

    def send(self, src: tuple[str, int], dst: tuple[str, int], data: bytes) -> None:
        """Hand a datagram to the router (the relay), or deliver it at once when there is none."""
        if self.router is None:
            self.deliver(src, dst, data)
        else:
            self.router(src, dst, data)

    def deliver(self, src: tuple[str, int], dst: tuple[str, int], data: bytes) -> bool:
        """Hand ``data`` to the endpoint bound at ``dst``; False if none is bound (datagram lost)."""
        transport = self._endpoints.get(dst)
        if transport is None or transport.is_closing():
            return False
        transport._protocol.datagram_received(data, src)
        return True


class VirtualRelay(UdpRelay):
    """The emulated line between :data:`KIOSK_HOST` and :data:`AGENT_HOST` on a :class:`VirtualNetwork`.

    Same LinkQueues, same per-packet log and summaries as :class:`emulators.relay.UdpRelay`; datagrams
    come from the network's router hook instead of sockets, and are delivered exactly at the time the
    LinkQueue returns (no timer advance: the virtual clock is exact). The SDP passes unchanged (the
    peers' own addresses are routable on the virtual network); the relay only learns the addresses.
    """

    def __init__(self, up_queue, down_queue, network: VirtualNetwork, index: int = 0) -> None:
        super().__init__(up_queue, down_queue, timer_advance_s=0.0)
        self.network = network
        self.hosts = call_hosts(index)
        routes = getattr(network, "routes", None)
        if routes is None:  # the first relay on this network: it routes, and hands other calls' datagrams on
            network.routes = routes = {}
            network.router = lambda src, dst, data: routes.get(src[0], self._foreign)(src, dst, data)
        routes[self.hosts[0]] = routes[self.hosts[1]] = self._route

    async def start(self, origin_s: float | None = None) -> None:
        """Start the relay clock at ``origin_s`` (default: now on the loop clock); no socket to open."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self.origin_s = loop.time() if origin_s is None else origin_s

    def sockets(self) -> list[tuple[str, int]]:
        """An empty list: the virtual relay listens on no socket."""
        return []

    def close(self) -> None:
        """Stop forwarding; deliveries still in flight are discarded when their time comes."""
        self.closed = True

    def sdp_for_agent(self, kiosk_sdp: str) -> str:
        """The kiosk's SDP unchanged (its address is routable on the virtual network)."""
        return kiosk_sdp

    def sdp_for_kiosk(self, agent_sdp: str) -> str:
        """The agent's SDP unchanged (its address is routable on the virtual network)."""
        return agent_sdp

    def _foreign(self, src: tuple[str, int], dst: tuple[str, int], data: bytes) -> None:
        self.logs["up"].foreign_packets += 1

    def _route(self, src: tuple[str, int], dst: tuple[str, int], data: bytes) -> None:
        if self.closed:
            return
        kiosk, agent = self.hosts
        if src[0] == kiosk and dst[0] == agent:
            direction = "up"
            self.kiosk_addr, self.agent_addr = self.kiosk_addr or src, self.agent_addr or dst
        elif src[0] == agent and dst[0] == kiosk:
            direction = "down"
            self.kiosk_addr, self.agent_addr = self.kiosk_addr or dst, self.agent_addr or src
        else:
            self.logs["up" if src[0] == kiosk else "down"].foreign_packets += 1
            return
        self._forward(direction, data, src, dst)

    def _send_out(self, data: bytes, src, dst) -> bool:
        return self.network.deliver(src, dst, data)


# --------------------------------------------------------------------------------------------------
# aiortc / aioice made deterministic
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CodingDelay:
    """Per-frame video processing delay added in virtual time (seconds): encode before the frame is
    packetised, decode before the frame reaches the application. Audio coding is taken as free."""

    encode_s: float = 0.0
    decode_s: float = 0.0


@dataclass(frozen=True)
class VirtualTimeRecord:
    """What :func:`deterministic_aiortc` set up for a call, for the record.

    Attributes:
        epoch: ISO 8601 date that loop time 0 stands for (:data:`VIRTUAL_EPOCH`).
        hosts: the kiosk's and the agent's addresses on the virtual network.
        dtls_cipher: the one DTLS cipher offered (:data:`DTLS_CIPHER`).
        encode_ms, decode_ms: per-frame video coding delay added, ms (:class:`CodingDelay`).
    """

    epoch: str
    hosts: tuple[str, ...]
    dtls_cipher: str
    encode_ms: float
    decode_ms: float

    def to_dict(self) -> dict:
        """JSON-ready dict; the coding delays nested under ``coding_delay_ms`` as ``encode``/``decode``."""
        return {"epoch": self.epoch, "hosts": list(self.hosts), "dtls_cipher": self.dtls_cipher,
                "coding_delay_ms": {"encode": self.encode_ms, "decode": self.decode_ms}}


class _VirtualTimeModule:
    """Stands for the ``time`` module inside a patched aiortc module: wall-clock reads follow the loop."""

    def __init__(self, now_s: Callable[[], float]) -> None:
        self._now_s = now_s
        self._epoch_s = VIRTUAL_EPOCH.timestamp()

    def time(self) -> float:
        return self._epoch_s + self._now_s()

    def monotonic(self) -> float:
        return self._now_s()

    perf_counter = monotonic

    def __getattr__(self, name: str) -> Any:
        return getattr(_time, name)


class _Proxy:
    """A module stand-in: the given attributes, everything else from ``module``."""

    def __init__(self, module: Any, **attrs: Any) -> None:
        self.__dict__["_module"] = module
        self.__dict__.update(attrs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_module"], name)


class _InlineDecoderQueue:
    """Stands for a receiver's decoder ``queue.Queue``: ``put`` decodes at once (see _InlineThread)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.decoder: _InlineDecoder | None = None
        self.pending: list = []

    def put(self, task, block: bool = True, timeout: float | None = None) -> None:
        if self.decoder is None:
            self.pending.append(task)
        else:
            self.decoder.handle(task)

    put_nowait = put


class _InlineDecoder:
    """aiortc's ``decoder_worker`` (rtcrtpreceiver.py) run inline, frames delivered after the decode
    delay (video) in order."""

    def __init__(self, loop, output_q: asyncio.Queue, decode_error: threading.Event, delay_s: float) -> None:
        self.loop = loop
        self.output_q = output_q
        self.decode_error = decode_error
        self.delay_s = delay_s
        self.codec_name = None
        self.decoder = None
        self.ended = False

    def _emit(self, item, video: bool) -> None:
        if video and self.delay_s > 0:
            self.loop.call_later(self.delay_s, self.output_q.put_nowait, item)
        else:
            self.output_q.put_nowait(item)

    def handle(self, task) -> None:
        import av
        from aiortc import rtcrtpreceiver

        if self.ended:
            return
        if task is None:
            self.ended = True
            self._emit(None, video=self.codec_name is not None and self.codec_name != "opus")
            return
        codec, encoded_frame = task
        if codec.name != self.codec_name:
            self.decoder = rtcrtpreceiver.get_decoder(codec)
            self.codec_name = codec.name
        try:
            frames = self.decoder.decode(encoded_frame)
        except av.FFmpegError as exc:
            rtcrtpreceiver.logger.warning("inline decoder failed to decode %s frame: %s", codec.name, exc)
            self.decode_error.set()
            return
        video = codec.mimeType.lower().startswith("video/")
        for frame in frames:
            self._emit(frame, video)


class _InlineThread:
    """Stands for ``threading.Thread`` in rtcrtpreceiver: ``start`` attaches an :class:`_InlineDecoder`
    to the receiver's queue instead of starting ``decoder_worker`` in a thread."""

    def __init__(self, target=None, name=None, args=(), kwargs=None, daemon=None) -> None:
        self.name = name
        self.args = args
        self._alive = False

    def start(self) -> None:
        loop, input_q, output_q, decode_error = self.args
        delay_s = getattr(loop, "coding_delay", CodingDelay()).decode_s
        input_q.decoder = _InlineDecoder(loop, output_q, decode_error, delay_s)
        pending, input_q.pending = input_q.pending, []
        for task in pending:
            input_q.decoder.handle(task)
        self._alive = True

    def join(self, timeout: float | None = None) -> None:
        self._alive = False

    def is_alive(self) -> bool:
        return self._alive


_certificate_lock = threading.Lock()
_certificate_future: concurrent.futures.Future | None = None


def prepare_certificate() -> None:
    """Start making :func:`fixed_size_certificate`'s key in a background thread (RSA key generation
    releases the GIL), so that it overlaps with imports instead of delaying the first call. Idempotent.

    The thread imports nothing (``cryptography`` is imported here, in the caller's thread: an import
    interrupted by Ctrl-C while another thread imports could deadlock) and is not a daemon (an
    interpreter exiting under it while it is inside OpenSSL could abort), so an exit waits for the key,
    a fraction of a second."""
    global _certificate_future
    from cryptography import x509  # noqa: F401 - imported before the thread starts, see above
    from cryptography.hazmat.primitives import hashes  # noqa: F401
    from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: F401

    with _certificate_lock:
        if _certificate_future is None:
            future: concurrent.futures.Future = concurrent.futures.Future()

            def make() -> None:
                try:
                    future.set_result(_make_fixed_size_certificate())
                except BaseException as exc:  # noqa: BLE001 - re-raised by fixed_size_certificate
                    future.set_exception(exc)

            _certificate_future = future
            threading.Thread(target=make, name="twin-dtls-key", daemon=False).start()


def _forget_unfinished_certificate() -> None:
    """In a forked child the key thread does not exist: drop its future unless it already finished."""
    global _certificate_future, _certificate_lock
    _certificate_lock = threading.Lock()
    if _certificate_future is not None and not _certificate_future.done():
        _certificate_future = None


os.register_at_fork(after_in_child=_forget_unfinished_certificate)


def fixed_size_certificate() -> tuple[Any, Any]:
    """An RSA-2048 key and a self-signed certificate of fixed encoded size (fixed name, serial and
    validity, so only the key's bits vary between processes; made once per process, 0.05-0.3 s, in the
    background if :func:`prepare_certificate` was called)."""
    prepare_certificate()
    assert _certificate_future is not None
    return _certificate_future.result()


def _make_fixed_size_certificate() -> tuple[Any, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "twin-emulated-peer")])
    not_before = _dt.datetime(2000, 1, 1, tzinfo=_dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(0x5EED)
        .not_valid_before(not_before)
        .not_valid_after(not_before + _dt.timedelta(days=365 * 40))
        .sign(key, hashes.SHA256())
    )
    return key, cert


DTLS_CIPHER = b"ECDHE-RSA-AES128-GCM-SHA256"
DTLS1_2_VERSION = 0xFEFD  # OpenSSL's DTLS1_2_VERSION (not exported by pyOpenSSL)


class _VirtualDtlsMixin:
    """OpenSSL's DTLS retransmission timer seen on the virtual clock (mixed into pyOpenSSL's ``Connection``
    by :func:`_make_dtls_connection_class`, which sets ``_v_ssl``, the ``OpenSSL.SSL`` module, and
    ``_v_now_s``, the virtual clock).

    OpenSSL (re)starts its timer, on the real clock, whenever it writes a handshake flight, new or
    retransmitted. aiortc takes every datagram OpenSSL writes out of the BIO (``bio_read``) and then
    asks ``DTLSv1_get_timeout``; so when ``bio_read`` has returned data since the last question and
    the timer runs, the timer was restarted, and a virtual deadline is set at the timer's nominal
    duration from now (1 s, 2 s, 4 s... up to 60 s: OpenSSL's remaining time, read within
    milliseconds of the restart, rounded up to a power of two). Restarts are thus recognised from the
    protocol's events alone, never from how much real time passed between them. aiortc waits on the
    virtual clock until the deadline; when it then calls ``DTLSv1_handle_timeout``, the real timer
    is waited out (``time.sleep``) so that OpenSSL retransmits, deterministically at the virtual
    deadline.

    OpenSSL also retransmits by itself when a handshake read (``do_handshake``, ``recv``) finds its
    real timer expired: on a loaded host a flight answered after more than a real second. A host
    with no load never does so (its reads follow the writes within milliseconds), so before each
    read a timer that has expired, or is within :data:`DTLS_TIMER_MARGIN_S` of it, is made to fire
    here and what it retransmits is dropped (output pending before it is kept, in order). That
    retransmission doubled OpenSSL's timer; the doublings are counted and taken off the nominal
    duration of the next restart, until OpenSSL's timer is seen stopped or fresh (1 s or less).
    """

    _v_ssl: Any
    _v_now_s: Callable[[], float]
    _v_deadline_s: float | None = None
    _v_restarted: bool = True
    _v_extra_doublings: int = 0
    _v_stash: bytes = b""
    dropped_retransmissions: int = 0

    def bio_read(self, bufsiz):
        if self._v_stash:
            data, self._v_stash = self._v_stash[:bufsiz], self._v_stash[bufsiz:]
            if len(data) < bufsiz and not self._v_stash:
                data += self._bio_drain(bufsiz - len(data))
        else:
            data = super().bio_read(bufsiz)
        if data:
            self._v_restarted = True
        return data

    def _bio_drain(self, bufsiz: int = 1 << 16) -> bytes:
        """Everything OpenSSL has written to the BIO (up to ``bufsiz`` bytes), b"" if nothing."""
        out = b""
        while len(out) < bufsiz:
            try:
                out += self._v_ssl.Connection.bio_read(self, bufsiz - len(out))
            except self._v_ssl.WantReadError:
                break
        return out

    def _forestall_expiry(self) -> None:
        real = super().DTLSv1_get_timeout()
        if real is None:
            self._v_extra_doublings = 0
            return
        if real > DTLS_TIMER_MARGIN_S:
            return
        _time.sleep(real + 0.002)  # past it for sure: a read never races the expiry
        self._v_stash += self._bio_drain()
        super().DTLSv1_handle_timeout()
        self._bio_drain()  # the retransmission a host without load would not make
        self.dropped_retransmissions += 1
        self._v_extra_doublings += 1

    def _after_read(self, before: bytes) -> None:
        real = super().DTLSv1_get_timeout()
        if real is None or (self._v_stash != before and real <= DTLS_INITIAL_TIMEOUT_S):
            self._v_extra_doublings = 0  # stopped, or restarted afresh for a new flight

    def _read(self, method, *args):
        self._forestall_expiry()
        self._v_stash += self._bio_drain()
        before = self._v_stash
        try:
            return method(*args)
        finally:
            self._v_stash += self._bio_drain()
            self._after_read(before)

    def do_handshake(self):
        return self._read(super().do_handshake)

    def recv(self, bufsiz, flags=None):
        return self._read(super().recv, bufsiz, flags)

    def DTLSv1_get_timeout(self):
        real = super().DTLSv1_get_timeout()
        if real is None:
            self._v_deadline_s = None
            self._v_extra_doublings = 0
            return None
        if self._v_deadline_s is None or self._v_restarted:
            exponent = math.ceil(math.log2(max(real, 1e-3)) - 1e-9) - self._v_extra_doublings
            nominal = min(DTLS_MAX_TIMEOUT_S, 2.0 ** max(0, exponent))
            self._v_deadline_s = self._v_now_s() + nominal
            self._v_restarted = False
        return max(0.0, self._v_deadline_s - self._v_now_s())

    def DTLSv1_handle_timeout(self):
        real = super().DTLSv1_get_timeout()
        if real is not None and real > 0:
            _time.sleep(real + 0.002)
        return super().DTLSv1_handle_timeout()


def _make_dtls_connection_class(ssl_module, now_s: Callable[[], float]):
    """pyOpenSSL's ``Connection`` with :class:`_VirtualDtlsMixin` on the virtual clock ``now_s``."""
    return type("_VirtualDtlsConnection", (_VirtualDtlsMixin, ssl_module.Connection),
                {"_v_ssl": ssl_module, "_v_now_s": staticmethod(now_s)})


def audio_level_dbov(frame) -> int:
    """``aiortc.rtp.compute_audio_level_dbov`` (RFC 6465 Appendix A) with the sum of squares in numpy:
    the same exact integer sum, so the same result, 20x faster (it runs for every audio frame)."""
    samples = np.frombuffer(bytes(frame.planes[0]), dtype=np.int16).astype(np.int64)
    total = int(np.dot(samples, samples))
    rms = math.sqrt(total / (frame.samples * 32767 * 32767))
    if rms > 0:
        return round(min(max(20 * math.log10(rms), -127), 0))
    return -127


SHARED_VOICE_FRAMES_KEPT = 4096
"""Encoded voice frames :class:`SharedVoiceEncoding` keeps for encoders that come later (4 minutes of
60 ms frames: the calls of a group start within a second of one another)."""


class SharedVoiceEncoding:
    """Both peers of an emulated call send the same synthetic voice (:func:`emulators.media.voice_samples`)
    through Opus encoders configured alike (one profile per call), and libopus is deterministic: the same
    input frames in the same order give the same packets. So, in virtual time, each 48 kHz mono frame
    of the voice is encoded once and the packets are handed to both senders, halving the call's Opus
    CPU; virtual time does not count coding CPU, so the call is unchanged, event for event (a test
    compares calls with and without it).

    Each aiortc ``OpusEncoder`` is followed by ``(next_index, frames fed to its own libopus)``. A frame
    is shared only if it is voice frame ``next_index`` (same pts, samples and format); the encoder that
    meets a frame first encodes it for real, after feeding its libopus the frames it skipped (they are
    regenerated from the voice, nothing is stored), and leaves the packets for the other. Any other
    input ends sharing for that encoder, after the same catch-up. With a ``worker``
    (:class:`emulators.coding_worker.CodingWorker`) the shared packets come from an encoder in that
    process fed the voice from frame 0, many frames ahead, and no encoder of the call runs libopus until
    it leaves the voice. Patched in by :func:`deterministic_aiortc`; the real-time mode keeps both
    encoders busy, as on real kiosks.
    """

    def __init__(self, original_encode: Callable, worker=None) -> None:
        self.original_encode = original_encode
        self.worker = worker  # an emulators.coding_worker.CodingWorker encoding the voice ahead, or None
        self.results: dict[tuple, tuple[list[bytes], int | None]] = {}
        self.state: dict[int, list] = {}  # id(encoder) -> [next_index, frames fed to libopus, shared?, encoder]
        self.encoded = 0
        self.shared = 0

    def encode(self, encoder, frame, force_keyframe: bool = False):
        """Stands for ``OpusEncoder.encode(encoder, frame, force_keyframe)``: aiortc's
        ``(payloads, timestamp)`` for ``frame``, the shared packets when ``frame`` is the voice frame this
        encoder expects, else its own libopus after catching up (see the class docstring).
        """
        from emulators.media import AUDIO_SAMPLE_RATE_HZ, voice_samples

        st = self.state.get(id(encoder))
        if st is None or st[3] is not encoder:
            st = self.state[id(encoder)] = [0, 0, True, encoder]
        index, size = st[0], frame.samples
        if st[2] and (
            frame.pts == index * size and frame.sample_rate == AUDIO_SAMPLE_RATE_HZ
            and frame.format.name == "s16" and frame.layout.name == "mono"
            and np.array_equal(frame.to_ndarray()[0], voice_samples(index * size, size))
        ):
            key = (encoder.codec.bit_rate, encoder.codec.layout.name, size, index)
            result = self.results.get(key)  # kept for every encoder of the group (not only two)
            if result is None:
                if self.worker is not None:  # encoded ahead in the worker, by an encoder fed voice from 0
                    result = self.worker.voice(size, index, key[:2])
                else:
                    self._catch_up(encoder, st, index, size)
                    result = self.original_encode(encoder, frame, force_keyframe)
                    st[1] = index + 1
                self.results[key] = result
                while len(self.results) > SHARED_VOICE_FRAMES_KEPT:
                    self.results.pop(next(iter(self.results)))
                self.encoded += 1
            else:
                self.shared += 1
            st[0] = index + 1
            return list(result[0]), result[1]
        if st[2]:
            st[2] = False
            self._catch_up(encoder, st, index, size)
        return self.original_encode(encoder, frame, force_keyframe)

    def _catch_up(self, encoder, st: list, index: int, size: int) -> None:
        """Feed ``encoder``'s own libopus the voice frames it skipped, ``st[1] .. index - 1``."""
        from emulators.media import voice_frame

        for k in range(st[1], index):
            self.original_encode(encoder, voice_frame(k, size))
            self.encoded += 1
        st[1] = index


class _Patches:
    """Set module attributes, remember the originals, restore them in reverse order."""

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any]] = []

    def set(self, obj: Any, name: str, value: Any) -> None:
        self._saved.append((obj, name, getattr(obj, name)))
        setattr(obj, name, value)

    def restore(self) -> None:
        while self._saved:
            obj, name, value = self._saved.pop()
            setattr(obj, name, value)


@contextlib.contextmanager
def deterministic_aiortc(loop: VirtualClockLoop, seed: int, share_voice_encoding: bool = True,
                         offload_encoding: bool = True, calls: int = 1) -> Iterator[VirtualTimeRecord]:
    """Patch aiortc/aioice for a call on ``loop`` (see the module docstring); restore on exit.

    ``share_voice_encoding``: encode the peers' identical voice once (:class:`SharedVoiceEncoding`);
    ``offload_encoding``: encode VP8 frames one ahead, and the shared voice many frames ahead, in a
    forked process (:mod:`emulators.coding_worker`; where ``fork`` exists). Both change the CPU and wall
    time a call costs, nothing else.

    Process-wide while active (module attributes): one virtual-time call per process at a time. Yields a
    :class:`VirtualTimeRecord` of what was set up, for the record.
    """
    patches = _Patches()
    worker = None
    try:
        _patch_clocks(patches, loop.time)
        _patch_threads(patches)
        _patch_randomness(patches, seed)
        worker = _patch_coding(patches, loop, share_voice_encoding, offload_encoding)
        _patch_host_addresses(patches, calls)
        _patch_dtls(patches, loop.time)
        yield VirtualTimeRecord(epoch=VIRTUAL_EPOCH.isoformat(), hosts=(KIOSK_HOST, AGENT_HOST),
                                dtls_cipher=DTLS_CIPHER.decode(), encode_ms=loop.coding_delay.encode_s * 1000.0,
                                decode_ms=loop.coding_delay.decode_s * 1000.0)
    finally:
        patches.restore()
        if worker is not None:
            worker.close()


@contextlib.contextmanager
def lean_real_time() -> Iterator[None]:
    """For many real-time calls in one process: aiortc's audio level in numpy (:func:`audio_level_dbov`,
    the same integer) and each receiver decoding inline in the loop's thread (:class:`_InlineThread`
    without a coding delay) instead of a decoder thread. Restored on exit."""
    import queue as _queue

    import aiortc.rtcrtpreceiver
    import aiortc.rtp

    patches = _Patches()
    try:
        patches.set(aiortc.rtp, "compute_audio_level_dbov", audio_level_dbov)
        patches.set(aiortc.rtcrtpreceiver, "threading", _Proxy(threading, Thread=_InlineThread))
        patches.set(aiortc.rtcrtpreceiver, "queue", _Proxy(_queue, Queue=_InlineDecoderQueue))
        yield
    finally:
        patches.restore()


def _patch_clocks(patches: _Patches, now_s: Callable[[], float]) -> None:
    """aiortc's clock functions and the ``time`` module of :data:`TIME_PATCHED_MODULES` read
    :data:`VIRTUAL_EPOCH` + ``now_s()``."""
    import aiortc.clock

    def current_datetime() -> _dt.datetime:
        return VIRTUAL_EPOCH + _dt.timedelta(seconds=now_s())

    def current_ms() -> int:
        return int((current_datetime() - aiortc.clock.NTP_EPOCH).total_seconds() * 1000)

    def current_ntp_time() -> int:
        return aiortc.clock.datetime_to_ntp(current_datetime())

    patches.set(aiortc.clock, "current_datetime", current_datetime)
    patches.set(aiortc.clock, "current_ms", current_ms)
    patches.set(aiortc.clock, "current_ntp_time", current_ntp_time)
    vtime = _VirtualTimeModule(now_s)
    for module in _time_patched_modules():
        patches.set(module, "time", vtime)


def _patch_threads(patches: _Patches) -> None:
    """Each RTP receiver decodes inline (:class:`_InlineThread`, :class:`_InlineDecoderQueue`)."""
    import queue as _queue

    import aiortc.rtcrtpreceiver

    patches.set(aiortc.rtcrtpreceiver, "threading", _Proxy(threading, Thread=_InlineThread))
    patches.set(aiortc.rtcrtpreceiver, "queue", _Proxy(_queue, Queue=_InlineDecoderQueue))


def _patch_randomness(patches: _Patches, seed: int) -> None:
    """Every random draw of aiortc/aioice from its own ``random.Random`` stream, all seeded by ``seed``
    (the streams are drawn in a fixed order: the same seed, the same streams)."""
    import aioice.ice
    import aioice.stun
    import aioice.turn
    import aiortc.codecs.vpx
    import aiortc.mediastreams
    import aiortc.rtcpeerconnection
    import aiortc.rtcrtpreceiver
    import aiortc.rtcrtpsender
    import aiortc.rtcsctptransport
    import aiortc.rtp

    streams = random.Random(f"twin-virtual-time/{seed}")

    def stream() -> random.Random:
        return random.Random(streams.getrandbits(64))

    rng_utils = stream()

    def random16() -> int:
        return rng_utils.getrandbits(16)

    def random32() -> int:
        return rng_utils.getrandbits(32)

    patches.set(aiortc.rtcrtpsender, "random16", random16)
    patches.set(aiortc.rtcrtpsender, "random32", random32)
    patches.set(aiortc.rtcsctptransport, "random32", random32)
    for module in (aiortc.rtcrtpreceiver, aiortc.rtcrtpsender, aiortc.codecs.vpx, aioice.ice):
        patches.set(module, "random", stream())
    rng_bytes = stream()
    os_proxy = _Proxy(os, urandom=lambda n: rng_bytes.randbytes(n))
    patches.set(aiortc.rtcsctptransport, "os", os_proxy)
    patches.set(aiortc.rtp, "os", os_proxy)
    rng_uuid = stream()
    uuid_proxy = _Proxy(_uuid, uuid4=lambda: _uuid.UUID(int=rng_uuid.getrandbits(128), version=4))
    for module in (aiortc.mediastreams, aiortc.rtcrtpsender, aiortc.rtcpeerconnection):
        patches.set(module, "uuid", uuid_proxy)
    rng_ice = stream()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    patches.set(aioice.ice, "random_string", lambda n: "".join(rng_ice.choice(alphabet) for _ in range(n)))
    patches.set(aioice.ice, "secrets", _Proxy(secrets, randbits=rng_ice.getrandbits))
    rng_stun = stream()
    patches.set(aioice.stun, "random_transaction_id", lambda: rng_stun.randbytes(12))
    patches.set(aioice.turn, "random_transaction_id", lambda: rng_stun.randbytes(12))


def _patch_coding(patches: _Patches, loop: VirtualClockLoop, share_voice_encoding: bool,
                  offload_encoding: bool):
    """CPU and wall time only: audio level in numpy; VP8 frames and the voice encoded ahead in forked
    workers (where allowed); the peers' identical voice encoded once. Returns the
    :class:`emulators.coding_worker.CodingWorker` started (also ``loop.coding_worker``), or None."""
    import aiortc.codecs.opus
    import aiortc.codecs.vpx
    import aiortc.rtp

    # aiortc's audio level (RFC 6465) loops over samples in Python; the same integer in numpy
    patches.set(aiortc.rtp, "compute_audio_level_dbov", audio_level_dbov)
    opus_module = aiortc.codecs.opus
    vp8 = aiortc.codecs.vpx.Vp8Encoder
    worker = None
    if (offload_encoding and "fork" in multiprocessing.get_all_start_methods()
            and not multiprocessing.current_process().daemon):  # a daemonic process may not fork workers
        from emulators.coding_worker import CodingWorker

        worker = CodingWorker(vp8.encode, vp8, opus_module.OpusEncoder.encode, opus_module.OpusEncoder)
        try:
            patches.set(vp8, "encode",
                        lambda self, frame, force_keyframe=False: worker.encode(self, frame, force_keyframe))
        except BaseException:
            worker.close()
            raise
        loop.coding_worker = worker
    if share_voice_encoding:
        voice = SharedVoiceEncoding(opus_module.OpusEncoder.encode, worker)
        patches.set(opus_module.OpusEncoder, "encode",
                    lambda self, frame, force_keyframe=False: voice.encode(self, frame, force_keyframe))
    return worker


def _patch_host_addresses(patches: _Patches, calls: int = 1) -> None:
    """Peers gather, in order, the kiosk's then the agent's address of call 0, 1, ... (:func:`call_hosts`):
    the first peer that gathers candidates is :data:`KIOSK_HOST`, the second :data:`AGENT_HOST`."""
    import aioice.ice

    gathered: dict[int, int] = {}

    def host_addresses(use_ipv4: bool = True, use_ipv6: bool = True) -> list[str]:
        index = CALL_INDEX.get()
        k = gathered.get(index, 0)
        if k >= 2 or index >= calls:
            raise RuntimeError(f"a third peer of call {index} gathered candidates on the virtual network")
        gathered[index] = k + 1
        return [call_hosts(index)[k]]

    patches.set(aioice.ice, "get_host_addresses", host_addresses)


def _patch_dtls(patches: _Patches, now_s: Callable[[], float]) -> None:
    """A fixed-size certificate, one DTLS 1.2 cipher, OpenSSL's retransmission timer on the virtual clock."""
    import aiortc.rtcdtlstransport as dtls
    from OpenSSL import SSL

    key, cert = fixed_size_certificate()
    original_context = dtls.RTCCertificate._create_ssl_context

    def generate_certificate(cls):
        return cls(key=key, cert=cert)

    def create_ssl_context(self, srtp_profiles):
        ctx = original_context(self, srtp_profiles)
        ctx.set_cipher_list(DTLS_CIPHER)
        ctx.set_max_proto_version(DTLS1_2_VERSION)
        return ctx

    patches.set(dtls.RTCCertificate, "generateCertificate", classmethod(generate_certificate))
    patches.set(dtls.RTCCertificate, "_create_ssl_context", create_ssl_context)
    patches.set(dtls, "SSL", _Proxy(SSL, Connection=_make_dtls_connection_class(SSL, now_s)))


TIME_PATCHED_MODULES = ("mediastreams", "rtcrtpreceiver", "rtcrtpsender", "rtcsctptransport")
"""aiortc modules whose ``time`` attribute :func:`deterministic_aiortc` replaces by the loop clock."""


def _time_patched_modules() -> list:
    import importlib

    return [importlib.import_module(f"aiortc.{name}") for name in TIME_PATCHED_MODULES]


# --------------------------------------------------------------------------------------------------
# Wall-clock reads in the installed aiortc / aioice (guarded by a test)
# --------------------------------------------------------------------------------------------------

WALL_CLOCK_PATTERN = re.compile(
    r"\btime\.(?:time|monotonic|perf_counter|time_ns|monotonic_ns|perf_counter_ns)\s*\("
    r"|\bdatetime\.(?:now|utcnow|today)\s*\("
    r"|\bdate\.today\s*\("
    r"|\bfrom\s+(?:time|datetime)\s+import\b"  # a bare now()/time() would escape the patterns above
)

WALL_CLOCK_READS: dict[tuple[str, str], tuple[int, str]] = {
    ("aiortc/clock.py", "datetime.now("): (1, "patched: current_datetime/current_ms/current_ntp_time"),
    ("aiortc/mediastreams.py", "time.time("): (4, "patched: module time -> loop clock (track pacing)"),
    ("aiortc/rtcrtpreceiver.py", "time.time("): (3, "patched: module time -> loop clock (jitter, last SR)"),
    ("aiortc/rtcrtpsender.py", "time.time("): (2, "patched: module time -> loop clock (RTT, last SR)"),
    ("aiortc/rtcsctptransport.py", "time.time("): (5, "patched: module time -> loop clock (cookie, expiry, RTT)"),
    ("aiortc/rtcdtlstransport.py", "datetime.now("): (
        1, "harmless: certificate validity; replaced by a fixed certificate in virtual time"),
    ("aiortc/contrib/media.py", "time.time("): (6, "harmless: MediaPlayer/MediaRecorder, not used"),
    ("aioice/turn.py", "time.time("): (1, "harmless: TURN allocation refresh, no TURN server is used"),
}
"""Every wall-clock read in the installed aiortc/aioice sources: ``(file, call) -> (count, why it does
not break virtual time)``. :func:`scan_wall_clock_reads` must find exactly these."""


def scan_wall_clock_reads() -> dict[tuple[str, str], int]:
    """Count wall-clock reads (:data:`WALL_CLOCK_PATTERN`) per ``(file, call)`` in the installed aiortc and
    aioice sources (comments skipped). Used by a test against :data:`WALL_CLOCK_READS`."""
    import aioice
    import aiortc

    found: dict[tuple[str, str], int] = {}
    for package in (aiortc, aioice):
        root = Path(package.__file__).parent
        for path in sorted(root.rglob("*.py")):
            rel = f"{root.name}/{path.relative_to(root).as_posix()}"
            for line in path.read_text(encoding="utf-8").splitlines():
                code = line.split("#", 1)[0]
                for match in WALL_CLOCK_PATTERN.finditer(code):
                    call = re.sub(r"\s+", "", match.group(0))
                    key = (rel, call)
                    found[key] = found.get(key, 0) + 1
    return found
