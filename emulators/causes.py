"""Why an emulated call ended: one cause from a fixed list, with the evidence behind it.

:data:`CALL_END_CAUSES`, decided by :func:`classify_end` in this order:

* ``interrupted`` - a signal (Ctrl-C, SIGTERM, SIGHUP) ended the call early; the evidence names it;
* ``line dead`` - nothing crossed the line either way (the call never connected), or, connected, nothing
  was delivered in either direction during the last :data:`LINE_DEAD_S` seconds of the call;
* ``DTLS/ICE failure`` - a peer's ICE or DTLS transport reached ``failed`` (before or after connecting);
* ``consent expired`` - connected, then a peer's ICE consent freshness checks (RFC 7675; aioice sends one
  every ~5 s, each waiting 0.5 s for its answer, and gives up after 6 failures in a row) expired and the
  connection closed itself; the evidence gives the last consent response and the path RTT before;
* ``peer closed`` - connected, then a peer connection closed for another reason (the other end closed);
* ``timeout`` - still connecting when the call's time was up (no failure, no connection);
* ``completed`` - connected and alive until the end.

The consent checks are observed by :func:`consent_watch`, which wraps aioice's STUN transactions and its
consent loop while a call runs (process-wide, counted, so that concurrent calls share it) and keeps a
:class:`ConsentLog` on each ICE connection.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

CALL_END_CAUSES = ("completed", "consent expired", "DTLS/ICE failure", "peer closed", "line dead", "timeout",
                   "interrupted")
"""Every cause a call can end with (:func:`classify_end`)."""

LINE_DEAD_S = 5.0
"""A connected call whose line delivered nothing either way during its last this many seconds ended on a
dead line (the pause threshold of the W3C webrtc-stats definitions)."""


@dataclass
class ConsentLog:
    """The consent freshness checks of one ICE connection (times on the loop clock, s).

    Attributes:
        checks: ``(sent_s, answered, rtt_s)`` per check (``rtt_s`` NaN when unanswered).
        expired_s: when aioice declared consent expired and closed the connection (None: never).
    """

    checks: list[tuple[float, bool, float]] = field(default_factory=list)
    expired_s: float | None = None

    def last_response_s(self) -> float | None:
        """Send time + RTT of the last answered check (when its answer came), or None."""
        answered = [t + rtt for t, ok, rtt in self.checks if ok]
        return answered[-1] if answered else None

    def failures_in_a_row(self) -> int:
        """Unanswered checks since the last answered one."""
        n = 0
        for _, ok, _ in reversed(self.checks):
            if ok:
                break
            n += 1
        return n


_users = 0
_saved: list[tuple[Any, str, Any]] = []


def consent_log(connection: Any) -> ConsentLog:
    """The :class:`ConsentLog` of an aioice ``Connection`` (made on first use)."""
    log = getattr(connection, "_twin_consent", None)
    if log is None:
        log = ConsentLog()
        connection._twin_consent = log
    return log


@contextlib.contextmanager
def consent_watch() -> Iterator[None]:
    """Record every consent check and consent expiry of aioice while active (see the module docstring).

    aioice sends consent checks with ``retransmissions=0`` (its ICE connectivity checks use the default
    retransmissions), which is how they are told apart. Behaviour is unchanged: the wrappers only look.
    """
    global _users
    import asyncio

    import aioice.ice
    import aioice.stun

    if _users == 0:
        original_request = aioice.ice.StunProtocol.request
        original_consent = aioice.ice.Connection.query_consent

        async def request(self, request, addr, integrity_key=None, retransmissions=None):
            if retransmissions != 0:
                return await original_request(self, request, addr, integrity_key, retransmissions)
            loop = asyncio.get_running_loop()
            sent = loop.time()
            log = consent_log(self.receiver)
            try:
                response = await original_request(self, request, addr, integrity_key, retransmissions)
            except aioice.stun.TransactionError:
                log.checks.append((sent, False, math.nan))
                raise
            log.checks.append((sent, True, loop.time() - sent))
            return response

        async def query_consent(self):
            result = await original_consent(self)  # returns only when consent expired
            consent_log(self).expired_s = asyncio.get_running_loop().time()
            return result

        _saved[:] = [(aioice.ice.StunProtocol, "request", original_request),
                     (aioice.ice.Connection, "query_consent", original_consent)]
        aioice.ice.StunProtocol.request = request
        aioice.ice.Connection.query_consent = query_consent
    _users += 1
    try:
        yield
    finally:
        _users -= 1
        if _users == 0:
            for obj, name, value in _saved:
                setattr(obj, name, value)
            _saved.clear()


def ice_connection(pc: Any) -> Any | None:
    """The aioice ``Connection`` under an aiortc peer connection (max-bundle: one), or None."""
    for transceiver in pc.getTransceivers():
        transport = getattr(transceiver.sender, "transport", None)
        connection = getattr(getattr(transport, "transport", None), "_connection", None)
        if connection is not None:
            return connection
    sctp = getattr(pc, "sctp", None)
    return getattr(getattr(getattr(sctp, "transport", None), "transport", None), "_connection", None)


@dataclass(frozen=True)
class CallEnd:
    """Why and when a call ended.

    Attributes:
        cause: one of :data:`CALL_END_CAUSES`.
        at_s: when, s from the call start (the connection's death, the last delivery of a dead line, the
            interruption, or the end of the call).
        evidence: what the cause rests on: the peer concerned, the last consent response (s), the
            consent checks and failures, the path RTT before the end (ms), aiortc's RTT (ms), the last
            delivery each way (s), the signal.
    """

    cause: str
    at_s: float
    evidence: dict[str, Any]

    def describe(self) -> str:
        """One line for the terminal: the cause, when, and its main evidence."""
        ev = self.evidence
        bits = []
        if ev.get("signal"):
            bits.append(ev["signal"])
        if ev.get("peer"):
            bits.append(f"{ev['peer']}")
        if self.cause == "consent expired":
            last = ev.get("last_consent_response_s")
            bits.append("no consent response ever" if last is None else f"last consent response at {last:.1f} s")
            bits.append(f"{ev.get('consent_failures', 0)} checks unanswered")
        if ev.get("path_rtt_ms") is not None and self.cause != "completed":
            bits.append(f"path RTT {ev['path_rtt_ms']:.0f} ms before")
        if self.cause == "line dead" and ev.get("last_delivery_s") is not None:
            bits.append(f"last packet delivered at {ev['last_delivery_s']:.1f} s")
        detail = f" ({', '.join(bits)})" if bits else ""
        return f"call ended: {self.cause} at {self.at_s:.1f} s{detail}"


@dataclass(frozen=True)
class PeerEnd:
    """What one peer's end of the connection went through (input of :func:`classify_end`)."""

    name: str
    states: Sequence[Sequence[Any]]  # (time_s, connectionState)
    ice_states: Sequence[Sequence[Any]]  # (time_s, iceConnectionState)
    consent: ConsentLog | None  # times already on the call clock


