"""Calibration sweep: real emulated calls over lines x profiles, reduced to the CSV the twin reads.

Each (line, profile) pair is one call (:func:`emulators.call.run_emulated_call`) in its own process
(``ProcessPoolExecutor``, spawn start method, one call per process: aiortc's encoder bounds are
process-wide, and one Python process tops out near one core). Calls run in virtual time by default
(:mod:`emulators.virtual_time`): deterministic for a given base seed, unaffected by how many run in
parallel, and faster than real time; the sweep reports its speed-up (call-seconds simulated per wall
second). ``clock="real"`` runs them on the wall clock through the UDP relay (then ``jobs`` must stay
within the cores, or the calls degrade each other). Rows are written to the CSV atomically after each
call completes, so an interrupted sweep keeps the finished rows.

A line is named ``OFFER`` (at :data:`emulators.config.DEFAULT_LOOP_LENGTH_M`, where every offer syncs at
its caps) or ``OFFER@LOOP_M`` (that offer on a loop of ``LOOP_M`` metres); the row's ``line`` column is
the offer name either way (what :class:`twin.quality.CalibrationTable` matches kiosk lines by).

Columns (:data:`twin.quality.CALIBRATION_COLUMNS`, meaning documented in
:class:`twin.quality.CalibrationTable`), all measured on the kiosk -> agent direction unless named:

* ``video_fps_up``: decoded frames/s at the agent over the connected part of the call;
* ``video_kbps_up``: video codec payload received by the agent, kbit/s (delivered IP bitrate of the
  video RTP packets minus :data:`twin.quality.VIDEO_PACKET_OVERHEAD_BYTES` per packet), comparable
  with an encoder bitrate;
* ``freezes_per_min_up``, ``delay_p95_ms_up`` (capture-to-decode, end to end), ``psnr_db_up``,
  ``ssim_up``: from the receiver (:mod:`emulators.metrics`); ``nan`` when no frame arrived;
* ``speech_loss_pct``: audio packets dropped on the emulated uplink (buffer, random loss, outage), %;
* ``mos_video_up``: :func:`twin.quality.g1070_video_quality` at the measured payload bitrate, frame
  rate and video packet loss (default coefficient set, as the opinion model);
* ``mos_speech``: E-model (:func:`twin.quality.emodel_rating`, :func:`twin.quality.r_to_mos`) per
  direction with Ta = mean network delay of the audio packets + :data:`twin.quality.ENDPOINT_DELAY_MS`,
  Ppl = audio drop %, Opus impairment :func:`twin.quality.opus_impairment`, random loss (BurstR 1);
  the worse direction is kept (as :class:`twin.quality.InterviewQuality` does);
* ``mos = min(mos_video_up, mos_speech)`` (the rule of :class:`twin.quality.InterviewQuality`).
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import io
import math
import multiprocessing
import time
from collections.abc import Callable
from pathlib import Path

from twin.errors import TwinInputError
from twin.vocabulary import CLOCKS

DEFAULT_LINES = ("adsl-128-64", "adsl-512-128", "adsl-1024-256", "adsl-2048-256", "adsl-max")
"""Offers swept by default: the uplinks of French ADSL 2004-2008 from 64 to 800 kbit/s."""

AUVERGNE_LINES = ("adsl-512-128@4600", "readsl-512-128@6000", "adsl-1024-256@3300", "adsl-2048-256@1500")
"""The kiosk line offers of scenarios/auvergne-2008.yaml at their typical (about median) loop lengths in
that scenario: adsl-512-128 4.1-5.2 km, readsl-512-128 5.6-6.6 km, adsl-1024-256 1.9-3.9 km,
adsl-2048-256 1.5 km. The shipped scenarios/data/auvergne-calibration.csv is this sweep (command in
scenarios/data/README.md)."""



def parse_line_spec(spec: str) -> tuple[str, float | None]:
    """``"OFFER"`` or ``"OFFER@LOOP_M"`` -> ``(offer name, loop length in m or None)``."""
    name, sep, loop = spec.strip().partition("@")
    if not sep:
        return name, None
    try:
        loop_m = float(loop)
    except ValueError:
        raise TwinInputError(f"line {spec!r}: expected OFFER@LOOP_M with LOOP_M in metres") from None
    return name, loop_m


#: Name of the calibration table in a ``twin calibrate`` output folder.
CALIBRATION_CSV = "calibration.csv"


def _nan_if_none(value) -> float:
    return math.nan if value is None else float(value)


def calibration_row(result, profile, line_label: str) -> dict:
    """Reduce one :class:`emulators.call.CallResult` to a calibration row (column meanings above)."""
    from twin.quality import (
        ENDPOINT_DELAY_MS,
        emodel_rating,
        g1070_video_quality,
        opus_impairment,
        r_to_mos,
    )

    up_video = result.video.up
    net = result.network
    fps = float(up_video.fps_mean)
    payload_kbps = float(net.up.video_payload_kbps_mean)
    video_loss = net.up.video_drop_pct
    video_loss = 100.0 if video_loss is None and up_video.frames_decoded == 0 else float(video_loss or 0.0)
    mos_video = g1070_video_quality(payload_kbps, fps, min(100.0, video_loss))
    ie, bpl = opus_impairment(profile.audio_kbps)
    speech = {}
    for direction in ("up", "down"):
        loss = net[direction].audio_drop_pct
        delivered_audio = net[direction].delivered_packets_by_kind.get("audio", 0)
        if loss is None or delivered_audio == 0:
            loss = 100.0  # no speech got through (dead line / never connected)
        delay = net[direction].queue_delay_ms.mean
        ta = (delay if delay is not None else 0.0) + ENDPOINT_DELAY_MS
        speech[direction] = (loss, r_to_mos(emodel_rating(ta, min(100.0, loss), ie, bpl)))
    mos_speech = min(m for _, m in speech.values())
    frames = up_video.frames_decoded
    config = result.config
    return {
        "profile": profile.name,
        "line": line_label,
        "up_kbps": config.sync_rate_up_kbps,
        "down_kbps": config.sync_rate_down_kbps,
        "loss_pct": config.effective_loss_pct(),
        "video_fps_up": fps,
        "video_kbps_up": payload_kbps,
        "freezes_per_min_up": float(up_video.freezes_per_min) if frames else math.nan,
        "delay_p95_ms_up": _nan_if_none(up_video.delay.p95_ms),
        "psnr_db_up": _nan_if_none(up_video.psnr_db),
        "ssim_up": _nan_if_none(up_video.ssim),
        "speech_loss_pct": speech["up"][0],
        "mos_video_up": mos_video,
        "mos_speech": mos_speech,
        "mos": min(mos_video, mos_speech),
    }


def _format(value) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def rows_to_csv(rows: list[dict]) -> str:
    """CSV text with exactly :data:`twin.quality.CALIBRATION_COLUMNS`, rows sorted by profile then uplink."""
    from twin.quality import CALIBRATION_COLUMNS

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CALIBRATION_COLUMNS)
    for row in sorted(rows, key=lambda r: (r["profile"], r["up_kbps"], r["line"])):
        writer.writerow([_format(row[c]) for c in CALIBRATION_COLUMNS])
    return buf.getvalue()


def _one_call(line_spec: str, profile_name: str, duration_s: float, seed: int, scan_kb: float,
              print_kb: float, loss_pct: float, clock: str = "virtual") -> dict:
    """Worker: one call, returns its row (runs in a child process)."""
    from emulators.call import run_emulated_call
    from emulators.config import DEFAULT_LOOP_LENGTH_M, CallConfig
    from twin.line import AdslLine, get_offer
    from twin.profiles import get_profile

    line_name, loop_m = parse_line_spec(line_spec)
    profile = get_profile(profile_name)
    line = AdslLine(get_offer(line_name), DEFAULT_LOOP_LENGTH_M if loop_m is None else loop_m)
    config = CallConfig(line=line, profile=profile, duration_s=duration_s, seed=seed, scan_kb=scan_kb,
                        print_kb=print_kb, loss_pct=loss_pct or None, clock=clock)
    result = run_emulated_call(config)
    row = calibration_row(result, profile, line_name)
    return row


def check_calibration(line_names: list[str], profile_names: list[str], *, jobs: int, duration_s: float,
                      clock: str) -> None:
    """Check a sweep's options before any call (see :func:`run_calibration`).

    Raises:
        TwinInputError: unknown line or profile, bad ``OFFER@LOOP_M``, jobs < 1, duration <= 0, unknown
            clock.
    """
    from twin.line import AdslLine, LineError, get_offer
    from twin.profiles import get_profile

    if not line_names or not profile_names:
        raise TwinInputError("calibration needs at least one line and one profile")
    for spec in line_names:
        name, loop_m = parse_line_spec(spec)
        offer = get_offer(name)
        if loop_m is not None:
            try:
                AdslLine(offer, loop_m)
            except LineError as exc:
                raise TwinInputError(f"line {spec!r}: {exc}") from None
    if clock not in CLOCKS:
        raise TwinInputError(f"--clock {clock!r}: expected one of {', '.join(CLOCKS)}")
    for name in profile_names:
        get_profile(name)
    if not isinstance(jobs, int) or jobs < 1:
        raise TwinInputError(f"--jobs {jobs!r}: need at least 1 parallel call")
    if not (isinstance(duration_s, (int, float)) and math.isfinite(duration_s) and duration_s > 0):
        raise TwinInputError(f"--duration-s {duration_s!r}: must be > 0")


def run_calibration(
    line_names: list[str],
    profile_names: list[str],
    *,
    duration_s: float = 20.0,
    jobs: int = 2,
    seed: int = 0,
    out_csv: str | Path,
    scan_kb: float = 0.0,
    print_kb: float = 0.0,
    loss_pct: float = 0.0,
    clock: str = "virtual",
    progress: Callable[[dict, int, int], None] | None = None,
    summary: dict | None = None,
) -> list[dict]:
    """Run every line x profile call, ``jobs`` at a time; write ``out_csv`` after each one.

    Documents are off by default (``scan_kb = print_kb = 0``): the table describes the interview's
    audio/video; a scan's effect is measured with ``twin emulate``. Returns the rows. If ``summary`` is
    given it receives ``calls``, ``call_s`` (call-seconds simulated), ``wall_s`` (of the whole sweep)
    and ``speedup`` = call_s / wall_s.

    Raises:
        TwinInputError: unknown line or profile, bad ``OFFER@LOOP_M``, jobs < 1, duration <= 0, unknown
        clock (checked before any call).
    """
    from twin.run.atomic import atomic_write_text

    check_calibration(line_names, profile_names, jobs=jobs, duration_s=duration_s, clock=clock)
    tasks = [(line, prof) for prof in profile_names for line in line_names]
    rows: list[dict] = []
    out = Path(out_csv)
    ctx = multiprocessing.get_context("spawn")
    wall0 = time.perf_counter()
    pool = cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, max_tasks_per_child=1)
    try:
        futures = {
            pool.submit(_one_call, line, prof, float(duration_s), seed + i, scan_kb, print_kb, loss_pct,
                        clock): (line, prof)
            for i, (line, prof) in enumerate(tasks)
        }
        for fut in cf.as_completed(futures):
            row = fut.result()
            rows.append(row)
            atomic_write_text(out, rows_to_csv(rows))
            if progress is not None:
                progress(row, len(rows), len(tasks))
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if summary is not None:
        wall_s = time.perf_counter() - wall0
        call_s = float(duration_s) * len(rows)
        summary.update({"calls": len(rows), "call_s": call_s, "wall_s": wall_s, "jobs": jobs, "clock": clock,
                        "speedup": call_s / wall_s if wall_s > 0 else None})
    return rows
