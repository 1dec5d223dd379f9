"""Where replications and sweep points run: in this process, or as tasks on Dask distributed.

* :class:`InlineEngine` - one task after another in this process (``--jobs 1``).
* :class:`DaskEngine` - tasks on a Dask cluster: a ``LocalCluster`` of worker processes on 127.0.0.1
  (``--jobs N``; by default as many as the CPUs this process may use), or an existing cluster
  (``--scheduler ADDRESS``). Results do not depend on the number of workers: every task carries its own
  seed, and results are recorded by task index.

No orphans: local workers are forked from a multiprocessing forkserver started with SIGINT and SIGHUP
ignored (a Ctrl-C to the terminal reaches the parent only, which decides what to keep), and each worker
asks the kernel to kill it when its parent dies (``PR_SET_PDEATHSIG``, :mod:`twin.run.dask_worker`);
the forkserver exits when twin does, even by ``kill -9``.

Stopping: :meth:`Engine.run` checks a :class:`twin.run.signals.StopRequest` between completions; on a
stop, tasks not started are cancelled and the running ones are waited for and kept.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from twin.errors import TwinInputError
from twin.run.signals import StopRequest, ignoring_terminal_signals


@dataclass(frozen=True)
class Task:
    """One unit of work: ``fn(*args)``, recorded under ``index``."""

    index: int
    fn: Callable[..., Any]
    args: tuple


class Engine(Protocol):
    """Runs tasks and hands each result to a callback as it completes."""

    name: str
    dashboard: str | None

    def share(self, obj: Any) -> Any:
        """A handle on ``obj`` that tasks receive instead of a copy each (Dask: scattered once)."""
        ...

    def run(self, tasks: Sequence[Task], on_done: Callable[[int, Any], None], stop: StopRequest) -> bool:
        """Run ``tasks``; ``on_done(index, result)`` for each in completion order (ties by index).
        Returns True when stopped early by ``stop`` (the tasks already running were kept)."""
        ...

    def close(self) -> None:
        """Release the workers."""
        ...


class InlineEngine:
    """Tasks one after another in this process."""

    name = "inline"
    dashboard: str | None = None

    def share(self, obj: Any) -> Any:
        """The object itself."""
        return obj

    def run(self, tasks: Sequence[Task], on_done: Callable[[int, Any], None], stop: StopRequest) -> bool:
        """Run the tasks in order, checking ``stop`` between them."""
        for task in tasks:
            if stop.requested:
                return True
            on_done(task.index, task.fn(*task.args))
        return stop.requested

    def close(self) -> None:
        """Nothing to release."""


def local_workers() -> int:
    """Worker processes by default: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


