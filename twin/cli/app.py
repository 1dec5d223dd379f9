"""The ``twin`` command line's application (:func:`twin.cli.main` is the entry point): thin click commands
that parse, call one library function, print.

One module per family of commands (:mod:`twin.cli.run`, :mod:`twin.cli.emulate`, :mod:`twin.cli.plan`,
:mod:`twin.cli.present`), options shared through :mod:`twin.cli.options`, one policy for outputs
(:mod:`twin.run.outputs`). Bad input (:class:`twin.errors.TwinInputError`) is reported as one paragraph on
stderr with exit status 2 and no traceback. Sub-commands are imported lazily so that ``twin run`` does
not pay for importing aiortc.
"""

from __future__ import annotations

import importlib
import sys

import click

from twin.errors import TwinInputError

# name -> ("module:attribute" of a click command, imported on first use; its one-line help for the
# command list, so that ``twin --help`` imports none of them; a test keeps the two in step).
_LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("twin.cli.run:run_command",
            "Simulate SCENARIO's rollout with replications and write a run folder."),
    "schema": ("twin.cli.run:schema_command", "Print the JSON Schema of scenario files."),
    "emulate": ("twin.cli.emulate:emulate_command",
                "Run one real WebRTC call (aiortc) across an emulated ADSL line and report what each side got."),
    "calibrate": ("twin.cli.emulate:calibrate_command",
                  "Sweep lines x profiles with real emulated calls; write the calibration CSV the twin reads."),
    "sweep": ("twin.cli.sweep:sweep_command",
              "Run SWEEP (a base scenario and a grid of overrides): every point a run folder, one table of all."),
    "plan": ("twin.cli.plan:plan_group",
             ("Planners: propose kiosk placements, line offers and upgrade orders, each written as a scenario "
              "that `twin run` evaluates.")),
    "compare": ("twin.cli.present:compare_command",
                "Compare RUN folders by calendar year (the first is the reference): verdict, charts, report.html."),
    "report": ("twin.cli.present:report_command",
               "Write a self-contained HTML report (one file, images embedded) of the run in RUN_DIR."),
}


class _Stopped(Exception):
    """A signal's KeyboardInterrupt, carried past click (which would turn it into ``Abort``: "aborted",
    exit status 130 whatever the signal, after a blank line)."""

    def __init__(self, interrupt: KeyboardInterrupt) -> None:
        super().__init__(str(interrupt))
        self.interrupt = interrupt


class _LazyGroup(click.Group):
    """A click group whose commands are imported only when invoked; ``--help`` lists them from
    :data:`_LAZY_COMMANDS` without importing them."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: object) -> click.Context:
        """Parse the command line; a signal meanwhile leaves as :class:`_Stopped` (see :meth:`invoke`)."""
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except KeyboardInterrupt as exc:
            raise _Stopped(exc) from None

    def invoke(self, ctx: click.Context) -> object:
        """Invoke the command; a signal that stops it (while it imports or starts, before it handles
        signals itself) leaves as :class:`_Stopped`, so :func:`main` applies the signal policy."""
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            raise _Stopped(exc) from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in _LAZY_COMMANDS if self._available(name))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _LAZY_COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    @staticmethod
    def _available(name: str) -> bool:
        import importlib.util

        module_name = _LAZY_COMMANDS[name][0].split(":")[0]
        try:
            return importlib.util.find_spec(module_name) is not None
        except ModuleNotFoundError:  # its package is missing
            return False

    @staticmethod
    def _load(name: str) -> click.Command | None:
        entry = _LAZY_COMMANDS.get(name)
        if entry is None:
            return None
        module_name, attr = entry[0].split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # that feature is not installed in this checkout yet
                return None
            raise
        return getattr(module, attr, None)


@click.group(cls=_LazyGroup)
@click.version_option(package_name="twin")
def cli() -> None:
    """twin: digital twin of a public-service videoconference kiosk network on ADSL."""


def run_cli(argv: list[str] | None) -> None:
    """Run the CLI with the signal policy installed (:func:`twin.cli.main`), turning bad input into exit
    status 2, a signal into 128 + the signal, and every outcome into ``sys.exit``."""
    from twin.run.signals import exit_status

    try:
        _quiet_broken_pipes()  # imports rich: 0.1 s in which a signal must be handled like any other
        cli.main(args=argv, prog_name="twin", standalone_mode=False)
        sys.stdout.flush()  # a full disk shows here for output still buffered
    except TwinInputError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except _Stopped as stopped:  # SIGINT, SIGTERM or SIGHUP before the command handled signals itself
        _say_interrupted(stopped.interrupt)
        sys.exit(exit_status(stopped.interrupt))
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):  # a signal in click's own steps around the command
            _say_interrupted(exc.__cause__)
            sys.exit(exit_status(exc.__cause__))
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if exc.exit_code in (1, 2) else exc.exit_code)
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM or SIGHUP outside a command's own handling
        _say_interrupted(exc)
        sys.exit(exit_status(exc))
    except BrokenPipeError:  # the reader went away (`twin schema | head`): stop quietly
        _silence_stdout()
        sys.exit(141)
    except OSError as exc:  # a full disk, a read-only or missing folder: say which file, no traceback
        _silence_stdout()
        where = exc.filename if exc.filename is not None else "standard output"
        click.echo(f"error: cannot write {where}: {exc.strerror or exc}", err=True)
        sys.exit(2)
    sys.exit(0)


def _quiet_broken_pipes() -> None:
    """rich's consoles end the process with status 1 when the reader of standard output goes away
    (``twin compare ... | head``); twin's rule is the quiet 141 of :func:`run_cli`: make them raise
    BrokenPipeError instead."""
    from rich.console import Console

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError

    Console.on_broken_pipe = on_broken_pipe


def _say_interrupted(interrupt: KeyboardInterrupt) -> None:
    """One line on stderr: ``interrupted by SIGTERM`` (``interrupted`` for a plain Ctrl-C)."""
    from twin.run.signals import interruption_line

    click.echo(interruption_line(interrupt), err=True)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush cannot fail a second time."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
