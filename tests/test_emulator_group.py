"""Concurrent calls (``twin emulate --calls N``): in virtual time on one shared line, the calls share the
line's queues (one FIFO, one clock origin) and each keeps its own peers and results; separate virtual
calls are each the single call of their seed."""

from __future__ import annotations

from emulators.config import CallConfig
from emulators.group import call_configs, group_summary, run_calls
from twin.line import AdslLine, get_offer

BASE = {"duration_s": 5.0, "scan_kb": 0.0, "print_kb": 0.0, "seed": 4, "clock": "virtual", "compute_ssim": False}


def test_two_calls_share_one_line_in_virtual_time():
    line = AdslLine(get_offer("adsl-1024-256"), 2000.0)
    results = run_calls(call_configs(CallConfig(line=line, **BASE), 2), shared_line=True)
    assert [r.config.seed for r in results] == [4, 5]
    for r in results:
        assert r.end.cause == "completed" and r.video.up.frames_decoded > 0 and not r.errors
    hosts = [sorted({a.split(":")[0] for a in r.connection.listen_addresses}) for r in results]
    assert hosts == [["10.0.0.1", "10.0.0.2"], ["10.0.1.1", "10.0.1.2"]]
    # one queue: its counters hold both calls' packets
    link = results[0].network.up.link
    assert link == results[1].network.up.link
    assert link["packets_in"] == results[0].network.up.packets_in + results[1].network.up.packets_in
    summary = group_summary(results, shared_line=True)
    assert summary["calls"] == 2 and summary["shared_line"] and 0 < summary["worst_vs_median_pct"] <= 100


def test_a_call_of_a_separate_virtual_group_is_the_single_call_of_its_seed():
    from emulators.call import run_emulated_call

    configs = call_configs(CallConfig(**BASE), 2)
    group = run_calls(configs, shared_line=False, processes=2)
    alone = run_emulated_call(configs[1])
    assert group[1].digest == alone.digest
