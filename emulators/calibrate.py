"""Calibration sweep: real emulated calls over lines x profiles, reduced to the CSV the twin reads.

Each (line, profile) pair is one call (:func:`emulators.call.run_emulated_call`) in its own process
(spawned, one task per process: aiortc's encoder bounds are process-wide, and one Python process tops
out near one core; a signal terminates the running ones and keeps the finished rows). Calls run in virtual time by default
(:mod:`emulators.virtual_time`): deterministic for a given base seed, unaffected by how many run in
parallel, and faster than real time; the sweep reports its speed-up (call-seconds simulated per wall
second). ``clock="real"`` runs them on the wall clock through the UDP relay (then ``jobs`` must stay
within the cores, or the calls degrade each other). Rows are written to the CSV atomically after each
call completes, so an interrupted sweep keeps the finished rows.

A line is named ``OFFER`` (at :data:`emulators.config.DEFAULT_LOOP_LENGTH_M`, where every offer syncs at
its caps) or ``OFFER@LOOP_M`` (that offer on a loop of ``LOOP_M`` metres); the row's ``line`` column is
the offer name either way (what :class:`twin.quality.CalibrationTable` matches kiosk lines by). A
``/SHARE`` suffix (``adsl-2048-256@1500/4``) runs SHARE concurrent calls through that one line (the
booths of a town hall: ``twin emulate --calls SHARE --shared-line``, one loop, the same two LinkQueues)
and writes one row per call with column ``share`` = SHARE: what the table needs to score a line shared
by booths, measured where the model's shared-link rule (:meth:`twin.line.Link.shared_by`) only
approximates it.

Columns (:data:`twin.quality.CALIBRATION_COLUMNS`, meaning documented in
:class:`twin.quality.CalibrationTable`), per direction (``_up`` kiosk -> agent, ``_down`` agent -> kiosk):
measurements only, the scores are computed by the twin (:func:`twin.quality.score_call`) from them:

* ``video_fps_*``: good frames/s at the receiver over the connected part of the call;
* ``video_kbps_*``: video codec payload delivered, kbit/s (IP bitrate of the video RTP packets minus
  :data:`twin.quality.VIDEO_PACKET_OVERHEAD_BYTES` per packet);
* ``pauses_*``, ``delay_p95_ms_*`` (capture-to-decode): from the receiver (:mod:`emulators.metrics`);
* ``video_mos_*``: EvalVid's mean MOS over the displayed frames (:attr:`emulators.metrics.VideoSummary.video_mos`;
  1 when no frame arrived);
* ``audio_loss_pct_*``: audio packets dropped on the emulated line (buffer, random loss, outage), %;
  ``audio_delay_ms_*``: mean delay the line added to delivered packets, ms;
* ``pesq_*``: P.862.2 PESQ of the decoded speech (:mod:`emulators.speech`);
* ``scan_s``, ``print_s``: document completion, s, or when the call ended first the size over the
  measured goodput (projected); nan without documents.

Each call sends the profile at the operating point measured for the line's uplink
(:func:`twin.profiles.profile_for_line`: the video cap of docs/operating-points.md).

Sweep (:func:`sweep_specs`): every offer of :data:`twin.line.OFFERS` at the shortest, middle and longest
loop of its reach (:func:`offer_reach_m`), ``seeds`` calls each without documents; a scan and a print in
flight on each offer at its middle loop; random loss on one line.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import math
import multiprocessing
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing import connection as mp_connection
from pathlib import Path
from typing import Any

from twin.errors import TwinInputError
from twin.vocabulary import CLOCKS

AUVERGNE_LINES = ("adsl-512-128@4600", "readsl-512-128@6000", "adsl-1024-256@3300", "adsl-2048-256@1500")
"""The kiosk line offers of scenarios/auvergne-2008.yaml at their typical (about median) loop lengths in
that scenario: adsl-512-128 4.1-5.2 km, readsl-512-128 5.6-6.6 km, adsl-1024-256 1.9-3.9 km,
adsl-2048-256 1.5 km (``twin calibrate --lines auvergne``). The shipped
scenarios/data/auvergne-calibration.csv is the full sweep instead (:func:`sweep_specs`; command in
scenarios/data/README.md)."""



def parse_line_spec(spec: str) -> tuple[str, float | None]:
    """``"OFFER"`` or ``"OFFER@LOOP_M"`` -> ``(offer name, loop length in m or None)`` (a ``/SHARE``
    suffix, :func:`parse_shared_line_spec`, is refused here)."""
    name, loop_m, share = parse_shared_line_spec(spec)
    if share != 1:
        raise TwinInputError(f"line {spec!r}: a share (/N) is only for twin calibrate")
    return name, loop_m




def parse_shared_line_spec(spec: str) -> tuple[str, float | None, int]:
    """``"OFFER[@LOOP_M][/SHARE]"`` -> ``(offer name, loop length in m or None, share)``: ``/SHARE``
    measures SHARE concurrent calls through the line (default 1)."""
    from twin.quality import MAX_CALIBRATION_SHARE

    head, slash, share_text = spec.strip().partition("/")
    share = 1
    if slash:
        digits = share_text.strip()
        share = int(digits) if re.fullmatch(r"[0-9]{1,4}", digits) else 0  # no "2_0", no non-ASCII digits
        if not 1 <= share <= MAX_CALIBRATION_SHARE:
            raise TwinInputError(f"line {spec!r}: expected OFFER@LOOP_M/SHARE with SHARE an integer in "
                                 f"1..{MAX_CALIBRATION_SHARE}, got {share_text!r}")
    name, sep, loop = head.partition("@")
    if not sep:
        return name, None, share
    try:
        loop_m = float(loop)
    except ValueError:
        raise TwinInputError(f"line {spec!r}: expected OFFER@LOOP_M with LOOP_M in metres") from None
    return name, loop_m, share


#: Name of the calibration table in a ``twin calibrate`` output folder.
CALIBRATION_CSV = "calibration.csv"


def _nan_if_none(value) -> float:
    return math.nan if value is None else float(value)


def _document_s(doc) -> float:
    """Completion time of a document, s; projected from its goodput when the call ended first; nan when
    no document was sent or nothing of it arrived."""
    if doc.size_kb <= 0:
        return math.nan
    if doc.complete and doc.duration_s is not None:
        return float(doc.duration_s)
    if doc.goodput_kbps:
        return doc.size_kb * 8.0 / doc.goodput_kbps
    return math.nan


def calibration_row(result, profile, line_label: str, loop_length_m: float, seed: int, documents: bool,
                    share: int = 1) -> dict:
    """Reduce one :class:`emulators.call.CallResult` to a calibration row (column meanings above); ``share``:
    the line was emulated as one of that many concurrent calls sees it."""
    net = result.network
    config = result.config
    row = {"profile": profile.name, "line": line_label, "loop_length_m": float(loop_length_m),
           "up_kbps": config.sync_rate_up_kbps, "down_kbps": config.sync_rate_down_kbps,
           "loss_pct": config.effective_loss_pct(), "documents": int(documents), "seed": int(seed),
           "share": int(share)}
    for d in ("up", "down"):
        video, audio = result.video[d], result.audio[d]
        row[f"video_fps_{d}"] = float(video.fps_mean)
        row[f"video_kbps_{d}"] = float(net[d].video_payload_kbps_mean)
        row[f"pauses_{d}"] = int(video.pause_count)
        row[f"delay_p95_ms_{d}"] = _nan_if_none(video.delay.p95_ms)
        row[f"video_mos_{d}"] = float(video.video_mos) if video.video_mos is not None else 1.0
        loss = net[d].audio_drop_pct
        row[f"audio_loss_pct_{d}"] = 100.0 if loss is None else float(loss)
        row[f"audio_delay_ms_{d}"] = _nan_if_none(net[d].queue_delay_ms.mean)
        speech = audio.speech
        row[f"pesq_{d}"] = _nan_if_none(speech.pesq_mos if speech is not None else None)
    row["scan_s"] = _document_s(result.documents.scan)
    row["print_s"] = _document_s(result.documents.print)
    from twin.quality import CALIBRATION_COLUMNS

    return {c: row[c] for c in CALIBRATION_COLUMNS}


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
    for row in sorted(rows, key=lambda r: (r["profile"], r["line"], r["loop_length_m"], r["share"], r["loss_pct"],
                                           r["documents"], r["seed"])):
        writer.writerow([_format(row[c]) for c in CALIBRATION_COLUMNS])
    return buf.getvalue()


DOCUMENT_SCAN_KB = 300.0
"""Scan sent in the calls with documents, KB: the default of ``twin emulate`` (a payslip scanned)."""

DOCUMENT_PRINT_KB = 100.0
"""Print sent back in the calls with documents, KB (``twin emulate``'s default)."""

SWEEP_LOSS_PCT = 2.0
"""Random loss of the sweep's lossy case, % (CHOICE: a poor copper pair; docs/facts.md)."""

SWEEP_LOSSY_LINE = "adsl-512-128"
"""Offer of the lossy case: the generation-1 line of the Auvergne network."""


def offer_reach_m(offer: str, step_m: float = 250.0) -> tuple[float, float]:
    """Shortest and longest loop (m, on a ``step_m`` grid from 250 m to 8 km) on which the offer syncs."""
    from twin.line import AdslLine, LineError

    ok = []
    for i in range(1, int(8000 / step_m) + 1):
        try:
            AdslLine(offer, i * step_m)
        except LineError:
            continue
        ok.append(i * step_m)
    if not ok:
        raise TwinInputError(f"offer {offer!r} syncs on no loop up to 8 km")
    return ok[0], ok[-1]


def sweep_specs(profiles: list[str], seeds: int, offers: list[str] | None = None,
                documents: bool = True, lossy: bool = True) -> list[tuple[str, str, float, bool, int]]:
    """The full calibration sweep as ``(OFFER@LOOP_M, profile, loss %, documents, seed index)`` tasks
    (see the module docstring)."""
    from twin.line import OFFERS

    tasks = []
    for name in offers or list(OFFERS):
        lo, hi = offer_reach_m(name)
        mid = round((lo + hi) / 2 / 250.0) * 250.0
        for prof in profiles:
            for loop in dict.fromkeys((lo, mid, hi)):
                tasks += [(f"{name}@{loop:g}", prof, 0.0, False, k) for k in range(seeds)]
            if documents:
                tasks += [(f"{name}@{mid:g}", prof, 0.0, True, k) for k in range(seeds)]
            if lossy and name == SWEEP_LOSSY_LINE:
                tasks += [(f"{name}@{mid:g}", prof, SWEEP_LOSS_PCT, False, k) for k in range(seeds)]
    return tasks


def _one_call(line_spec: str, profile_name: str, duration_s: float, seed: int, loss_pct: float, documents: bool,
              clock: str = "virtual") -> list[dict]:
    """Worker: the call of a task (``OFFER@LOOP_M/SHARE``: SHARE concurrent calls through the one line,
    seeds ``seed``...), returns its rows (runs in a child process)."""
    from emulators.call import run_emulated_call
    from emulators.config import DEFAULT_LOOP_LENGTH_M, CallConfig
    from emulators.group import call_configs, run_calls
    from twin.line import AdslLine, get_offer
    from twin.profiles import get_profile, profile_for_line

    line_name, loop_m, share = parse_shared_line_spec(line_spec)
    loop_m = DEFAULT_LOOP_LENGTH_M if loop_m is None else loop_m
    profile = get_profile(profile_name)
    line = AdslLine(get_offer(line_name), loop_m)
    config = CallConfig(line=line, profile=profile_for_line(profile, line.sync_rate_up_kbps), duration_s=duration_s, seed=seed,
                        scan_kb=DOCUMENT_SCAN_KB if documents else 0.0,
                        print_kb=DOCUMENT_PRINT_KB if documents else 0.0, loss_pct=loss_pct or None, clock=clock)
    if share == 1:
        return [calibration_row(run_emulated_call(config), profile, line_name, loop_m, seed, documents)]
    results = run_calls(call_configs(config, share), shared_line=True)
    return [calibration_row(r, profile, line_name, loop_m, r.config.seed, documents, share) for r in results]


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
        name, loop_m, _ = parse_shared_line_spec(spec)
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
    tasks: list[tuple[str, str, float, bool, int]],
    *,
    duration_s: float = 20.0,
    jobs: int = 2,
    seed: int = 0,
    out_csv: str | Path,
    clock: str = "virtual",
    progress: Callable[[dict, int, int], None] | None = None,
    summary: dict | None = None,
) -> list[dict]:
    """Run every task ``(OFFER[@LOOP_M], profile, loss %, documents, seed index)`` (:func:`sweep_specs`
    builds the full sweep), ``jobs`` at a time; write ``out_csv`` after each call. Task ``i`` gets seed
    ``seed`` + the calls of the tasks before it (``seed + i`` when every task is one call; a task
    ``OFFER@LOOP_M/N`` takes N seeds): same tasks and seed, same CSV, no seed twice. Returns the rows. If ``summary`` is given
    it receives ``calls``, ``call_s`` (call-seconds simulated), ``wall_s`` (of the whole sweep) and
    ``speedup`` = call_s / wall_s.

    Raises:
        TwinInputError: unknown line or profile, bad ``OFFER@LOOP_M``, jobs < 1, duration <= 0, unknown
        clock (checked before any call).
    """
    from twin.run.atomic import atomic_write_text

    check_calibration(sorted({t[0] for t in tasks}), sorted({t[1] for t in tasks}), jobs=jobs,
                      duration_s=duration_s, clock=clock)
    rows: list[dict] = []
    out = Path(out_csv)
    wall0 = time.perf_counter()
    shares = [parse_shared_line_spec(t[0])[2] for t in tasks]
    first_seed = [seed + n for n in itertools.accumulate([0, *shares[:-1]])]  # a group of N calls takes N seeds
    n_rows = sum(shares)

    def finished(task_rows: list[dict]) -> None:
        for row in task_rows:
            rows.append(row)
            if progress is not None:
                progress(row, len(rows), n_rows)
        atomic_write_text(out, rows_to_csv(rows))

    _run_in_processes([(line, prof, float(duration_s), first_seed[i], loss, docs, clock)
                       for i, (line, prof, loss, docs, _k) in enumerate(tasks)], jobs, finished)
    if summary is not None:
        wall_s = time.perf_counter() - wall0
        call_s = float(duration_s) * len(rows)
        summary.update({"calls": len(rows), "call_s": call_s, "wall_s": wall_s, "jobs": jobs, "clock": clock,
                        "speedup": call_s / wall_s if wall_s > 0 else None})
    return rows


