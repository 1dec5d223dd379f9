"""Virtual time against real time: the same calls in both modes, compared on what the twin uses.

For each profile x line, one real-time call (real sockets through :class:`emulators.relay.UdpRelay`,
run alone so that it has the host to itself) and one virtual-time call (:mod:`emulators.virtual_time`)
with the same configuration and seed, documents off (the calibration's conditions). Compared, on the
uplink (kiosk -> agent, the bottleneck) and the downlink: decoded frame rate, freeze count, mean
end-to-end frame delay (capture to decode) and PSNR, each against a tolerance stated up front
(:data:`TOLERANCES`). Writes a markdown table (default ``docs/virtual-time-agreement.md``) with the
command that produced it, and the raw numbers as JSON next to it under ``results/``.

Run: ``.venv/bin/python -m emulators.agreement [--duration-s 20] [--profiles gen1,gen2,aiortc-stock]
[--lines adsl-512-128,adsl-2048-256] [--out docs/virtual-time-agreement.md]``
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import time
from pathlib import Path

TOLERANCES = {
    "fps": ("max(1 fps, 10 %)", lambda r, v: abs(r - v) <= max(1.0, 0.10 * abs(r))),
    "freezes": ("+-2 per call", lambda r, v: abs(r - v) <= 2),
    "delay_mean_ms": ("max(30 ms, 20 %)", lambda r, v: abs(r - v) <= max(30.0, 0.20 * abs(r))),
    "psnr_db": ("1.0 dB", lambda r, v: abs(r - v) <= 1.0),
}
"""Metric -> (stated tolerance, check(real, virtual)). Chosen before measuring: a real-time call on an
idle host repeats within about these bounds (timer jitter, thread hand-offs, RTCP timing)."""


def _metrics(result, direction: str) -> dict:
    v = result.video[direction]
    return {"fps": v.fps_mean, "freezes": v.freeze_count, "delay_mean_ms": v.delay.mean_ms, "psnr_db": v.psnr_db}


def run_pair(profile_name: str, line_name: str, duration_s: float, seed: int) -> dict:
    """One real-time and one virtual-time call of the same configuration; returns both metric sets."""
    from emulators.call import run_emulated_call
    from emulators.config import DEFAULT_LOOP_LENGTH_M, CallConfig
    from twin.line import AdslLine, get_offer
    from twin.profiles import get_profile

    out: dict = {"profile": profile_name, "line": line_name}
    for clock in ("real", "virtual"):
        config = CallConfig(line=AdslLine(get_offer(line_name), DEFAULT_LOOP_LENGTH_M), profile=get_profile(profile_name),
                            duration_s=duration_s, scan_kb=0, print_kb=0, seed=seed, clock=clock, compute_ssim=False)
        load0 = os.getloadavg()[0]
        result = run_emulated_call(config)
        out[clock] = {d: _metrics(result, d) for d in ("up", "down")}
        out[clock]["wall_s"] = result.wall_s
        out[clock]["cpu_s"] = result.wall.cpu_s
        out[clock]["load_avg_1min"] = load0
        out[clock]["errors"] = list(result.errors)
    return out


def _fmt(value, spec: str) -> str:
    # emulators.call has the same helper, but importing it (aiortc) would slow --from-json by a second
    return "n/a" if value is None else format(value, spec)


def markdown(rows: list[dict], command: str, duration_s: float) -> str:
    """The agreement report in markdown: ``rows`` from :func:`run_pair` (or a saved JSON), each cell
    real / virtual with a ``!`` outside :data:`TOLERANCES`, the count within tolerance, the ``command``
    that made it and a short reading."""
    lines = [
        "# Virtual time against real time",
        "",
        f"Produced by `{command}` on {_dt.date.today().isoformat()} ({os.cpu_count()} cores).",
        "",
        f"Each row: one real-time call and one virtual-time call of {duration_s:.0f} s, same line, profile and "
        "seed, documents off. Real-time calls ran one at a time; the host was shared with other work, so the "
        "1-minute load average at the start of each real-time call is given (2 cores: a load above 2 means "
        "the real-time call competed for CPU). Tolerances, stated before measuring: "
        + "; ".join(f"{k} {v[0]}" for k, v in TOLERANCES.items()) + ". A cell shows real / virtual; "
        "a `!` marks a difference outside the tolerance.",
        "",
        "| profile | line | dir | fps | freezes | mean delay (ms) | PSNR (dB) | load | wall real / virtual (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    fails = 0
    cells = 0
    for row in rows:
        for d in ("up", "down"):
            r, v = row["real"][d], row["virtual"][d]
            out = []
            for key, spec in (("fps", ".1f"), ("freezes", "d"), ("delay_mean_ms", ".0f"), ("psnr_db", ".1f")):
                ok = r[key] is not None and v[key] is not None and TOLERANCES[key][1](r[key], v[key])
                both_none = r[key] is None and v[key] is None
                cells += 1
                if not (ok or both_none):
                    fails += 1
                out.append(f"{_fmt(r[key], spec)} / {_fmt(v[key], spec)}{'' if ok or both_none else ' !'}")
            lines.append(f"| {row['profile']} | {row['line']} | {d} | " + " | ".join(out)
                         + f" | {row['real']['load_avg_1min']:.1f} | {row['real']['wall_s']:.1f} / "
                           f"{row['virtual']['wall_s']:.1f} |")
    bias = [row["virtual"][d]["delay_mean_ms"] - row["real"][d]["delay_mean_ms"] for row in rows for d in ("up", "down")
            if row["virtual"][d]["delay_mean_ms"] is not None and row["real"][d]["delay_mean_ms"] is not None]
    lines += ["", f"{cells - fails} of {cells} comparisons within tolerance.", ""]
    if bias:
        import statistics

        lines += [
            "## Reading",
            "",
            f"- Mean frame delay, virtual minus real: median {statistics.median(bias):+.0f} ms, range "
            f"{min(bias):+.0f} to {max(bias):+.0f} ms. Virtual time models the encode and decode time per frame "
            "(`emulators.encoder_setup.CODING_DELAY_MS`) but not the real-time pipeline's thread hand-offs, the "
            "relay's timer lateness (about 0.5 ms per packet and direction) nor CPU contention on a busy host: a "
            "virtual-time delay is the one an idle, fast host would show.",
            "- Frame rate, PSNR and freeze counts follow the network and the encoders' rate control, which both "
            "modes run identically; freeze counts of streams at 2-4 fps are fragile (a freeze is judged against "
            "the mean of the last 30 frame gaps, so one late frame at 3 fps can make or not make a freeze).",
            "- A single real-time call per row: its own run-to-run spread on this shared host is part of each "
            "difference. The virtual-time side repeats exactly (same seed, same event digest).",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Command line (see the module docstring): run the pairs, write the markdown table and the raw JSON
    under ``results/``; ``--from-json`` rewrites the table from a saved JSON without any call."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=float, default=20.0)
    parser.add_argument("--profiles", default="gen1,gen2,aiortc-stock")
    parser.add_argument("--lines", default="adsl-512-128,adsl-2048-256")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default="docs/virtual-time-agreement.md")
    parser.add_argument("--from-json", default=None, help="Rewrite the table from a saved raw JSON (no calls).")
    args = parser.parse_args(argv)
    command = "python -m emulators.agreement " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.from_json:
        from twin.run.atomic import atomic_write_text

        saved = json.loads(Path(args.from_json).read_text())
        atomic_write_text(args.out, markdown(saved["rows"], saved["command"].strip(), args.duration_s))
        print(args.out)
        return
    rows = []
    for profile in [p.strip() for p in args.profiles.split(",") if p.strip()]:
        for line in [x.strip() for x in args.lines.split(",") if x.strip()]:
            t0 = time.perf_counter()
            rows.append(run_pair(profile, line, args.duration_s, args.seed))
            r, v = rows[-1]["real"]["up"], rows[-1]["virtual"]["up"]
            print(f"{profile} on {line}: up fps {r['fps']:.1f} / {v['fps']:.1f}, freezes {r['freezes']} / {v['freezes']}, "
                  f"delay {_fmt(r['delay_mean_ms'], '.0f')} / {_fmt(v['delay_mean_ms'], '.0f')} ms, PSNR "
                  f"{_fmt(r['psnr_db'], '.1f')} / {_fmt(v['psnr_db'], '.1f')} dB ({time.perf_counter() - t0:.0f} s)",
                  flush=True)
    from twin.run.atomic import atomic_write_json, atomic_write_text

    atomic_write_text(args.out, markdown(rows, command.strip(), args.duration_s))
    raw = Path("results") / f"virtual-time-agreement-{_dt.datetime.now():%Y%m%d-%H%M%S}.json"
    atomic_write_json(raw, json.loads(json.dumps({"command": command, "rows": rows}, default=float)))
    print(args.out)
    print(raw)


if __name__ == "__main__":
    main()
