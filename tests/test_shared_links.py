"""Shared links: the twin's shared-link rule (n concurrent calls on one FIFO line each see 1/n of its rate
and 1/n of its buffer, ``AdslLine.shared_by``) in the scenario and the model, checked against emulated
concurrent calls crossing one shared office line (the relay's multi-hop paths, ``twin.line.LinkPath``)."""

from __future__ import annotations

import numpy as np
import pytest

from emulators.agreement import TOLERANCES
from emulators.clocks import clock_backend
from emulators.config import CallConfig
from emulators.group import call_configs, run_group
from twin.errors import TwinInputError
from twin.line import AdslLine, ClockedHop, LineError, LinkPath, LinkQueue, get_offer
from twin.model.inputs import prepare
from twin.model.replication import Replication
from twin.quality import OpinionQualityModel


def test_a_shared_line_as_one_call_sees_it():
    line = AdslLine(get_offer("adsl-2048-256"), 1500.0)
    quarter = line.shared_by(4)
    assert quarter.sync_rate_up_kbps == pytest.approx(line.sync_rate_up_kbps / 4)
    assert quarter.sync_rate_down_kbps == pytest.approx(line.sync_rate_down_kbps / 4)
    assert quarter.buffer_bytes("up") == line.buffer_bytes("up") // 4
    assert quarter.fixed_delay_ms("up") == line.fixed_delay_ms("up")
    assert line.shared_by(1) == line and quarter.shared_by(4) is quarter
    for bad in (0, 1.5, True):
        with pytest.raises(LineError, match="share"):
            AdslLine(get_offer("adsl-2048-256"), 1500.0, share=bad)


def test_a_clocked_hop_keeps_each_call_on_its_clock_and_the_queue_on_one():
    reference = LinkQueue(1000.0, "pppoe-llc", 100_000, 10.0, np.random.default_rng(0))
    e1, e2 = reference.send(10.0, 1000), reference.send(10.0, 1000)
    queue = LinkQueue(1000.0, "pppoe-llc", 100_000, 10.0, np.random.default_rng(0))
    first, second = ClockedHop(queue, 0.0), ClockedHop(queue, 10.0)  # the second call started 10 s later
    d1 = first.send(10.0, 1000)
    d2 = second.send(0.0, 1000)  # the same instant on the shared clock: queued behind the first packet
    assert d1 == e1 and d2 == pytest.approx(e2 - 10.0)
    assert second.last_queue_delay_s == pytest.approx(reference.last_queue_delay_s) and reference.last_queue_delay_s > 0
    assert first.stats is second.stats is queue.stats and queue.stats.packets_in == 2
    with pytest.raises(LineError):
        LinkPath()


# -- the scenario and the model ----------------------------------------------------------------------


def _two_experts_at_one_office(data: dict, own_line: bool = False) -> None:
    data["services"][0]["offices"] = [{"commune": "Le Puy-en-Velay",
                                       "line": {"offer": "adsl-2048-256", "loop_length_m": 800}}]
    data["services"][0]["agents"] = 2
    expert = {"id": "anpe-le-puy-2", "kind": "expert", "place": {"commune": "Le Puy-en-Velay"}, "services": ["anpe"]}
    if own_line:
        expert["line"] = {"offer": "adsl-1024-256", "loop_length_m": 800}
    del data["sites"][1]["line"]
    data["sites"].append(expert)
    data["phases"][0]["add"].append("anpe-le-puy-2")


def test_expert_kiosks_at_an_office_with_a_line_share_it(small_scenario):
    loaded = small_scenario(_two_experts_at_one_office)
    assert loaded.office_of_expert == {"anpe-le-puy": (0, 0), "anpe-le-puy-2": (0, 0)}
    inputs = prepare(loaded, OpinionQualityModel())
    n_sites, n_services = len(inputs.site_ids), len(inputs.service_ids)
    office = n_sites + n_services
    assert inputs.station_link[1] == inputs.station_link[2] == office
    assert inputs.link_shared[office] and inputs.links[office].sync_rate_up_kbps == 256.0


def test_an_expert_kiosk_at_a_shared_office_cannot_set_its_own_line(small_scenario):
    with pytest.raises(TwinInputError, match=r"offices\[\].line"):
        small_scenario(lambda d: _two_experts_at_one_office(d, own_line=True))


