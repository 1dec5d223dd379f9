"""The ``twin`` command line: thin click commands that parse, call one library function, print.

Bad input (:class:`twin.errors.TwinInputError`) is reported as one paragraph on stderr with exit status
2 and no traceback. Sub-commands living in other packages (emulators, planners) are imported lazily so
that ``twin run`` does not pay for importing aiortc.
"""

from __future__ import annotations

import importlib
import sys

import click

from twin.errors import TwinInputError

# name -> "module:attribute" of a click command, imported on first use.
_LAZY_COMMANDS: dict[str, str] = {
    "run": "twin.commands:run_command",
    "schema": "twin.commands:schema_command",
    "emulate": "emulators.cli:emulate_command",
    "calibrate": "emulators.cli:calibrate_command",
    "plan": "planners.cli:plan_group",
    "compare": "twin.compare_cli:compare_command",
    "report": "twin.compare_cli:report_command",
}


class _LazyGroup(click.Group):
    """A click group whose commands are imported only when invoked (or listed in --help)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in _LAZY_COMMANDS if self._load(name) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = _LAZY_COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
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


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``twin`` script: runs the CLI, turning bad input into exit status 2."""
    try:
        cli.main(args=argv, prog_name="twin", standalone_mode=False)
    except TwinInputError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if exc.exit_code in (1, 2) else exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(0)


if __name__ == "__main__":
    main()