_PARENT_SIGNALS = {signal.SIGINT, signal.SIGHUP}
"""Signals a calibration child leaves to its parent (which terminates it)."""
_HELD_SIGNALS = {signal.SIGINT, signal.SIGHUP, signal.SIGTERM}


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """While a child is spawned: SIGINT, SIGHUP and SIGTERM blocked in this thread (the mask survives
    exec: the child is born with them blocked and unblocks them once it has set its own policy) and,
    should another thread of this process take one, only recorded; raised again once the child is
    started. A signal inside ``Process.start`` left a half-launched child printing a traceback."""
    main = threading.current_thread() is threading.main_thread()
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: caught.append(signum))
                for sig in _HELD_SIGNALS} if main else {}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # what waited fires now, into `caught`
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(caught):
            signal.raise_signal(sig)


def _calibration_child(conn, args: tuple) -> None:
    """One task (:func:`_one_call`) in its own process: dies with its parent, leaves signals to it (the
    parent terminates the children it no longer wants), sends its rows or its error back."""
    from emulators.coding_worker import die_with_parent

    die_with_parent()
    for sig in _PARENT_SIGNALS:  # a terminal's Ctrl-C reaches the whole group: the parent acts
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD_SIGNALS)  # blocked since birth (_signals_held)
    try:
        conn.send(("ok", _one_call(*args)))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def _run_in_processes(task_args: list[tuple], jobs: int, finished: Callable[[list[dict]], None]) -> None:
    """Each task's :func:`_one_call` in a fresh spawned process (aiortc's encoder bounds are process-wide),
    ``jobs`` at a time; ``finished(rows)`` as each ends. On a signal or a failed task the processes still
    running are terminated (their calls are lost, finished rows are kept) and the exception propagates.
    Plain processes and pipes: a ``ProcessPoolExecutor`` with ``max_tasks_per_child`` stopped by a signal
    waited forever, or its manager thread and the resource tracker printed tracebacks (CPython 3.11)."""
    ctx = multiprocessing.get_context("spawn")
    pending = list(enumerate(task_args))
    running: dict[int, tuple[Any, Any]] = {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                index, args = pending.pop(0)
                parent, child = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_calibration_child, args=(child, args), name=f"twin-calibrate-{index}")
                with _signals_held():  # a signal held here is raised on leaving, the child already counted
                    proc.start()
                    child.close()
                    running[index] = (proc, parent)
            ready = mp_connection.wait([conn for _, conn in running.values()])
            for index in [i for i, (_, conn) in running.items() if conn in ready]:
                proc, conn = running.pop(index)
                try:
                    status, payload = conn.recv()
                except EOFError:
                    status, payload = "error", f"the process of call {index} died (exit code {proc.exitcode})"
                proc.join()
                if status != "ok":
                    raise RuntimeError(payload)
                finished(payload)
    finally:
        for proc, _ in running.values():
            proc.terminate()
        for proc, _ in running.values():
            proc.join(timeout=10.0)


