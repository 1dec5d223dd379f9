"""``twin emulate`` and ``twin calibrate``: thin click commands over :mod:`emulators.call` and
:mod:`emulators.calibrate`. They parse, build a validated config, call one library function, print.

Bad options raise :class:`twin.errors.TwinInputError` (the ``twin`` entry point turns it into exit
status 2 without a traceback). A dead line is not an error: the call runs, the verdict says so, exit 0.
A Ctrl-C during ``emulate`` ends the call early, writes what was measured, and exits with status 130.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from twin.cli.options import NamedChoice, force_option, no_plots_option, out_option
from twin.errors import TwinInputError
from twin.line import JITTER_DISTRIBUTIONS, OFFERS
from twin.profiles import PROFILES
from twin.vocabulary import CLOCKS, LINE_FAMILIES, MAX_CALL_S

MAX_CALLS = 64
"""Most concurrent calls ``--calls`` accepts (64 gen1 calls are 8 times what 2 cores carry in real time)."""

if TYPE_CHECKING:
    from emulators.results import CallResult


def _print_verdict(result: CallResult, out_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, width=max(100, Console().width))
    table = Table(title="emulated call", show_lines=False)
    for col in ("direction", "fps", "freezes", "pauses", "p95 delay", "PSNR", "SSIM", "video kbit/s", "drops"):
        table.add_column(col, justify="right" if col != "direction" else "left")
    for direction, label in (("up", "kiosk->agent"), ("down", "agent->kiosk")):
        v = result.video[direction]
        n = result.network[direction]
        p95 = v.delay.p95_ms
        table.add_row(
            label,
            f"{v.fps_mean:.1f}",
            str(v.freeze_count),
            str(v.pause_count),
            "-" if p95 is None else f"{p95:.0f} ms",
            "-" if v.psnr_db is None else f"{v.psnr_db:.1f} dB",
            "-" if v.ssim is None else f"{v.ssim:.3f}",
            f"{n.video_kbps_mean:.0f}",
            f"{sum(n.packets_dropped.values())}/{n.packets_in}",
        )
    console.print(table)
    for line in result.verdict:
        click.echo(line)
    wall = result.wall
    speed = f" ({wall.speedup:.1f}x real time)" if wall.speedup else ""
    click.echo(f"{result.config.clock} clock: {result.duration_s:.0f} s of call in {wall.wall_s:.1f} s of wall "
               f"time{speed}; event digest {result.digest.sha256[:16]} ({result.digest.events} events)")
    click.echo(str(out_dir))


@click.command("emulate")
@click.option("--line", "line_name", type=NamedChoice(list(OFFERS), "line offer"), default=None,
              help="Named offer (default adsl-512-128).")
@click.option("--loop-length-m", type=float, default=None, help="Copper loop length in metres.")
@click.option("--family", type=NamedChoice(LINE_FAMILIES, "line family"), default=None,
              help="Line family with --loop-length-m.")
@click.option("--up-kbps", type=float, default=None, help="Override the uplink sync rate (kbit/s).")
@click.option("--down-kbps", type=float, default=None, help="Override the downlink sync rate (kbit/s).")
@click.option("--loss-pct", "loss_pct", multiple=True, metavar="[DIR:]PCT",
              help="Random packet loss, %: PCT on both directions, up:PCT or down:PCT on one (repeatable).")
@click.option("--burst-length", type=float, default=None,
              help="Mean loss burst (packets, 1-1000) of the both-direction --loss-pct: Gilbert-Elliott loss.")
@click.option("--gemodel", multiple=True, metavar="[DIR:]P,R,1-H,1-K",
              help="netem's 'loss gemodel' in % (R, 1-H, 1-K optional: 100-P, 100, 0).")
@click.option("--delay-ms", multiple=True, metavar="[DIR:]MS", help="One-way delay added to the line's own (netem delay).")
@click.option("--jitter-ms", multiple=True, metavar="[DIR:]MS",
              help="Random extra delay (netem delay D J); needs --reorder or --keep-order.")
@click.option("--jitter-dist", type=NamedChoice(JITTER_DISTRIBUTIONS, "jitter distribution"), default="uniform",
              show_default=True, help="uniform (+-J, netem's default), normal (sd J) or exponential (mean J).")
@click.option("--reorder/--keep-order", "reorder", default=None,
              help="With jitter: let packets overtake (netem) or keep their order (jitter only adds delay).")
@click.option("--queue-bytes", multiple=True, metavar="[DIR:]N", help="Queue limit in bytes (default: the modem buffer).")
@click.option("--queue-packets", multiple=True, metavar="[DIR:]N", help="Queue limit in packets.")
@click.option("--queue-ms", multiple=True, metavar="[DIR:]MS", help="Queue limit as the longest wait, ms.")
@click.option("--aqm", multiple=True, metavar="[DIR:]droptail|codel", help="Queue discipline (default droptail).")
@click.option("--codel-target-ms", type=float, default=5.0, show_default=True, help="CoDel TARGET (RFC 8289).")
@click.option("--codel-interval-ms", type=float, default=100.0, show_default=True, help="CoDel INTERVAL (RFC 8289).")
@click.option("--plain-ip", is_flag=True,
              help="A plain IP link: no ATM cell tax, no DSL interleaving delay (rates from --up/--down-kbps).")
@click.option("--outage", "outages", multiple=True, help="START_S:END_S line outage (repeatable).")
@click.option("--trace-up", default=None, help="mahimahi capacity trace for the uplink.")
@click.option("--trace-down", default=None, help="mahimahi capacity trace for the downlink.")
@click.option("--profile", "profile_name", type=NamedChoice(list(PROFILES), "encoder profile"), default="gen1",
              show_default=True, help="Encoder profile (twin/profiles.py).")
@click.option("--codec", default=None, help="Override the video codec (VP8 or H264).")
@click.option("--width", type=int, default=None, help="Override the frame width (px).")
@click.option("--height", type=int, default=None, help="Override the frame height (px).")
@click.option("--fps", type=float, default=None, help="Override the frame rate.")
@click.option("--max-video-kbps", type=float, default=None, help="Override the video bitrate cap (kbit/s); default: the cap measured for the line's uplink "
                   "(docs/operating-points.md), else the profile's.")
@click.option("--audio-kbps", type=float, default=None, help="Override the Opus bitrate (kbit/s).")
@click.option("--duration-s", type=float, default=20.0, show_default=True, help="Call length (s).")
@click.option("--scan-kb", type=float, default=300.0, show_default=True, help="Scanned document uploaded (KB).")
@click.option("--print-kb", type=float, default=100.0, show_default=True, help="Print sent back (KB).")
@click.option("--doc-message-bytes", type=int, default=None,
              help="Bytes per data-channel message of a document (default: 4096 when the profile paces "
                   "documents, gen1; else 16384, as browsers).")
@click.option("--doc-buffer-kb", type=float, default=64.0, show_default=True,
              help="Back-pressure: the sender waits for bufferedamountlow while bufferedAmount is above this.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the line's random loss (and, in virtual time, of every random draw of the call).")
@click.option("--clock", type=NamedChoice(CLOCKS, "clock"), default="real", show_default=True,
              help="real: real sockets on the wall clock; virtual: in-memory network on a virtual clock "
                   "(deterministic, faster than real time, immune to host load).")
@click.option("--calls", type=click.IntRange(1, MAX_CALLS), default=1, show_default=True,
              help="Concurrent calls (seeds SEED, SEED+1, ...); the folder gets call-01/, call-02/... and calls.json.")
@click.option("--shared-line/--separate-lines", default=False,
              help="With --calls: one line for all the calls (one process) or a line each (default).")
@click.option("--processes", type=click.IntRange(1, 64), default=None,
              help="With --calls on separate lines: processes to spread them over (default: the cores).")
@click.option("--pcap", "pcap_dir", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Write kiosk.pcap and agent.pcap (what each side sent and received, emulated timestamps) "
                   "and dtls-keys.log into DIR (may be the run folder).")
@out_option("Run folder", default_help="results/emulate-<UTC time>")
@force_option("run folder")
@no_plots_option()
# long: one parameter per option of the command, passed on as they are
def emulate_command(line_name, loop_length_m, family, up_kbps, down_kbps, loss_pct, burst_length, gemodel, delay_ms,
                    jitter_ms, jitter_dist, reorder, queue_bytes, queue_packets, queue_ms, aqm, codel_target_ms,
                    codel_interval_ms, plain_ip, outages, trace_up, trace_down, profile_name, codec, width, height,
                    fps, max_video_kbps, audio_kbps, duration_s, scan_kb, print_kb, doc_message_bytes, doc_buffer_kb,
                    seed, clock, calls, shared_line, processes, pcap_dir, out, force, no_plots) -> None:
    """Run one real WebRTC call (aiortc) across an emulated ADSL line and report what each side got.

    With --clock virtual the same call runs in virtual time; result.json then carries an event digest
    (SHA-256 over every network event) that is the same for the same options and seed, and everything
    outside its "wall" section is byte-identical between such runs.

    SIGINT, SIGTERM or SIGHUP end the command with exit status 130, 143 or 129 and one line on stderr;
    what the call measured is kept in the folder (result.json, "interrupted": true)."""
    from emulators.interrupts import InterruptPolicy

    interrupts = InterruptPolicy().install()
    interrupts.raise_now = True  # before the call: nothing to keep
    try:
        _emulate(interrupts, line_name, loop_length_m, family, up_kbps, down_kbps, loss_pct, burst_length, gemodel,
                 delay_ms, jitter_ms, jitter_dist, reorder, queue_bytes, queue_packets, queue_ms, aqm,
                 codel_target_ms, codel_interval_ms, plain_ip, outages, trace_up, trace_down, profile_name, codec,
                 width, height, fps, max_video_kbps, audio_kbps, duration_s, scan_kb, print_kb, doc_message_bytes,
                 doc_buffer_kb, seed, clock, calls, shared_line, processes, pcap_dir, out, force, no_plots)
    finally:
        interrupts.restore()


# long: the command's steps in order, each with what a signal at that moment leaves behind
def _emulate(interrupts, line_name, loop_length_m, family, up_kbps, down_kbps, loss_pct, burst_length, gemodel,
             delay_ms, jitter_ms, jitter_dist, reorder, queue_bytes, queue_packets, queue_ms, aqm, codel_target_ms,
             codel_interval_ms, plain_ip, outages, trace_up, trace_down, profile_name, codec, width, height, fps,
             max_video_kbps, audio_kbps, duration_s, scan_kb, print_kb, doc_message_bytes, doc_buffer_kb, seed,
             clock, calls, shared_line, processes, pcap_dir, out, force, no_plots) -> None:
    from emulators.interrupts import Interrupted, progress, signal_name

    target = out if out is not None else timestamped_path_lazy()
    existed = Path(target).exists()
    try:
        if clock == "virtual":
            from emulators.virtual_time import prepare_certificate

            prepare_certificate()  # the DTLS key is made in the background while aiortc imports
        from emulators.call import run_emulated_call
        from emulators.config import CallConfig
        from emulators.output import write_call_result
        from twin.run.outputs import check_output_folder, prepare_output_folder

        link_options = {"loss-pct": loss_pct, "gemodel": gemodel, "delay-ms": delay_ms, "jitter-ms": jitter_ms,
                        "queue-bytes": queue_bytes, "queue-packets": queue_packets, "queue-ms": queue_ms, "aqm": aqm}
        config = CallConfig.from_cli(
            link_options=link_options, jitter_dist=jitter_dist, reorder=reorder,
            line_name=line_name, loop_length_m=loop_length_m, family=family, outages=outages,
            profile_name=profile_name, codec=codec, width=width, height=height, fps=fps,
            max_video_kbps=max_video_kbps, audio_kbps=audio_kbps, up_kbps=up_kbps, down_kbps=down_kbps,
            burst_length=burst_length, plain_ip=plain_ip, codel_target_ms=codel_target_ms,
            codel_interval_ms=codel_interval_ms, trace_up=trace_up, trace_down=trace_down, duration_s=duration_s,
            scan_kb=scan_kb, print_kb=print_kb, doc_message_bytes=doc_message_bytes, doc_buffer_kb=doc_buffer_kb,
            seed=seed, clock=clock,
        )  # validated: bad options and bad traces stop here, before any folder or call
        inputs = [Path(t) for t in (trace_up, trace_down) if t]
        same = pcap_dir is not None and Path(pcap_dir).resolve() == Path(target).resolve()
        if pcap_dir is not None and not same:
            check_output_folder(pcap_dir, force=force, option="--pcap", inputs=inputs)
        folder = prepare_output_folder(target, "emulate", force=force, inputs=inputs)
        if pcap_dir is not None and not same:
            prepare_output_folder(pcap_dir, "emulate --pcap", force=force, option="--pcap", inputs=inputs)
        progress("folder")
        interrupts.pause_if_asked("folder")
        interrupts.raise_now = False  # from here a signal is handled by the call, then deferred
    except Interrupted as exc:
        if not existed:
            _discard_empty_folder(Path(target))
        click.echo(f"interrupted by {signal_name(exc.signum)} before the call started: nothing measured, "
                   "no folder kept", err=True)
        sys.exit(128 + exc.signum)
    progress("call")
    if calls > 1:
        _emulate_many(config, calls, shared_line, processes, interrupts, folder, pcap_dir, no_plots)
        return
    result = run_emulated_call(config, interrupts=interrupts, capture=pcap_dir is not None)
    progress("call-finished")
    interrupts.pause_if_asked("call-finished")
    # a signal after the call skips only the plot; an interrupted call still gets the plot of its part
    write_call_result(result, folder, plot=not no_plots and (result.interrupted or interrupts.signum is None),
                      pcap_dir=pcap_dir)
    progress("written")
    _print_verdict(result, folder)
    if interrupts.signum is not None:
        name = signal_name(interrupts.signum)
        kept = (f"the measured part of the call ({result.duration_s:.1f} of {config.duration_s:g} s)"
                if result.interrupted else "the whole call (the signal came after it; no plot)")
        click.echo(f"interrupted by {name}: {kept} is in {folder}", err=True)
        sys.exit(interrupts.exit_status)
    if result.interrupted:  # a Ctrl-C the call handled itself (no policy signal recorded)
        sys.exit(130)


def _emulate_many(config, calls: int, shared_line: bool, processes: int | None, interrupts, folder: Path,
                  pcap_dir: Path | None, no_plots: bool) -> None:
    """``--calls N``: run them (:func:`emulators.group.run_calls`), write each in ``call-NN/`` and the group's
    ``calls.json``, print one row per call; signals as for one call."""
    from rich.console import Console
    from rich.table import Table

    from emulators.group import call_configs, group_summary, run_calls
    from emulators.interrupts import progress, signal_name
    from emulators.output import write_call_result
    from twin.run.atomic import atomic_write_json

    results = run_calls(call_configs(config, calls), shared_line=shared_line, processes=processes,
                        interrupts=interrupts, capture=pcap_dir is not None)
    progress("call-finished")
    plot = not no_plots and interrupts.signum is None
    for i, result in enumerate(results, start=1):
        sub = folder / f"call-{i:02d}"
        write_call_result(result, sub, plot=plot or (not no_plots and result.interrupted),
                          pcap_dir=None if pcap_dir is None else Path(pcap_dir) / f"call-{i:02d}")
    summary = group_summary(results, shared_line)
    atomic_write_json(folder / "calls.json", summary)
    progress("written")
    table = Table(title=f"{calls} emulated calls on {'one shared line' if shared_line else 'separate lines'} "
                        f"({config.clock} clock)")
    for col in ("call", "fps up", "fps down", "p95 delay up", "p95 delay down", "end"):
        table.add_column(col, justify="left" if col == "end" else "right")
    for row in summary["per_call"]:
        table.add_row(str(row["call"]), f"{row['fps_up']:.1f}", f"{row['fps_down']:.1f}",
                      "-" if row["p95_delay_ms_up"] is None else f"{row['p95_delay_ms_up']:.0f} ms",
                      "-" if row["p95_delay_ms_down"] is None else f"{row['p95_delay_ms_down']:.0f} ms", row["cause"])
    Console(highlight=False, width=max(100, Console().width)).print(table)
    if summary["worst_vs_median_pct"] is not None:
        click.echo(f"worst call's frame rate {summary['worst_fps']:.1f} fps, {summary['worst_vs_median_pct']:.0f} % "
                   f"of the median call's {summary['median_fps']:.1f} fps")
    click.echo(str(folder))
    if interrupts.signum is not None:
        click.echo(f"interrupted by {signal_name(interrupts.signum)}: the measured part of the {calls} calls is in "
                   f"{folder}", err=True)
        sys.exit(interrupts.exit_status)


def timestamped_path_lazy() -> Path:
    """``results/emulate-<UTC time>`` (:func:`twin.run.outputs.timestamped_path`)."""
    from twin.run.outputs import timestamped_path

    return timestamped_path("emulate")


def _discard_empty_folder(folder: Path | None) -> None:
    """Remove a folder this command prepared if it holds nothing but twin's marker (never an empty --out)."""
    from twin.run.outputs import MARKER

    if folder is None or not folder.is_dir():
        return
    try:
        if all(item.name == MARKER for item in folder.iterdir()):
            for item in folder.iterdir():
                item.unlink()
            folder.rmdir()
    except OSError:
        pass