class DaskEngine:
    """Tasks on Dask distributed (see the module docstring).

    Args:
        workers: local worker processes (a LocalCluster on 127.0.0.1), when ``scheduler`` is None.
        scheduler: address of an existing Dask scheduler (``tcp://host:8786``) to use instead.
        connect_timeout_s: how long to try to reach ``scheduler``.

    Raises:
        TwinInputError: the scheduler cannot be reached, or workers < 1.
    """

    name = "dask"

    def __init__(self, workers: int | None = None, scheduler: str | None = None,
                 connect_timeout_s: float = 5.0) -> None:
        import dask
        from distributed import Client

        self._cluster = None
        if scheduler is not None:
            try:
                self.client = Client(scheduler, timeout=connect_timeout_s)
            except (OSError, TimeoutError, ValueError) as exc:
                raise TwinInputError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}") from None
            self.workers = len(self.client.scheduler_info().get("workers", {}))
        else:
            workers = local_workers() if workers is None else workers
            if workers < 1:
                raise TwinInputError(f"--jobs must be >= 1, got {workers}")
            with dask.config.set(_LOCAL_CONFIG):
                self._cluster = _local_cluster(workers)
                self.client = Client(self._cluster)
            self.workers = workers
        self.dashboard: str | None = self.client.dashboard_link if _has_dashboard(self._cluster, scheduler) else None

    def share(self, obj: Any) -> Any:
        """``obj`` scattered to every worker once."""
        return self.client.scatter(obj, broadcast=True, hash=False)

    def run(self, tasks: Sequence[Task], on_done: Callable[[int, Any], None], stop: StopRequest) -> bool:
        """Submit every task, record results as they complete, stop cleanly on request."""
        from distributed import wait

        futures = {self.client.submit(t.fn, *t.args, pure=False): t.index for t in tasks}
        pending = set(futures)
        while pending and not stop.requested:
            try:
                done, pending = wait(pending, timeout=0.2, return_when="FIRST_COMPLETED")
            except TimeoutError:  # nothing finished in 0.2 s: look at the stop request again
                continue
            for future in sorted(done, key=futures.__getitem__):
                on_done(futures[future], future.result())
        if not pending:
            return stop.requested
        running = _processing_keys(self.client)
        queued = [f for f in pending if f.key not in running]
        self.client.cancel(queued)
        for future in sorted((f for f in pending if f.key in running), key=futures.__getitem__):
            with contextlib.suppress(Exception):  # a task lost with its worker is simply not kept
                on_done(futures[future], future.result())
        return True

    def close(self) -> None:
        """Close the client and the local cluster (its worker processes end)."""
        with contextlib.suppress(Exception):
            self.client.close(timeout=10)
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.close(timeout=10)


#: Dask configuration of local clusters: workers forked from a forkserver, the preload that ties them to
#: their parent, no memory spilling to disk (tasks are small), quiet logs.
_LOCAL_CONFIG = {
    "distributed.worker.multiprocessing-method": "forkserver",
    "distributed.worker.preload": ["twin.run.dask_worker"],
    "distributed.worker.memory.spill": False,
    "distributed.worker.memory.target": False,
    "distributed.worker.daemon": False,
}


#: Modules the forkserver imports before forking workers.
FORKSERVER_PRELOAD = ["distributed", "twin.run.runner", "twin.run.dask_worker"]


def _local_cluster(workers: int) -> Any:
    from multiprocessing import forkserver

    from distributed import LocalCluster

    with ignoring_terminal_signals():  # the forkserver, and every worker forked from it, ignore them
        # import Dask and the model once in the forkserver (workers fork with them loaded), never the
        # caller's __main__ (a script or pytest)
        multiprocessing.get_context("forkserver").set_forkserver_preload(FORKSERVER_PRELOAD)
        forkserver.ensure_running()
    # the scheduler's HTTP server (the dashboard when bokeh is installed, else health and metrics
    # endpoints) on a free port of 127.0.0.1: two clusters at once never fight for 8787
    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                        dashboard_address="127.0.0.1:0", worker_dashboard_address=None,
                        silence_logs=logging.CRITICAL + 1)  # none: Dask logs a closing race at CRITICAL


def _has_dashboard(cluster: Any, scheduler: str | None) -> bool:
    if scheduler is not None:
        return True
    return importlib.util.find_spec("bokeh") is not None and cluster is not None


def _processing_keys(client: Any) -> set:
    """Keys of the tasks the workers are running now."""
    try:
        return {key for keys in client.processing().values() for key in keys}
    except Exception:  # noqa: BLE001 - the scheduler is gone: nothing runs
        return set()


def engine_for(jobs: int, scheduler: str | None = None) -> Engine:
    """The engine for ``--jobs`` and ``--scheduler``: Dask when a scheduler is given or jobs > 1, else
    in this process."""
    if scheduler is not None or jobs > 1:
        return DaskEngine(workers=None if scheduler else jobs, scheduler=scheduler)
    return InlineEngine()


__all__ = ["DaskEngine", "Engine", "InlineEngine", "Task", "engine_for", "local_workers"]
