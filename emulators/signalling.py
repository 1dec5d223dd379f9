"""In-process signalling server and service directory: how an emulated kiosk finds and calls an agent.

In the Points Visio-Public network a kiosk did not know its agents' addresses: it showed the citizen the
services it could reach, and a call to a service rang a free agent station of that service. The emulator
does the same on one event loop, with no socket (nothing listens, nothing leaves the process):

* :class:`ServiceDirectory` lists the agent stations (an expert kiosk of a service office, or one of a
  service's standard videoconference rooms) and tells what a kiosk sees. The twin's generation rule is
  the directory's: a generation-1 kiosk sees only the services configured on it, at most
  :data:`twin.vocabulary.GEN1_SERVICE_LIMIT`, and is answered only by expert kiosks (not by the standard
  rooms); a generation-2 kiosk sees every service and every station.
* :class:`SignallingServer` carries offers and answers: a station registers and receives offers in its
  inbox; a kiosk's :meth:`SignallingServer.call` names a service and a station, the server checks the
  directory's rule and that the station is registered and free, delivers the offer, and returns the
  station's answer. Refusals raise :class:`SignallingRefused` with the reason. Every message is logged
  with the call clock's time (:attr:`SignallingServer.log`).

The session description protocol (SDP) texts are carried as they are; the address rewriting that stands
for the network stays in the relay (:mod:`emulators.relay`).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from twin.vocabulary import GEN1_SERVICE_LIMIT

StationKind = Literal["expert", "vc"]


class SignallingRefused(Exception):
    """A call the signalling server refused: ``reason`` says why in words (service not in the kiosk's
    directory, station unknown, not registered or busy)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Station:
    """An agent station: ``id`` (e.g. ``expert:cpam-clermont`` or ``vc:cpam``), the service it answers
    for, its kind (an expert kiosk or a standard videoconference room) and how many calls it takes at
    once (a service's pool of standard rooms can be one station of that capacity)."""

    id: str
    service: str
    kind: StationKind
    capacity: int = 1


@dataclass(frozen=True)
class KioskIdentity:
    """A user kiosk as the directory sees it: its id, generation (1 or 2) and, for generation 1, the
    services configured on it (generation 2 reaches every service: ``services`` is ignored).

    Raises:
        ValueError: a generation other than 1 or 2; a generation-1 kiosk with no service or more than
            :data:`~twin.vocabulary.GEN1_SERVICE_LIMIT`.
    """

    id: str
    generation: int
    services: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.generation not in (1, 2):
            raise ValueError(f"kiosk {self.id!r}: generation must be 1 or 2, got {self.generation!r}")
        if self.generation == 1 and not 1 <= len(self.services) <= GEN1_SERVICE_LIMIT:
            raise ValueError(f"kiosk {self.id!r}: a generation-1 kiosk is configured with 1 to "
                             f"{GEN1_SERVICE_LIMIT} services, got {len(self.services)}")


@dataclass(frozen=True)
class DirectoryEntry:
    """One line of a kiosk's directory: a service and the stations that may answer this kiosk for it."""

    service: str
    stations: tuple[Station, ...]


class ServiceDirectory:
    """The agent stations of a network and what each kiosk sees of them.

    Args:
        stations: every station (ids unique).

    Raises:
        ValueError: two stations with the same id.
    """

    def __init__(self, stations: Iterable[Station]) -> None:
        self._stations: dict[str, Station] = {}
        for station in stations:
            if station.id in self._stations:
                raise ValueError(f"station {station.id!r} listed twice in the directory")
            self._stations[station.id] = station
        self.services: tuple[str, ...] = tuple(sorted({s.service for s in self._stations.values()}))

    def stations(self) -> tuple[Station, ...]:
        """Every station, in the order given."""
        return tuple(self._stations.values())

    def station(self, station_id: str) -> Station | None:
        """The station of that id, or None."""
        return self._stations.get(station_id)

    def view(self, kiosk: KioskIdentity) -> tuple[DirectoryEntry, ...]:
        """The entries ``kiosk`` sees, in service order: generation 1 its configured services that the
        directory has, expert stations only (a service with none is not shown); generation 2 every
        service, every station."""
        entries = []
        for service in self.services:
            if kiosk.generation == 1 and service not in kiosk.services:
                continue
            stations = tuple(s for s in self._stations.values() if s.service == service
                             and (kiosk.generation == 2 or s.kind == "expert"))
            if stations:
                entries.append(DirectoryEntry(service, stations))
        return tuple(entries)

    def check_route(self, kiosk: KioskIdentity, service: str, station_id: str) -> Station:
        """The station if ``kiosk`` may call it for ``service``.

        Raises:
            SignallingRefused: the service is not in the kiosk's view, the station is unknown, answers for
                another service or is not shown to this kiosk's generation.
        """
        station = self._stations.get(station_id)
        if station is None:
            raise SignallingRefused(f"unknown station {station_id!r}")
        if station.service != service:
            raise SignallingRefused(f"station {station_id!r} answers for {station.service!r}, not {service!r}")
        entry = next((e for e in self.view(kiosk) if e.service == service), None)
        if entry is None:
            raise SignallingRefused(f"service {service!r} is not in the directory of kiosk {kiosk.id!r} "
                                    f"(generation {kiosk.generation})")
        if station not in entry.stations:
            raise SignallingRefused(f"station {station_id!r} ({station.kind}) does not answer generation-"
                                    f"{kiosk.generation} kiosks")
        return station


