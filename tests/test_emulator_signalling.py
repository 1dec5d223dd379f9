"""The in-process signalling server and service directory: the twin's generation rule on the real call
path (a generation-1 kiosk sees at most six services and only expert stations), refusals with their
reason, and real emulated calls set up through the server in virtual time."""

from __future__ import annotations

import asyncio

import pytest

from emulators.clocks import clock_backend
from emulators.config import CallConfig
from emulators.group import call_configs, run_group
from emulators.signalling import (
    KioskIdentity,
    ServiceDirectory,
    SignallingRefused,
    SignallingServer,
    SignalRoute,
    Station,
)
from twin.line import AdslLine, get_offer
from twin.vocabulary import GEN1_SERVICE_LIMIT

SERVICES = [f"s{i}" for i in range(8)]
STATIONS = [Station(f"expert:{s}", s, "expert") for s in SERVICES] + [Station("vc:s0:0", "s0", "vc"),
                                                                      Station("vc:s7:0", "s7", "vc")]


def test_generation_1_sees_its_configured_services_and_expert_stations_only():
    directory = ServiceDirectory(STATIONS)
    gen1 = KioskIdentity("vorey", 1, tuple(SERVICES[:GEN1_SERVICE_LIMIT]))
    view = directory.view(gen1)
    assert [e.service for e in view] == SERVICES[:GEN1_SERVICE_LIMIT]
    assert all(st.kind == "expert" for e in view for st in e.stations)
    gen2 = KioskIdentity("cunlhat", 2)
    view2 = directory.view(gen2)
    assert [e.service for e in view2] == SERVICES
    assert {st.id for e in view2 for st in e.stations} == {st.id for st in STATIONS}


def test_a_generation_1_kiosk_cannot_be_configured_beyond_the_limit():
    with pytest.raises(ValueError, match="1 to 6 services"):
        KioskIdentity("vorey", 1, tuple(SERVICES[:GEN1_SERVICE_LIMIT + 1]))
    with pytest.raises(ValueError, match="generation must be 1 or 2"):
        KioskIdentity("vorey", 3)
    with pytest.raises(ValueError, match="listed twice"):
        ServiceDirectory([STATIONS[0], STATIONS[0]])


def _answering_server() -> tuple[SignallingServer, list[asyncio.Task]]:
    """A server with every station signed in and answering each offer with ``answer-<station>``."""
    server = SignallingServer(ServiceDirectory(STATIONS), clock=asyncio.get_running_loop().time)
    tasks = []
    for st in STATIONS:
        inbox = server.register(st.id)

        async def answer(inbox=inbox, station=st.id) -> None:
            while True:
                (await inbox.get()).reply(f"answer-{station}")

        tasks.append(asyncio.ensure_future(answer()))
    return server, tasks


def test_the_server_refuses_what_the_directory_does_not_show_and_busy_stations():
    async def main() -> list[str]:
        server, tasks = _answering_server()
        gen1 = KioskIdentity("vorey", 1, ("s0", "s1"))
        reasons = []
        for service, station in [("s5", "expert:s5"), ("s0", "vc:s0:0"), ("s0", "expert:s1"), ("s0", "nowhere")]:
            with pytest.raises(SignallingRefused) as refused:
                await server.call(gen1, service, station, "offer")
            reasons.append(refused.value.reason)
        call_id, answer = await server.call(gen1, "s0", "expert:s0", "offer")
        assert answer == "answer-expert:s0" and server.busy("expert:s0")
        with pytest.raises(SignallingRefused, match="busy"):
            await server.call(KioskIdentity("cunlhat", 2), "s0", "expert:s0", "offer")
        server.hang_up(call_id)
        assert not server.busy("expert:s0")
        _, answer = await server.call(KioskIdentity("cunlhat", 2), "s0", "vc:s0:0", "offer")
        assert answer == "answer-vc:s0:0"
        kinds = [m.kind for m in server.log]
        assert kinds.count("refused") == 5 and kinds.count("offer") == 2 and kinds.count("bye") == 1
        for t in tasks:
            t.cancel()
        return reasons

    reasons = asyncio.run(main())
    assert "not in the directory of kiosk 'vorey' (generation 1)" in reasons[0]
    assert "does not answer generation-1 kiosks" in reasons[1]
    assert "answers for 's1', not 's0'" in reasons[2]
    assert "unknown station 'nowhere'" in reasons[3]


def test_a_station_not_signed_in_is_refused():
    async def main() -> None:
        server = SignallingServer(ServiceDirectory(STATIONS), clock=lambda: 0.0)
        with pytest.raises(SignallingRefused, match="not signed in"):
            await server.call(KioskIdentity("cunlhat", 2), "s0", "expert:s0", "offer")
        with pytest.raises(ValueError, match="not in the directory"):
            server.register("nowhere")

    asyncio.run(main())


BASE = {"duration_s": 4.0, "scan_kb": 0.0, "print_kb": 0.0, "seed": 4, "clock": "virtual", "compute_ssim": False}


def test_real_calls_set_up_through_the_server_on_a_shared_line_in_virtual_time():
    """Two kiosks (generation 1 to an expert station, generation 2 to a standard room) call through one
    server over one shared line; both calls run and the log holds each offer, answer and hang-up."""
    line = AdslLine(get_offer("adsl-1024-256"), 2000.0)
    configs = call_configs(CallConfig(line=line, **BASE), 2)
    backend = clock_backend("virtual", lean=True)

    async def main():
        server = SignallingServer(ServiceDirectory(STATIONS), clock=asyncio.get_running_loop().time)
        for st in ("expert:s0", "vc:s7:0"):
            server.register(st)
        routes = [SignalRoute(server, KioskIdentity("vorey", 1, ("s0",)), "s0", "expert:s0"),
                  SignalRoute(server, KioskIdentity("cunlhat", 2), "s7", "vc:s7:0")]
        results = await run_group(configs, backend, shared_line=True, routes=routes)
        return results, server

    results, server = backend.run(main)
    for r in results:
        assert r.end.cause == "completed" and r.video.up.frames_decoded > 0 and r.video.down.frames_decoded > 0
    assert sorted((m.kind, m.station) for m in server.log) == [
        ("answer", "expert:s0"), ("answer", "vc:s7:0"), ("bye", "expert:s0"), ("bye", "vc:s7:0"),
        ("offer", "expert:s0"), ("offer", "vc:s7:0")]
    assert not server.busy("expert:s0") and not server.busy("vc:s7:0")


def test_a_refused_call_raises_before_media_flows():
    line = AdslLine(get_offer("adsl-1024-256"), 2000.0)
    config = CallConfig(line=line, **BASE)
    backend = clock_backend("virtual", lean=True)

    async def main():
        server = SignallingServer(ServiceDirectory(STATIONS), clock=asyncio.get_running_loop().time)
        server.register("vc:s0:0")
        route = SignalRoute(server, KioskIdentity("vorey", 1, ("s0",)), "s0", "vc:s0:0")
        try:
            await run_group([config], backend, shared_line=True, routes=[route])
        except SignallingRefused as refused:
            return refused.reason, server
        return None, server

    reason, server = backend.run(main)
    assert reason is not None and "does not answer generation-1 kiosks" in reason
    assert [m.kind for m in server.log] == ["refused"]
