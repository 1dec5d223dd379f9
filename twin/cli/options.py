"""Options every command shares, defined once so that they read the same everywhere: ``--out`` (``-o``),
``--force``, ``--no-plots``, and number types that refuse NaN and infinities."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click


class Bounded(click.ParamType):
    """A finite float in (low, high] (or [low, high] with ``low_closed``); NaN and inf are refused."""

    name = "number"

    def __init__(self, low: float, high: float, low_closed: bool = False) -> None:
        self.low, self.high, self.low_closed = low, high, low_closed

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        """Click's conversion: the number, or a usage error naming the option and the range."""
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        above = number >= self.low if self.low_closed else number > self.low
        if not (math.isfinite(number) and above and number <= self.high):
            bracket = "[" if self.low_closed else "("
            self.fail(f"{value!r} is not a finite number in {bracket}{self.low:g}, {self.high:g}]", param, ctx)
        return number


class NamedChoice(click.Choice):
    """A choice among names, listed in ``--help``; a wrong value is reported as ``unknown <what> 'x';
    expected one of a, b, c``."""

    def __init__(self, choices: list[str] | tuple[str, ...], what: str) -> None:
        super().__init__(list(choices))
        self.what = what

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The value if it is one of the choices, else a usage error naming it and the choices."""
        if value in self.choices:
            return value
        self.fail(f"unknown {self.what} {value!r}; expected one of {', '.join(map(str, self.choices))}", param, ctx)


def out_option(what: str, *, file: bool = False, default_help: str = "", required: bool = False) -> Callable:
    """``--out``/``-o``: the folder (or file) a command writes; see :mod:`twin.run.outputs`."""
    kind = click.Path(path_type=Path)  # twin.run.outputs checks file vs folder, with the policy's messages
    default = f" (default: {default_help})" if default_help else ""
    return click.option("--out", "-o", "out", type=kind, default=None, required=required,
                        help=f"{what}{default}. Never overwritten without --force.")


def force_option(what: str = "output") -> Callable:
    """``--force``: replace an existing output that twin wrote (never anything else)."""
    return click.option("--force", is_flag=True,
                        help=f"Replace an existing {what} that twin wrote (never other files, never inputs).")


def no_plots_option() -> Callable:
    """``--no-plots`` (``--no-plot`` is accepted too): skip the PNG figures."""
    return click.option("--no-plots", "--no-plot", "no_plots", is_flag=True, help="Skip the PNG figures.")


__all__ = ["Bounded", "NamedChoice", "force_option", "no_plots_option", "out_option"]