def test_concurrent_interviews_get_the_time_average_of_the_shared_mos(small_scenario):
    """Two interviews on the shared office line, overlapping for part of their time: each one's MOS is
    the time average of the one-call and the two-call MOS, weighted by the minutes at each level."""
    loaded = small_scenario(_two_experts_at_one_office)
    quality = OpinionQualityModel()
    inputs = prepare(loaded, quality)
    rep = Replication(inputs, 1)
    env = rep.env
    office = inputs.station_link[1]
    kiosk = inputs.links[0]
    profile = inputs.profiles[1]

    def scores(n: int) -> np.ndarray:  # both interviews come from the one kiosk, as from two booths of a site
        q = quality.score(kiosk.shared_by(n), inputs.links[office].shared_by(n), profile)
        return np.array([q.mos, q.speech_mos, min(q.video_mos_up, q.video_mos_down), q.usable])

    class _C:  # the fields _start_shared reads of a citizen
        def __init__(self):
            self.stream = type("S", (), {"site": 0, "service": 0})()
            self.phase = 0

    results = {}

    def interview(name: str, start: float, length: float, station: int):
        yield env.timeout(start)
        call = rep._start_shared(_C(), (station, "expert", station, None))
        yield env.timeout(length)
        results[name] = np.array(rep._end_shared(call))  # (MOS, speech, video, usable)

    env.process(interview("a", 0.0, 30.0, 1))
    env.process(interview("b", 10.0, 40.0, 2))
    env.run()
    # a: 10 min alone, 20 min with b; b: 20 min with a, 20 min alone
    assert scores(2)[1] < scores(1)[1]  # sharing the line lowers the speech score at least
    assert results["a"] == pytest.approx((10 * scores(1) + 20 * scores(2)) / 30)
    assert results["b"] == pytest.approx((20 * scores(2) + 20 * scores(1)) / 40)
    assert rep.link_calls[office] == 0 and not rep.on_link[office]


# -- the rule against emulated concurrent calls ------------------------------------------------------

OFFICE = AdslLine(get_offer("adsl-2048-256"), 1500.0)
KIOSK = AdslLine(get_offer("adsl-2048-256"), 1500.0)
CALLS = 4
BASE = {"duration_s": 20.0, "scan_kb": 0.0, "print_kb": 0.0, "seed": 4, "clock": "virtual", "compute_ssim": False}


def _calls_through_office(office_line: AdslLine, calls: int) -> list:
    """``calls`` concurrent virtual calls, each from its own kiosk line, all crossing one office line
    (kiosk uplink then office downlink; office uplink then kiosk downlink)."""
    configs = call_configs(CallConfig(line=KIOSK, **BASE), calls)
    office_up, office_down = CallConfig(line=office_line, seed=99, clock="virtual").link_queues()
    paths = []
    for config in configs:
        up, down = config.link_queues()
        paths.append((LinkPath(up, office_down), LinkPath(office_up, down)))
    backend = clock_backend("virtual", lean=True)
    return backend.run(lambda: run_group(configs, backend, shared_line=False, paths=paths))


@pytest.fixture(scope="module")
def office_measurements():
    shared = _calls_through_office(OFFICE, CALLS)
    alone = _calls_through_office(OFFICE, 1)[0]
    rule = _calls_through_office(OFFICE.shared_by(CALLS), 1)[0]
    return shared, alone, rule


def _down(result) -> dict:
    return {"fps": result.video.down.fps_mean, "delay_mean_ms": result.video.down.delay.mean_ms}


def test_four_calls_on_one_office_line_are_worse_than_one(office_measurements):
    shared, alone, _ = office_measurements
    assert all(r.end.cause == "completed" for r in shared)
    fps_check, delay_check = TOLERANCES["fps"][1], TOLERANCES["delay_mean_ms"][1]
    for r in shared:  # the agents' video towards the kiosks crosses the office's 256 kbit/s uplink
        assert not fps_check(_down(alone)["fps"], _down(r)["fps"])
        assert not delay_check(_down(alone)["delay_mean_ms"], _down(r)["delay_mean_ms"])
        assert _down(r)["fps"] < _down(alone)["fps"]


def test_the_shared_link_rule_predicts_the_concurrent_calls(office_measurements):
    """One call on the office line as the rule sees it (1/4 of the rate and of the buffer) against the
    mean of the four concurrent calls, within the virtual-vs-real-time tolerances."""
    shared, _, rule = office_measurements
    for metric in ("fps", "delay_mean_ms"):
        measured = float(np.mean([_down(r)[metric] for r in shared]))
        assert TOLERANCES[metric][1](measured, _down(rule)[metric]), (metric, measured, _down(rule)[metric])