@dataclass(frozen=True)
class SignallingMessage:
    """One logged message: call-clock time (s), kind (``offer``, ``answer``, ``refused``, ``bye``), the
    call id, kiosk, station and service, and for a refusal the reason."""

    time_s: float
    kind: str
    call_id: int
    kiosk: str
    station: str
    service: str
    reason: str = ""


@dataclass
class Offer:
    """An offer delivered to a station's inbox; the station answers with :meth:`reply` (its SDP)."""

    call_id: int
    kiosk: KioskIdentity
    service: str
    sdp: str
    answer: asyncio.Future = field(repr=False)

    def reply(self, sdp: str) -> None:
        """Send the station's answer back to the calling kiosk."""
        if not self.answer.done():
            self.answer.set_result(sdp)


class SignallingServer:
    """Offers and answers between kiosks and stations on the running event loop (see the module).

    Args:
        directory: the stations and the generation rule.
        clock: the call clock (seconds), for the log.
    """

    def __init__(self, directory: ServiceDirectory, clock: Callable[[], float]) -> None:
        self.directory = directory
        self._clock = clock
        self._inboxes: dict[str, asyncio.Queue[Offer]] = {}
        self._busy: dict[str, list[int]] = {}  # station -> its calls in progress
        self._offers: dict[int, tuple[str, str]] = {}  # call in progress -> (kiosk id, service)
        self._ids = itertools.count(1)
        self.log: list[SignallingMessage] = []

    def register(self, station_id: str) -> asyncio.Queue[Offer]:
        """Sign station ``station_id`` in; returns the inbox its offers arrive in.

        Raises:
            ValueError: the station is not in the directory or already registered.
        """
        if self.directory.station(station_id) is None:
            raise ValueError(f"station {station_id!r} is not in the directory")
        if station_id in self._inboxes:
            raise ValueError(f"station {station_id!r} is already registered")
        inbox: asyncio.Queue[Offer] = asyncio.Queue()
        self._inboxes[station_id] = inbox
        return inbox

    def inbox(self, station_id: str) -> asyncio.Queue[Offer] | None:
        """The inbox of a registered station (None if it is not signed in)."""
        return self._inboxes.get(station_id)

    def busy(self, station_id: str) -> bool:
        """Whether the station takes no more call (all its capacity in calls)."""
        station = self.directory.station(station_id)
        return station is not None and len(self._busy.get(station_id, ())) >= station.capacity

    async def call(self, kiosk: KioskIdentity, service: str, station_id: str, sdp: str) -> tuple[int, str]:
        """Place a call from ``kiosk`` to ``station_id`` for ``service`` with offer ``sdp``; returns the
        call id and the station's answer SDP once it replies. The station stays busy until :meth:`hang_up`.

        Raises:
            SignallingRefused: the directory's rule refuses the route, or the station is not registered
                or is busy (each refusal is logged).
        """
        call_id = next(self._ids)
        self._check(kiosk, service, station_id, call_id)
        self._busy.setdefault(station_id, []).append(call_id)
        self._offers[call_id] = (kiosk.id, service)
        answer: asyncio.Future = asyncio.get_running_loop().create_future()
        self._log("offer", call_id, kiosk, station_id, service)
        await self._inboxes[station_id].put(Offer(call_id, kiosk, service, sdp, answer))
        answer_sdp = await answer
        self._log("answer", call_id, kiosk, station_id, service)
        return call_id, answer_sdp

    def check(self, kiosk: KioskIdentity, service: str, station_id: str) -> None:
        """Whether :meth:`call` would accept this route now; raises (and logs) its refusal if not.

        Raises:
            SignallingRefused: as :meth:`call`.
        """
        self._check(kiosk, service, station_id, 0)

    def _check(self, kiosk: KioskIdentity, service: str, station_id: str, call_id: int) -> None:
        try:
            self.directory.check_route(kiosk, service, station_id)
            if station_id not in self._inboxes:
                raise SignallingRefused(f"station {station_id!r} is not signed in")
            if self.busy(station_id):
                calls = ", ".join(map(str, self._busy[station_id]))
                raise SignallingRefused(f"station {station_id!r} is busy (call {calls})")
        except SignallingRefused as refused:
            self._log("refused", call_id, kiosk, station_id, service, refused.reason)
            raise

    def hang_up(self, call_id: int) -> None:
        """End call ``call_id``: its station is free again (an unknown or ended call: nothing happens)."""
        offer = self._offers.pop(call_id, None)
        for station_id, calls in list(self._busy.items()):
            if call_id in calls:
                calls.remove(call_id)
                if not calls:
                    del self._busy[station_id]
                if offer is not None:
                    self.log.append(SignallingMessage(self._clock(), "bye", call_id, offer[0], station_id, offer[1]))

    def _log(self, kind: str, call_id: int, kiosk: KioskIdentity, station_id: str, service: str,
             reason: str = "") -> None:
        self.log.append(SignallingMessage(self._clock(), kind, call_id, kiosk.id, station_id, service, reason))


@dataclass(frozen=True)
class SignalRoute:
    """How one emulated call is set up through a signalling server: the calling kiosk, the service and
    the station chosen (in a twin run, the station the model gave the citizen)."""

    server: SignallingServer
    kiosk: KioskIdentity
    service: str
    station: str


__all__ = ["DirectoryEntry", "KioskIdentity", "Offer", "ServiceDirectory", "SignalRoute", "SignallingMessage",
           "SignallingRefused", "SignallingServer", "Station", "StationKind"]
