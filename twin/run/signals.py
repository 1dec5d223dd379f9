"""One signal policy for every command: SIGINT, SIGTERM and SIGHUP end a command with exit status
128 + the signal's number (130, 143, 129), one line on stderr, and what was done kept.

While a command works through a long loop (replications, sweep points) the signals only *request* a
stop (:class:`StopRequest`): the loop checks it between tasks, keeps what finished, writes its folder
truthfully, then exits with :attr:`Interrupted.exit_status`. A second signal while stopping raises
:class:`Interrupted` at once (the user insists: stop waiting for running tasks). Outside such loops the
entry point turns SIGTERM and SIGHUP into :class:`Interrupted` like Ctrl-C (:func:`install_default_handlers`).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

#: The signals every command handles.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """A command stopped by a signal; ``exit_status`` is 128 + its number (SIGINT 130, SIGTERM 143,
    SIGHUP 129)."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    @property
    def exit_status(self) -> int:
        """The process exit status for this signal."""
        return 128 + self.signum


def exit_status(exc: BaseException) -> int:
    """Exit status of an interruption (``KeyboardInterrupt`` without a signal number: Ctrl-C, 130)."""
    return exc.exit_status if isinstance(exc, Interrupted) else 128 + signal.SIGINT


def interruption_line(exc: BaseException) -> str:
    """The one line a command prints when a signal stops it: ``interrupted by SIGTERM`` (``interrupted``
    for a plain Ctrl-C)."""
    name = str(exc)
    return f"interrupted by {name}" if name.startswith("SIG") else "interrupted"


class StopRequest:
    """A stop asked for by a signal: the first signal's number, or None."""

    def __init__(self) -> None:
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        """A stop was asked for."""
        return self.signum is not None

    def interrupted(self) -> Interrupted:
        """The :class:`Interrupted` matching the first signal (SIGINT if none)."""
        return Interrupted(self.signum or signal.SIGINT)


@contextlib.contextmanager
def stop_on_signals(stop: StopRequest) -> Iterator[StopRequest]:
    """While the block runs, the first SIGINT, SIGTERM or SIGHUP sets ``stop``; a second one raises
    :class:`Interrupted`. Outside the main thread (signals cannot be handled there) nothing is
    installed."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.requested:
            raise Interrupted(stop.signum or signum)
        stop.signum = signum

    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def ignoring_terminal_signals() -> Iterator[None]:
    """SIGINT and SIGHUP ignored for the block (a few milliseconds): child processes started in it
    inherit the ignored dispositions, so a Ctrl-C or a hangup of the terminal, which reaches the whole
    process group, leaves them to their parent."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def install_default_handlers() -> None:
    """SIGTERM and SIGHUP raise :class:`Interrupted` in the main thread, as Ctrl-C raises
    KeyboardInterrupt (the entry point's default; long commands install :func:`stop_on_signals`)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, handler)


def ignore_stop_signals() -> None:
    """SIGINT, SIGTERM and SIGHUP ignored for the rest of the process: for the entry point, once the
    command's outcome is decided (its folder written, its exit status chosen).

    Why: while the interpreter tears down (about 0.6 s after an emulated call, freeing aiortc's, PyAV's
    and numpy's objects) Python has already put its handlers back to the default action, so a signal
    then killed a command that had finished and written everything (exit -1, -2 or -15 instead of its
    own status). An ignored signal stays ignored through the teardown; child processes are not started
    any more. Main thread only (elsewhere nothing is changed)."""
    if threading.current_thread() is threading.main_thread():
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)


__all__ = ["STOP_SIGNALS", "Interrupted", "StopRequest", "exit_status", "ignore_stop_signals",
           "ignoring_terminal_signals", "install_default_handlers", "interruption_line", "stop_on_signals"]
