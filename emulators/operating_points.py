"""Operating points: which video bitrate a kiosk profile should use on a line, measured on the emulator.

For a profile and a line, calls are emulated (virtual time) with the encoder's video bitrate capped at
each value of a grid (``video_max_kbps``; the start bitrate at the cap, the floor at the profile's
floor or the cap if lower), without documents and with a scan and a print in flight. The operating
point is the highest cap whose calls meet the target (:data:`DEFAULT_TARGET`): without a document,
video >= 80 % of the profile's frame rate both ways and p95 one-way delay <= 400 ms both ways (ITU-T
G.114); with a document in flight, no pause and video >= 80 % of the frame rate both ways (the delay
then is the document's queue, reported, not required). None when no cap meets it: the line cannot carry
the profile. Rows are calibration rows (:func:`emulators.calibrate.calibration_row`) plus the cap.

``python -m emulators.operating_points`` runs the sweep recorded in docs/operating-points.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import csv
import io
import math
import multiprocessing
import sys
import time
from dataclasses import dataclass, replace

GEN1_CAPS_KBPS = (16.0, 24.0, 32.0, 48.0, 64.0, 96.0, 128.0)
"""Video caps tried for generation 1 (VP8 320x240@15), kbit/s."""

GEN2_CAPS_KBPS = (64.0, 96.0, 128.0, 192.0, 256.0, 384.0, 512.0, 768.0)
"""Video caps tried for generation 2 (H.264 CIF@25), kbit/s."""

SWEEP_LINES = ("adsl-128-64@3500", "adsl-512-128@3500", "adsl-1024-256@3500", "adsl-max@3500")
"""One line per uplink rate of the offers (64, 128, 256, 800 kbit/s), mid-reach."""


@dataclass(frozen=True)
class Target:
    """What a cap must give (module docstring)."""

    min_fps_share: float = 0.8
    max_delay_p95_ms: float = 400.0

    def met(self, row: dict, frame_rate_fps: float) -> bool:
        """Whether one call (a calibration row) meets the target."""
        fps_ok = min(row["video_fps_up"], row["video_fps_down"]) >= self.min_fps_share * frame_rate_fps
        if row["documents"]:
            return fps_ok and row["pauses_up"] == 0 and row["pauses_down"] == 0
        delays = (row["delay_p95_ms_up"], row["delay_p95_ms_down"])
        return fps_ok and all(not math.isnan(d) and d <= self.max_delay_p95_ms for d in delays)


DEFAULT_TARGET = Target()


def _cap_call(line_spec: str, profile_name: str, cap_kbps: float, documents: bool, seed: int,
              duration_s: float) -> dict:
    """Worker: one call with the profile's video capped at ``cap_kbps``; its calibration row plus the cap."""
    from emulators.calibrate import DOCUMENT_PRINT_KB, DOCUMENT_SCAN_KB, calibration_row, parse_line_spec
    from emulators.call import run_emulated_call
    from emulators.config import CallConfig
    from twin.line import AdslLine
    from twin.profiles import get_profile

    base = get_profile(profile_name)
    profile = replace(base, video_max_kbps=cap_kbps, video_start_kbps=cap_kbps,
                      video_min_kbps=min(base.video_min_kbps, cap_kbps))
    offer, loop_m = parse_line_spec(line_spec)
    config = CallConfig(line=AdslLine(offer, loop_m), profile=profile, duration_s=duration_s, seed=seed,
                        scan_kb=DOCUMENT_SCAN_KB if documents else 0.0,
                        print_kb=DOCUMENT_PRINT_KB if documents else 0.0, clock="virtual")
    row = calibration_row(run_emulated_call(config), base, offer, loop_m, seed, documents)
    return {"cap_kbps": cap_kbps, **row}


def sweep(profile_name: str, lines: tuple[str, ...], caps: tuple[float, ...], *, duration_s: float = 20.0,
          seed: int = 0, jobs: int = 2) -> list[dict]:
    """Every line x cap x (no document, documents) call, ``jobs`` at a time (call ``i`` gets seed
    ``seed + i``); rows sorted by line, documents, cap."""
    tasks = [(ln, profile_name, cap, docs) for ln in lines for docs in (False, True) for cap in caps]
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, max_tasks_per_child=1) as pool:
        futures = [pool.submit(_cap_call, ln, prof, cap, docs, seed + i, duration_s)
                   for i, (ln, prof, cap, docs) in enumerate(tasks)]
        rows = [f.result() for f in futures]
    return sorted(rows, key=lambda r: (r["up_kbps"], r["line"], r["documents"], r["cap_kbps"]))


def operating_points(rows: list[dict], frame_rate_fps: float, target: Target = DEFAULT_TARGET
                     ) -> dict[tuple[str, float], float | None]:
    """{(line, loop): operating point}: the highest cap ``c`` such that every cap up to ``c`` meets the
    target both without a document and with one in flight (one call per cap and condition: a cap that
    passes above one that fails is taken as noise, not as a point to use); None when the lowest fails."""
    by_line: dict[tuple[str, float], dict[float, bool]] = {}
    for r in rows:
        caps = by_line.setdefault((r["line"], r["loop_length_m"]), {})
        caps[r["cap_kbps"]] = caps.get(r["cap_kbps"], True) and target.met(r, frame_rate_fps)
    out: dict[tuple[str, float], float | None] = {}
    for key, caps in by_line.items():
        best = None
        for cap in sorted(caps):
            if not caps[cap]:
                break
            best = cap
        out[key] = best
    return out