@click.command("calibrate")
@click.option("--lines", default=None,
              help="Comma-separated OFFER or OFFER@LOOP_M; a /N suffix (e.g. adsl-2048-256@1500/4) runs N calls "
                   "at once through the one line and writes a row per call, column share = N (default: the full "
                   "sweep: every offer at the shortest, middle and longest loop of its reach, documents at the "
                   "middle one, a lossy case); 'auvergne' for the Auvergne kiosk offers at their typical loop "
                   "lengths.")
@click.option("--profiles", default="gen1,gen2", show_default=True, help="Comma-separated encoder profiles.")
@click.option("--seeds", type=int, default=3, show_default=True,
              help="Calls per point (different seeds; with /N, groups of N calls per point).")
@click.option("--loss-pct", type=float, default=0.0, show_default=True, help="Random loss with --lines, %.")
@click.option("--documents/--no-documents", default=False, show_default=True,
              help="With --lines: send a 300 KB scan and a 100 KB print during each call.")
@click.option("--duration-s", type=float, default=20.0, show_default=True, help="Length of each call (s).")
@click.option("--jobs", type=int, default=None,
              help="Calls run in parallel, one process each (default: the number of cores).")
@click.option("--seed", type=int, default=0, show_default=True, help="Base seed.")
@click.option("--clock", type=NamedChoice(CLOCKS, "clock"), default="virtual", show_default=True,
              help="virtual: deterministic calls in virtual time; real: wall-clock calls through the UDP relay.")
