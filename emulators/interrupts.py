"""One signal policy for an emulated call: SIGINT, SIGTERM and SIGHUP at any moment end the command with
exit status 128 + the signal (130, 143, 129), keeping what was measured.

:class:`InterruptPolicy` owns the three handlers (installed once, in the main thread) and knows which
phase the command is in:

* **before the call** (``raise_now``): the handler raises :class:`Interrupted`; nothing was measured and
  the command removes the folder it had prepared (never an empty ``--out`` folder);
* **during the call**: the handler asks the running call to stop (:meth:`InterruptPolicy.during`, a
  callback scheduled on the call's loop, thread-safe); the media phase ends, the peers close with bounded
  waits, and the result keeps the measured part (``interrupted``, its end's cause ``interrupted``);
* **after the call** (the default, deferred): the signal is only recorded; the finished call's
  ``result.json`` is still written (the plot is skipped if the signal came before it), then the command
  exits with 128 + the first signal.

A second signal never interrupts a write: the first one decides. :func:`signal_name` names a signal
for the results. For tests and wrappers, :func:`progress` appends the command's phases to the file named
by ``TWIN_PROGRESS_FILE``, and ``TWIN_PAUSE_AT=<phase>`` makes the command wait at that phase for a
signal, so that a test can signal a precise moment without racing the command.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from types import FrameType

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""The signals the policy handles."""

PAUSE_LIMIT_S = 120.0
"""Longest wait at ``TWIN_PAUSE_AT`` (a test that forgot to signal must not hang forever)."""


def signal_name(signum: int) -> str:
    """``"SIGTERM"`` for 15, and so on."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Interrupted(Exception):
    """A handled signal arrived before the call started: nothing was measured.

    Args:
        signum: the signal.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"interrupted by {signal_name(signum)}")


class InterruptPolicy:
    """The handlers of :data:`HANDLED_SIGNALS` and the phase they act in (module docstring).

    Attributes:
        signum: the first signal received (None: none yet).
        raise_now: raise :class:`Interrupted` from the handler (before the call).
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self.raise_now = False
        self._on_signal: Callable[[int], None] | None = None
        self._previous: dict[int, object] = {}

    def install(self) -> InterruptPolicy:
        """Install the handlers (main thread only); returns self."""
        for sig in HANDLED_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        """Put the previous handlers back."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.signum is None
        if first:
            self.signum = signum
        if self.raise_now:
            self.raise_now = False
            raise Interrupted(self.signum if self.signum is not None else signum)
        if first and self._on_signal is not None:
            self._on_signal(signum)

    def during(self, on_signal: Callable[[int], None] | None) -> None:
        """Call ``on_signal(signum)`` on the first signal from now on (None: only record it). Called at
        once if a signal already arrived."""
        self._on_signal = on_signal
        self.raise_now = False
        if on_signal is not None and self.signum is not None:
            on_signal(self.signum)

    @property
    def exit_status(self) -> int | None:
        """128 + the first signal, or None."""
        return None if self.signum is None else 128 + self.signum

    def pause_if_asked(self, phase: str) -> None:
        """Wait for a signal at ``phase`` when ``TWIN_PAUSE_AT`` names it (tests; see the module docstring)."""
        if os.environ.get("TWIN_PAUSE_AT") != phase:
            return
        deadline = time.monotonic() + PAUSE_LIMIT_S
        while self.signum is None and time.monotonic() < deadline:
            time.sleep(0.02)


def progress(phase: str) -> None:
    """Append ``phase`` to the file named by ``TWIN_PROGRESS_FILE``, if set (one line, flushed)."""
    path = os.environ.get("TWIN_PROGRESS_FILE")
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(phase + "\n")
    except OSError:
        pass
