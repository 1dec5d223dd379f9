"""Benchmarks of the emulator: relay packet rate, and how many concurrent calls the machine sustains.

Run: ``.venv/bin/python benchmarks/bench_emulate.py [--duration-s 10] [--max-calls 8] [--profiles gen1,gen2]``
(only the reference call: ``--skip-relay --skip-calls --skip-virtual``)

1. **Relay packet rate.** A UDP probe (no WebRTC) pushes 200-byte packets through the relay over a
   fast line (100 Mbit/s sync, so the LinkQueue never throttles) at increasing offered rates; reported:
   packets/s delivered, CPU seconds per 1000 packets, median scheduling error. The point where the
   delivered rate stops following the offered one is the relay's capacity on one core.
2. **Concurrent calls.** For each profile, N real-time calls as ``twin emulate --calls N`` runs them
   (lean, spread over one process per core, started at one instant) on uncongested separate lines
   (4 Mbit/s up, 8 Mbit/s down, so the network is not the limit), each N beside a lone call measured
   in the same run just before; N is sustained if every call's frame rate (the worse direction, good
   frames) is within 10 % of the lone call's. Reported: per N the worst fps, CPU per call-second and the
   host's load average, and the largest N sustained.

3. **Virtual time against real time** (``--skip-virtual`` to leave out). For each profile, one call in
   virtual time and one in real time on the same uncongested line (so the frame rate shows CPU, not
   the network), first on the machine as it is, then with a CPU hog (one busy-looping subprocess per
   core). Reported per profile: the virtual call's speed-up (call-seconds per wall second) and CPU
   seconds per call-second, and the uplink frame rate of both modes without and with the hog.

4. **The reference call** (``--skip-reference`` to leave out): issue 6's yardstick, a 30 s gen1 call
   over adsl-512-128 in virtual time with the default documents (``twin emulate --clock virtual``, a
   fresh process each, seeds 1..``--repeats``). Reported: the call's wall time (``result.json``
   ``wall.wall_s``) and the whole command's, and, as a baseline measured in the same run, the
   machine's video coding speed (``emulators.encoder_setup.measure_coding_delay_ms``, real aiortc
   VP8 encode + decode of one gen1 frame): the call's wall time is given in those frame-coding units
   too, a figure that does not move with the host's speed (this shared 2-core host varies by up to 2x
   from one hour to the next).

Writes ``results/bench-emulate-<timestamp>.json`` and prints a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from twin.line import AdslLine, Direction, LinkQueue, get_offer
from twin.run.atomic import atomic_write_json

FAST_UP_KBPS = 4000.0
FAST_DOWN_KBPS = 8000.0
FPS_TOLERANCE = 0.10


def relay_packet_rate(offered_pps: list[int], duration_s: float = 2.0, ip_bytes: int = 200) -> list[dict]:
    from emulators.probe import udp_probe

    line = AdslLine(get_offer("adsl2plus"), 500.0)
    rows = []
    for pps in offered_pps:
        up = LinkQueue.from_line(line, Direction.UP, np.random.default_rng(0), sync_rate_kbps=100_000.0)
        down = LinkQueue.from_line(line, Direction.DOWN, np.random.default_rng(1), sync_rate_kbps=100_000.0)
        rate_kbps = pps * ip_bytes * 8 / 1000.0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        res = asyncio.run(udp_probe(up, down, ip_bytes=ip_bytes, rate_kbps=rate_kbps, duration_s=duration_s))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        delivered = int(res.delivered.sum())
        r = res.recv_s[res.delivered]
        span = (r.max() - r.min()) if r.size > 1 else float("nan")
        late = res.relay.summary("up")["late_ms"]
        rows.append({
            "offered_pps": pps,
            "sent": int(res.send_s.size),
            "delivered": delivered,
            "delivered_pps": delivered / span if span == span and span > 0 else None,
            "cpu_s_per_1000_packets": 1000.0 * cpu / max(1, res.send_s.size),
            "cpu_fraction": cpu / wall,
            "median_added_delay_ms": float(np.median(res.delays_s()) * 1000) if delivered else None,
            "late_ms_mean": late["mean"],
            "late_ms_p95": late["p95"],
        })
        print(f"relay: offered {pps:6d} pps -> delivered {rows[-1]['delivered_pps'] or 0:8.0f} pps, "
              f"{rows[-1]['cpu_s_per_1000_packets']:.3f} CPU-s/1000 pkts, late p95 {late['p95']:.2f} ms", flush=True)
    return rows


def _group_row(n: int, results: list, processes: int = 1) -> dict:
    """Worst and mean frame rate (the worse direction of each call), worst p95 delay up, CPU per
    call-second (a call's ``wall.cpu_s`` is its process's, shared by the n / processes calls in it)."""
    fps = [min(r.video.up.fps_mean, r.video.down.fps_mean) for r in results]
    p95 = [r.video.up.delay.p95_ms for r in results if r.video.up.delay.p95_ms is not None]
    return {"calls": n, "worst_fps": min(fps), "mean_fps": float(np.mean(fps)), "worst_p95_ms_up": max(p95, default=None),
            "cpu_s_per_call_s": float(np.mean([r.wall.cpu_s / r.config.duration_s for r in results])) * processes / n,
            "causes": sorted({r.end.cause for r in results if r.end is not None}),
            "errors": sorted({e for r in results for e in r.errors})[:5]}


def concurrent_calls(profile_name: str, counts: list[int], duration_s: float, processes: int | None = None) -> dict:
    """N real-time calls on separate uncongested lines (``twin emulate --calls N``: lean, spread over one
    process per core, started at one instant) against a lone call of the same run, measured just
    before each N (the host's load moves). N is sustained when every call's frame rate (the worse of its
    two directions, good frames) is within :data:`FPS_TOLERANCE` of the lone call's."""
    from emulators.config import CallConfig
    from emulators.group import call_configs, run_calls
    from twin.profiles import get_profile

    config = CallConfig(line=AdslLine(get_offer("adsl-max"), 1000.0), up_kbps=FAST_UP_KBPS,
                        down_kbps=FAST_DOWN_KBPS, profile=get_profile(profile_name), duration_s=duration_s,
                        scan_kb=0, print_kb=0, seed=1, compute_ssim=False)
    steps, sustained = [], 0
    for n in counts:
        lone = _group_row(1, run_calls([config]))
        spread = max(1, min(n, processes or os.cpu_count() or 1))
        group = _group_row(n, run_calls(call_configs(config, n), processes=processes), spread)
        ok = group["worst_fps"] >= (1 - FPS_TOLERANCE) * lone["worst_fps"]
        steps.append({"calls": n, "lone": lone, "group": group, "sustained": ok, "load_avg": os.getloadavg()})
        print(f"{profile_name}: {n:2d} concurrent calls -> worst {group['worst_fps']:.1f} fps (lone call "
              f"{lone['worst_fps']:.1f}), {group['cpu_s_per_call_s']:.2f} CPU-s per call-s, load average "
              f"{os.getloadavg()[0]:.1f}: {'OK' if ok else 'degraded'}", flush=True)
        if ok:
            sustained = n
    return {"profile": profile_name, "steps": steps, "max_sustained_calls": sustained, "fps_tolerance": FPS_TOLERANCE}


def _one_call(profile_name: str, duration_s: float, clock: str) -> dict:
    from emulators.call import run_emulated_call
    from emulators.config import CallConfig
    from twin.profiles import get_profile

    result = run_emulated_call(CallConfig(
        line=AdslLine(get_offer("adsl-max"), 1000.0), up_kbps=FAST_UP_KBPS, down_kbps=FAST_DOWN_KBPS,
        profile=get_profile(profile_name), duration_s=duration_s, scan_kb=0, print_kb=0, seed=1,
        compute_ssim=False, clock=clock,
    ))
    return {"clock": clock, "fps_up": result.video.up.fps_mean, "fps_down": result.video.down.fps_mean,
            "delay_mean_ms_up": result.video.up.delay.mean_ms,
            "wall_s": result.wall.wall_s, "cpu_s": result.wall.cpu_s,
            "speedup": result.wall.speedup, "cpu_s_per_call_s": result.wall.cpu_s / duration_s,
            "digest": result.digest.sha256}


def _cpu_hog(n: int) -> list:
    import subprocess

    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def virtual_vs_real(profiles: list[str], duration_s: float) -> list[dict]:
    """Speed-up and CPU per call-second of virtual time; frame rates of both modes without/with a hog."""
    rows = []
    for hog in (False, True):
        hogs = _cpu_hog(os.cpu_count() or 1) if hog else []
        try:
            for profile in profiles:
                for clock in ("virtual", "real"):
                    r = _one_call(profile, duration_s, clock)
                    r.update({"profile": profile, "cpu_hog": hog})
                    rows.append(r)
                    print(f"{profile:12s} {clock:7s} {'with' if hog else 'no':4s} hog: up {r['fps_up']:5.1f} fps, "
                          f"down {r['fps_down']:5.1f} fps, delay up {r['delay_mean_ms_up']:4.0f} ms, {r['wall_s']:5.1f} s wall for {duration_s:.0f} s "
                          f"({r['speedup']:.1f}x), {r['cpu_s_per_call_s']:.2f} CPU-s per call-s", flush=True)
        finally:
            for proc in hogs:
                proc.terminate()
            for proc in hogs:
                proc.wait()
    print("\nprofile       speed-up  CPU-s/call-s  fps up virtual (no hog / hog)  fps up real (no hog / hog)"
          "  delay up real (no hog / hog)")
    for profile in profiles:
        get = {(r["clock"], r["cpu_hog"]): r for r in rows if r["profile"] == profile}
        v0, v1, r0, r1 = get[("virtual", False)], get[("virtual", True)], get[("real", False)], get[("real", True)]
        print(f"{profile:12s} {v0['speedup']:8.1f}x {v0['cpu_s_per_call_s']:12.2f}  {v0['fps_up']:14.1f} / {v1['fps_up']:<14.1f}"
              f"  {r0['fps_up']:10.1f} / {r1['fps_up']:<10.1f} {r0['delay_mean_ms_up']:10.0f} / {r1['delay_mean_ms_up']:.0f} ms"
              f"   virtual digest {'same' if v0['digest'] == v1['digest'] else 'DIFFERENT'} with the hog")
    return rows


def reference_call(repeats: int) -> dict:
    """Issue 6's yardstick: ``twin emulate --clock virtual`` on a 30 s gen1 call over adsl-512-128."""
    import subprocess
    import tempfile

    from emulators.encoder_setup import measure_coding_delay_ms
    from twin.profiles import get_profile

    repo = Path(__file__).resolve().parents[1]
    calls = []
    for seed in range(1, repeats + 1):
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "twin.cli", "emulate", "--line", "adsl-512-128", "--duration-s", "30",
                   "--clock", "virtual", "--seed", str(seed), "--out", str(Path(tmp) / "call")]
            t0 = time.perf_counter()
            done = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, check=False)
            command_s = time.perf_counter() - t0
            if done.returncode != 0:
                raise RuntimeError(f"twin emulate failed: {done.stderr[-2000:]}")
            result = json.loads((Path(tmp) / "call" / "result.json").read_text())
        calls.append({"seed": seed, "call_wall_s": result["wall"]["wall_s"], "call_cpu_s": result["wall"]["cpu_s"],
                      "command_wall_s": command_s, "digest": result["digest"]["sha256"]})
        print(f"gen1 30 s call, adsl-512-128, virtual, seed {seed}: call {calls[-1]['call_wall_s']:.1f} s, "
              f"command {command_s:.1f} s", flush=True)
    encode_ms, decode_ms = measure_coding_delay_ms(get_profile("gen1"))
    frame_ms = encode_ms + decode_ms
    walls = [c["call_wall_s"] for c in calls]
    summary = {
        "calls": calls,
        "baseline_gen1_frame_coding_ms": frame_ms,
        "call_wall_s": {"min": min(walls), "median": float(np.median(walls)), "max": max(walls)},
        "call_wall_in_frame_codings": {"median": float(np.median(walls)) * 1000.0 / frame_ms},
    }
    print(f"reference call: wall {min(walls):.1f} / {np.median(walls):.1f} / {max(walls):.1f} s (min/median/max "
          f"of {len(walls)}); baseline: one gen1 frame encoded and decoded in {frame_ms:.2f} ms on this host now, "
          f"so the median call costs {summary['call_wall_in_frame_codings']['median']:.0f} frame codings "
          f"(the call itself codes about 900 video frames and 1000 Opus frames)")
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=float, default=10.0)
    parser.add_argument("--max-calls", type=int, default=8)
    parser.add_argument("--calls-profiles", default="gen1", help="Profiles of the concurrent-calls part.")
    parser.add_argument("--profiles", default="gen1,gen2")
    parser.add_argument("--skip-relay", action="store_true")
    parser.add_argument("--skip-calls", action="store_true")
    parser.add_argument("--skip-virtual", action="store_true")
    parser.add_argument("--virtual-profiles", default="gen1,gen2,aiortc-stock")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--repeats", type=int, default=3, help="Reference calls (seeds 1..N).")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    report: dict = {"cpu_count": os.cpu_count(), "started_at": dt.datetime.now().isoformat(timespec="seconds")}
    if not args.skip_relay:
        report["relay"] = relay_packet_rate([500, 2000, 5000, 10000, 20000])
    if not args.skip_calls:
        counts = [n for n in (2, 4, 6, 8, 10, 12) if n <= args.max_calls]
        report["calls"] = [concurrent_calls(p.strip(), counts, args.duration_s) for p in args.calls_profiles.split(",")
                           if p.strip()]
        for c in report["calls"]:
            print(f"{c['profile']}: {c['max_sustained_calls']} concurrent calls sustained on {os.cpu_count()} cores")
    if not args.skip_virtual:
        profiles = [p.strip() for p in args.virtual_profiles.split(",") if p.strip()]
        report["virtual_vs_real"] = virtual_vs_real(profiles, args.duration_s)
    if not args.skip_reference:
        report["reference_call"] = reference_call(args.repeats)
    out = Path(args.out) if args.out else Path("results") / f"bench-emulate-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    atomic_write_json(out, json.loads(json.dumps(report, default=float)))
    print(out)


if __name__ == "__main__":
    main()