@out_option("Output folder, holding calibration.csv", default_help="results/calibration-<UTC time>")
@force_option("calibration folder")
def calibrate_command(lines, profiles, seeds, loss_pct, documents, duration_s, jobs, seed, clock, out, force) -> None:
    """Sweep lines x profiles with real emulated calls; write the calibration CSV the twin reads."""

    from emulators.calibrate import AUVERGNE_LINES, CALIBRATION_CSV, check_calibration, run_calibration, sweep_specs
    from emulators.speech import MIN_PESQ_S
    from twin.run.outputs import prepare_output_folder, timestamped_path

    if lines == "auvergne":
        lines = ",".join(AUVERGNE_LINES)
    if jobs is None:
        jobs = (os.cpu_count() or 1) if clock == "virtual" else 2
    profile_names = [s.strip() for s in profiles.split(",") if s.strip()]
    if not (isinstance(seeds, int) and seeds >= 1):
        raise TwinInputError(f"--seeds {seeds}: need at least 1 call per point")
    if not 0 <= loss_pct <= 100:  # also rejects NaN
        raise TwinInputError(f"--loss-pct {loss_pct}: must be in [0, 100]")
    if lines is None:
        tasks = sweep_specs(profile_names, seeds)
    else:
        line_names = [s.strip() for s in lines.split(",") if s.strip()]
        check_calibration(line_names, profile_names, jobs=jobs, duration_s=duration_s, clock=clock)
        tasks = [(ln, p, loss_pct, documents, k) for p in profile_names for ln in line_names for k in range(seeds)]
    if not (duration_s > 0 and duration_s <= MAX_CALL_S):  # also rejects NaN
        raise TwinInputError(f"--duration-s {duration_s}: must be > 0 and <= {MAX_CALL_S:g} s")
    check_calibration(sorted({t[0] for t in tasks}), profile_names, jobs=jobs, duration_s=duration_s, clock=clock)
    folder = prepare_output_folder(out if out is not None else timestamped_path("calibration"), "calibrate",
                                   force=force)  # options are checked: the sweep starts now
    csv_path = folder / CALIBRATION_CSV

    def progress(row: dict, done: int, total: int) -> None:
        doc = f", scan {row['scan_s']:.0f} s" if row["documents"] else ""
        share = f"/{row['share']}" if row.get("share", 1) > 1 else ""
        pesq = (f"PESQ {row['pesq_up']:.2f}/{row['pesq_down']:.2f}"
                if not (math.isnan(row["pesq_up"]) and math.isnan(row["pesq_down"]))
                else f"PESQ not scored (under {MIN_PESQ_S:g} s of speech decoded)")
        click.echo(
            f"[{done}/{total}] {row['profile']} on {row['line']}@{row['loop_length_m']:g}{share} loss {row['loss_pct']:g}%: "
            f"{row['video_fps_up']:.1f}/{row['video_fps_down']:.1f} fps, {row['video_kbps_up']:.0f} kbit/s up, "
            f"p95 {row['delay_p95_ms_up']:.0f}/{row['delay_p95_ms_down']:.0f} ms, "
            f"{pesq}{doc}"
        )

    summary: dict = {}
    run_calibration(tasks, duration_s=duration_s, jobs=jobs, seed=seed, out_csv=csv_path,
                    clock=clock, progress=progress, summary=summary)
    calls, processes = summary["calls"], min(jobs, summary["calls"])
    click.echo(f"{calls} call{'s' if calls != 1 else ''}, {summary['call_s']:.0f} call-seconds in "
               f"{summary['wall_s']:.1f} s of wall time with {processes} process{'es' if processes != 1 else ''} "
               f"({clock} clock): speed-up {summary['speedup']:.1f}x real time")
    click.echo(str(csv_path))
