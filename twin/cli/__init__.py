"""The ``twin`` command line. This module is its entry point, :func:`main`, and nothing else: it
installs the signal policy before anything heavy is imported. The commands, click's group and the
error policy are in :mod:`twin.cli.app` (one module per family of commands beside it).

Why a bare entry point: importing click, rich and the commands' table takes 0.05-0.15 s (more on a
loaded host); a signal then got the default action (a Ctrl-C printed a KeyboardInterrupt traceback,
SIGTERM and SIGHUP killed the process) instead of the policy's 128 + signal and one line. What remains
unhandled is the interpreter's own start, before any of twin's code runs.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``twin`` script and of ``python -m twin.cli``: install the signal policy, then
    run the CLI (:func:`twin.cli.app.run_cli`: bad input exits 2, a signal 128 + the signal).

    Without ``argv`` (the ``twin`` script, ``python -m twin.cli``: the process is the command) the
    stop signals are ignored once the command has ended, so that the interpreter's teardown cannot
    turn its exit status into a death by signal (:func:`twin.run.signals.ignore_stop_signals`); with
    ``argv`` (a caller's process, tests) the caller's handlers are left alone."""
    from twin.run.signals import exit_status, ignore_stop_signals, install_default_handlers, interruption_line

    try:
        install_default_handlers()
        try:
            from twin.cli.app import run_cli
        except KeyboardInterrupt as exc:  # a signal while click, rich and the commands' table are imported
            sys.stderr.write(interruption_line(exc) + "\n")
            sys.exit(exit_status(exc))
        run_cli(argv)
    finally:
        if argv is None:
            ignore_stop_signals()


def __getattr__(name: str) -> object:
    """The application's names (``twin.cli.cli``, ...) from :mod:`twin.cli.app`, imported on first use."""
    if name.startswith("__") or name == "app":  # not a name of the application; "app" while it imports
        raise AttributeError(f"module 'twin.cli' has no attribute {name!r}")
    import importlib

    app = importlib.import_module("twin.cli.app")
    try:
        return getattr(app, name)
    except AttributeError:
        raise AttributeError(f"module 'twin.cli' has no attribute {name!r}") from None