# long: the causes in their order of precedence, each with its evidence, read top to bottom
def classify_end(*, end_s: float, peers: Sequence[PeerEnd], last_delivery_s: dict[str, float | None],
                 path_rtt_series: Sequence[Sequence[float]], rtt_ms: float | None,
                 interrupted_by: str | None = None) -> CallEnd:
    """The cause a call ended with (module docstring), from the peers' states and consent logs (times
    in s from the call start), the last delivery each way, the path RTT per second and aiortc's RTT.
    """
    def path_rtt_before(t: float) -> float | None:
        before = [v for s, v in path_rtt_series if s < t]
        return before[-1] if before else None

    deliveries = [t for t in last_delivery_s.values() if t is not None]
    evidence: dict[str, Any] = {"last_delivery_up_s": last_delivery_s.get("up"),
                                "last_delivery_down_s": last_delivery_s.get("down"), "rtt_ms": rtt_ms}
    if interrupted_by is not None:
        return CallEnd("interrupted", end_s, {**evidence, "signal": interrupted_by})
    connected = [next((t for t, s in p.states if s == "connected"), None) for p in peers]
    ever_connected = any(t is not None for t in connected)
    deaths = sorted((t, s, p) for p in peers for t, s in p.states if s in ("failed", "closed") and t < end_s - 1e-3)
    ice_failed = sorted((t, p.name) for p in peers for t, s in p.ice_states if s == "failed")
    if not ever_connected:
        if not deliveries:
            return CallEnd("line dead", end_s, {**evidence, "last_delivery_s": None})
        if deaths or ice_failed:
            t, name = (deaths[0][0], deaths[0][2].name) if deaths else ice_failed[0]
            return CallEnd("DTLS/ICE failure", t, {**evidence, "peer": name, "path_rtt_ms": path_rtt_before(t)})
        return CallEnd("timeout", end_s, {**evidence, "path_rtt_ms": path_rtt_before(end_s)})
    if deaths:
        t, state, peer = deaths[0]
        expired = [(p.consent.expired_s, p) for p in peers
                   if p.consent is not None and p.consent.expired_s is not None and p.consent.expired_s <= t + 1e-3]
        if expired:
            t_exp, who = min(expired, key=lambda e: e[0])
            log = who.consent
            return CallEnd("consent expired", t_exp, {
                **evidence, "peer": who.name, "last_consent_response_s": log.last_response_s(),
                "consent_checks": len(log.checks), "consent_failures": log.failures_in_a_row(),
                "path_rtt_ms": path_rtt_before(t_exp)})
        cause = "DTLS/ICE failure" if state == "failed" else "peer closed"
        return CallEnd(cause, t, {**evidence, "peer": peer.name, "path_rtt_ms": path_rtt_before(t)})
    last = max(deliveries) if deliveries else None
    if last is None or last < end_s - LINE_DEAD_S:
        return CallEnd("line dead", last if last is not None else end_s,
                       {**evidence, "last_delivery_s": last, "path_rtt_ms": path_rtt_before(end_s)})
    return CallEnd("completed", end_s, {**evidence, "path_rtt_ms": path_rtt_before(end_s)})
