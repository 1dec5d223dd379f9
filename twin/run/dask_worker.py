"""Preload of twin's local Dask workers (``distributed.worker.preload``): tie each worker to its parent.

Linux's ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` asks the kernel to kill the worker when its parent process
dies (the forkserver, which itself exits when twin exits, even after ``kill -9``): no worker outlives a
run. SIGINT and SIGHUP are ignored (the forkserver already passes them down ignored; this makes it so
for workers Dask may start otherwise): the parent decides what to keep of a run.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import signal

#: ``PR_SET_PDEATHSIG`` from <linux/prctl.h>.
PR_SET_PDEATHSIG = 1


def die_with_parent() -> bool:
    """Ask the kernel to SIGKILL this process when its parent dies. False where prctl is missing."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return False


def dask_setup(worker: object) -> None:
    """Dask's preload hook, run in each worker process as it starts."""
    die_with_parent()
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)


__all__ = ["PR_SET_PDEATHSIG", "dask_setup", "die_with_parent"]
