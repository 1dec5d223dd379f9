"""Many concurrent emulated calls (``twin emulate --calls N``): over one shared line or separate lines, on
the real or the virtual clock.

* **One shared line** (``shared_line=True``): the N kiosks sit behind one access line; all N calls run on
  one event loop in one process (:func:`run_group`) and every relay passes its datagrams through the same
  two :class:`twin.line.LinkQueue` objects, on one clock origin. In virtual time the group is one
  deterministic process (peers at :func:`emulators.virtual_time.call_hosts`).
* **Separate lines**: each call has its own line. In virtual time each call runs as the single call
  ``twin emulate --seed SEED+i`` would (one process per call, ``processes`` at a time): the same seed gives
  the same calls whatever the number of processes. On the real clock the calls are spread over
  ``processes`` processes (default: one per core), each running its share on one loop, all started at the
  same wall-clock instant (:func:`run_calls`).

Real-time groups run lean (:class:`emulators.clocks.RealClock`): the profile of a lone real-time call
(README, "Many calls") showed aiortc's per-sample audio level and the decoder threads' hand-offs among
the largest costs; both are avoided without changing what is sent.

Signals: the group's :class:`emulators.interrupts.InterruptPolicy` stops every call of the group (they keep
their measured parts); a process of a spread group installs its own policy, and the parent forwards the
signal it received; children die with their parent (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import multiprocessing
import os
import time
from dataclasses import dataclass
from typing import Any

from emulators.call import CallSession, run_emulated_call
from emulators.clocks import clock_backend
from emulators.config import CallConfig
from emulators.encoder_setup import EncoderSettings, encoder_limits
from emulators.interrupts import InterruptPolicy
from emulators.media import load_speech
from emulators.results import CallResult
from emulators.signalling import SignalRoute

START_MARGIN_S = 6.0
"""Seconds between spawning the processes of a real-time group and their common start (they import aiortc
first: 2-5 s on a loaded 2-core host)."""


@dataclass(frozen=True)
class GroupContext:
    """What the calls of a group share, installed once: the encoder settings, the virtual-time record
    (None on the real clock) and the clock origin of every relay (loop time, s)."""

    encoder: EncoderSettings
    record: Any
    origin_s: float


def call_configs(config: CallConfig, calls: int) -> list[CallConfig]:
    """``calls`` configurations: ``config`` with seeds ``seed``, ``seed + 1``, ... (each line's random
    loss, and in virtual time the whole call, differ from call to call)."""
    return [dataclasses.replace(config, seed=config.seed + i) for i in range(calls)]


async def run_group(configs: list[CallConfig], backend, *, shared_line: bool,
                    interrupts: InterruptPolicy | None = None, capture: bool = False,
                    routes: list[SignalRoute] | None = None, paths: list[tuple[Any, Any]] | None = None
                    ) -> list[CallResult]:
    """Run ``configs`` concurrently on the running loop (of ``backend``'s clock); one profile for all.
    With ``routes`` (one per call), each call is set up through its route's signalling server. With
    ``paths`` (one ``(up, down)`` pair per call: LinkQueues or :class:`twin.line.LinkPath` objects, which
    may share hops), each call crosses its own pair instead of the shared line or its own line.

    Raises:
        ValueError: configurations with different profiles or clocks (process-wide encoder settings), or
            not one route per call.
        emulators.signalling.SignallingRefused: the server refuses a route: checked for every call before
            any call starts.
    """
    first = configs[0]
    if paths is not None and len(paths) != len(configs):
        raise ValueError(f"{len(paths)} link paths for {len(configs)} calls")
    if routes is not None and len(routes) != len(configs):
        raise ValueError(f"{len(routes)} signalling routes for {len(configs)} calls")
    for route in routes or ():
        route.server.check(route.kiosk, route.service, route.station)
    if any(c.profile != first.profile or c.clock != first.clock for c in configs):
        raise ValueError("the calls of a group share one profile and one clock")
    loop = asyncio.get_running_loop()
    load_speech()  # before the group's coding worker is forked (emulators.media.load_speech)
    with contextlib.ExitStack() as stack:
        encoder = stack.enter_context(encoder_limits(first.profile))
        record = backend.open_group(stack, first.profile, first.seed, len(configs))
        group = GroupContext(encoder=encoder, record=record, origin_s=loop.time())
        queues = first.link_queues() if shared_line else None
        sessions = [CallSession(c, backend, handle_sigint=False, capture=capture, group=group, index=i,
                                queues=queues if paths is None else paths[i],
                                route=None if routes is None else routes[i])
                    for i, c in enumerate(configs)]
        if interrupts is not None:
            def stop_all(signum: int) -> None:
                for session in sessions:
                    session._on_signal(signum)

            interrupts.during(lambda signum: loop.call_soon_threadsafe(stop_all, signum))
        try:
            return list(await asyncio.gather(*(s.run() for s in sessions)))
        finally:
            if interrupts is not None:
                interrupts.during(None)


def _run_group_now(configs: list[CallConfig], shared_line: bool, interrupts, capture: bool,
                   start_at: float | None = None) -> list[CallResult]:
    backend = clock_backend(configs[0].clock, lean=True)
    if start_at is not None:
        time.sleep(max(0.0, start_at - time.time()))
    return backend.run(lambda: run_group(configs, backend, shared_line=shared_line, interrupts=interrupts,
                                         capture=capture))


def _child(conn, configs: list[CallConfig], shared_line: bool, capture: bool, start_at: float | None,
           single: bool) -> None:
    """A process of a spread group: its own signal policy, dies with its parent, sends its results back."""
    from emulators.coding_worker import die_with_parent

    die_with_parent()
    interrupts = InterruptPolicy().install()
    try:
        if single:
            results = [run_emulated_call(c, interrupts=interrupts, capture=capture) for c in configs]
        else:
            results = _run_group_now(configs, shared_line, interrupts, capture, start_at)
        conn.send(("ok", results))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def run_calls(configs: list[CallConfig], *, shared_line: bool = False, processes: int | None = None,
              interrupts: InterruptPolicy | None = None, capture: bool = False) -> list[CallResult]:
    """Run the calls as the module docstring says; results in the order of ``configs``.

    Args:
        configs: the calls (:func:`call_configs`), one profile and one clock.
        shared_line: one line for all (one process, one loop) or a line each.
        processes: processes for separate lines (default: the cores, at most one per call).
        interrupts: the command's signal policy (each call keeps its measured part).
        capture: keep the datagrams for pcap files.

    Raises:
        RuntimeError: a process of the group failed.
    """
    if shared_line or len(configs) == 1:
        return _run_group_now(configs, shared_line, interrupts, capture)
    processes = max(1, min(len(configs), processes or os.cpu_count() or 1))
    virtual = configs[0].clock == "virtual"
    if virtual:  # one call per process, `processes` at a time: each is the call `twin emulate --seed` makes
        chunks = [[c] for c in configs]
    else:
        chunks = [configs[i::processes] for i in range(processes)]
    ctx = multiprocessing.get_context("spawn")
    results: dict[int, list[CallResult]] = {}
    pending = list(enumerate(chunks))
    running: list[tuple[int, Any, Any]] = []
    start_at = None if virtual else time.time() + START_MARGIN_S
    previous = None
    if interrupts is not None:  # forward a signal to the processes (a terminal's Ctrl-C reaches them anyway)
        def forward(signum: int) -> None:
            for _, proc, _ in running:
                with contextlib.suppress(OSError):
                    os.kill(proc.pid, signum)

        previous = interrupts
        interrupts.during(forward)
    try:
        while pending or running:
            while pending and len(running) < processes:
                index, chunk = pending.pop(0)
                parent, child = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_child, args=(child, chunk, False, capture, start_at, virtual),
                                   name=f"twin-call-group-{index}")
                proc.start()
                child.close()
                running.append((index, proc, parent))
            index, proc, conn = running[0]
            try:
                status, payload = conn.recv()
            except EOFError:
                status, payload = "error", f"the process of calls {index} died (exit code {proc.exitcode})"
            proc.join()
            running.pop(0)
            if status != "ok":
                raise RuntimeError(payload)
            results[index] = payload
    finally:
        if previous is not None:
            previous.during(None)
        for _, proc, _ in running:
            proc.terminate()
    ordered: list[CallResult | None] = [None] * len(configs)
    for index, chunk_results in results.items():
        for j, result in enumerate(chunk_results):
            ordered[configs.index(chunks[index][j])] = result
    return [r for r in ordered if r is not None]


def group_summary(results: list[CallResult], shared_line: bool) -> dict:
    """JSON-ready summary of a group: per call the good frame rate each way, p95 frame delay, cause; and
    the spread of the frame rates (worst / median, %)."""
    rows = []
    for i, r in enumerate(results, start=1):
        rows.append({"call": i, "seed": r.config.seed, "fps_up": r.video.up.fps_mean, "fps_down": r.video.down.fps_mean,
                     "p95_delay_ms_up": r.video.up.delay.p95_ms, "p95_delay_ms_down": r.video.down.delay.p95_ms,
                     "cause": r.end.cause if r.end is not None else None, "interrupted": r.interrupted,
                     "cpu_s": r.wall.cpu_s, "wall_s": r.wall.wall_s})
    fps = sorted(min(row["fps_up"], row["fps_down"]) for row in rows)
    median = fps[len(fps) // 2] if fps else 0.0
    return {"calls": len(results), "shared_line": shared_line, "clock": results[0].config.clock if results else None,
            "worst_fps": fps[0] if fps else None, "median_fps": median,
            "worst_vs_median_pct": (100.0 * fps[0] / median) if fps and median > 0 else None, "per_call": rows}


__all__ = ["GroupContext", "call_configs", "group_summary", "run_calls", "run_group"]