def table_text(rows: list[dict], frame_rate_fps: float, target: Target = DEFAULT_TARGET) -> str:
    """A Markdown table of the sweep (one row per call) and the operating point chosen per line."""
    buf = io.StringIO()
    buf.write("| line | up kbit/s | documents | cap kbit/s | video kbit/s up | fps up/down | p95 delay up/down ms "
              "| pauses | PESQ up/down | scan s | meets target |\n|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
    for r in rows:
        buf.write(f"| {r['line']}@{r['loop_length_m']:g} | {r['up_kbps']:g} | {'yes' if r['documents'] else 'no'} "
                  f"| {r['cap_kbps']:g} | {r['video_kbps_up']:.0f} | {r['video_fps_up']:.1f}/{r['video_fps_down']:.1f} "
                  f"| {r['delay_p95_ms_up']:.0f}/{r['delay_p95_ms_down']:.0f} | {r['pauses_up']:g}/{r['pauses_down']:g} "
                  f"| {r['pesq_up']:.2f}/{r['pesq_down']:.2f} | {r['scan_s']:.0f} "
                  f"| {'yes' if target.met(r, frame_rate_fps) else 'no'} |\n")
    buf.write("\nOperating point (highest cap up to which every cap meets the target with and without a "
              "document):\n\n")
    for (line, loop), cap in operating_points(rows, frame_rate_fps, target).items():
        buf.write(f"- {line}@{loop:g}: {'none' if cap is None else f'{cap:g} kbit/s'}\n")
    return buf.getvalue()


def codec_pesq(profile, seconds: float = 12.0) -> tuple[float, float]:
    """(P.862 narrowband, P.862.2 wideband) PESQ of ``profile``'s Opus settings alone: the recording
    encoded and decoded by aiortc's Opus with the profile's bitrate, frame, channels and complexity
    (:func:`emulators.encoder_setup.encoder_limits`), no line. What the codec settings cost before any
    network."""
    import numpy as np
    from aiortc.codecs import opus as opus_module
    from aiortc.jitterbuffer import JitterFrame

    from emulators.encoder_setup import encoder_limits
    from emulators.media import speech_reference_16k, voice_frame
    from emulators.speech import score_speech

    size = int(48_000 * profile.audio_frame_ms / 1000)
    frames = []
    with encoder_limits(profile):
        encoder, decoder = opus_module.OpusEncoder(), opus_module.OpusDecoder()
        for k in range(int(seconds * 48_000 // size)):
            payloads, timestamp = encoder.encode(voice_frame(k, size))
            for payload in payloads:
                for frame in decoder.decode(JitterFrame(payload, timestamp)):
                    channels = len(frame.layout.channels)
                    frames.append((int(frame.pts), np.asarray(frame.to_ndarray()).reshape(-1, channels)[:, 0].copy()))
    score = score_speech(frames, size, len(frames), speech_reference_16k())
    return score.pesq_mos, score.pesq_wb_mos


def audio_table() -> str:
    """Markdown: codec-only PESQ of each kiosk profile and of the variants its audio settings were chosen
    among (same bitrate and frame: complexity; frame length; bitrate)."""
    from twin.profiles import get_profile

    variants = []
    for name in ("gen1", "gen2"):
        p = get_profile(name)
        variants += [(f"{name} as shipped", p),
                     (f"{name}, complexity 5", replace(p, audio_complexity=5)),
                     (f"{name}, complexity 10", replace(p, audio_complexity=10)),
                     (f"{name}, 20 ms frames", replace(p, audio_frame_ms=20.0))]
    rows = ["| Opus settings | kbit/s | frame ms | complexity | PESQ NB (P.862.1) | PESQ WB (P.862.2) |",
            "|---|---:|---:|---:|---:|---:|"]
    for label, p in variants:
        nb, wb = codec_pesq(p)
        rows.append(f"| {label} | {p.audio_kbps:g} | {p.audio_frame_ms:g} | {p.audio_complexity} | {nb:.2f} | {wb:.2f} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m emulators.operating_points --profile gen1 --csv out.csv``: run the sweep, print the table."""
    from twin.profiles import get_profile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="gen1")
    parser.add_argument("--lines", default=",".join(SWEEP_LINES))
    parser.add_argument("--caps", default=None, help="comma-separated kbit/s (default: the profile's grid)")
    parser.add_argument("--duration-s", type=float, default=20.0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--csv", default=None, help="also write the rows to this CSV")
    parser.add_argument("--audio", action="store_true", help="only the codec-only PESQ table of the Opus settings")
    args = parser.parse_args(argv)
    if args.audio:
        sys.stdout.write(audio_table())
        return 0
    profile = get_profile(args.profile)
    caps = (tuple(float(c) for c in args.caps.split(",")) if args.caps
            else GEN1_CAPS_KBPS if profile.generation == 1 else GEN2_CAPS_KBPS)
    t0 = time.perf_counter()
    rows = sweep(profile.name, tuple(args.lines.split(",")), caps, duration_s=args.duration_s, seed=args.seed,
                 jobs=args.jobs)
    sys.stdout.write(table_text(rows, profile.frame_rate_fps))
    sys.stdout.write(f"\n{len(rows)} calls of {args.duration_s:g} s in {time.perf_counter() - t0:.0f} s of wall time "
                     f"(virtual time, {args.jobs} processes)\n")
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