def verify_line(offer: str, loop_length_m: float, profile_name: str, *, duration_s: float = 20.0, seed: int = 0,
                documents: bool = True, jobs: int = 2) -> list[dict]:
    """Emulate ``profile_name`` on ``offer`` at ``loop_length_m`` in virtual time: one call without
    documents and, if ``documents``, one with a scan and a print in flight; returns their calibration rows
    (read them with :class:`twin.quality.CalibrationTable` to score them as the twin does)."""
    tasks = [(f"{offer}@{loop_length_m:g}", profile_name, 0.0, False, 0)]
    if documents:
        tasks.append((f"{offer}@{loop_length_m:g}", profile_name, 0.0, True, 0))
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return run_calibration(tasks, duration_s=duration_s, jobs=jobs, seed=seed, out_csv=Path(tmp) / CALIBRATION_CSV)


def summary_markdown(table, profiles=("gen1", "gen2")) -> str:
    """A Markdown table of a calibration table's points (means over the calls without documents, MOS with
    its 95 % CI half-width, usable share; scan time with documents), for docs/quality.md."""
    from twin.profiles import get_profile

    head = ("| profile | line | loop m | loss % | calls | fps up/down | p95 delay up/down ms | PESQ up/down "
            "| speech MOS up/down | video MOS up/down | MOS (95 % CI) | usable | scan s |")
    out = [head, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in profiles:
        for p in table.points(get_profile(name)):
            m, ci = p.mean, p.ci95.get("mos")
            scan = p.with_documents.get("scan_s") if p.with_documents else None
            out.append(
                f"| {p.profile} | {p.line} | {p.loop_length_m:g} | {p.loss_pct:g} | {p.seeds} "
                f"| {m['video_fps_up']:.1f}/{m['video_fps_down']:.1f} | {m['delay_p95_ms_up']:.0f}/{m['delay_p95_ms_down']:.0f} "
                f"| {m['pesq_up']:.2f}/{m['pesq_down']:.2f} | {m['speech_mos_up']:.2f}/{m['speech_mos_down']:.2f} "
                f"| {m['video_mos_up']:.2f}/{m['video_mos_down']:.2f} | {m['mos']:.2f} ± {ci or 0:.2f} "
                f"| {p.usable_share:.0%} | {'' if scan is None else f'{scan:.0f}'} |")
    return "\n".join(out) + "\n"
