"""Errors that the command line reports as bad input (exit status 2, one paragraph, no traceback).

Library code raises :class:`TwinInputError` (or a subclass) when the *input* is wrong: a malformed
scenario, an impossible line, a missing file, an infeasible planning request. Anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations


class TwinInputError(Exception):
    """Bad input from the user: the message names the file, the field and the value.

    Args:
        message: one paragraph saying what is wrong and, where possible, how to fix it.
        path: the file concerned, if any (shown first in the message).
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class ScenarioError(TwinInputError):
    """A scenario file that cannot be read or does not validate."""


class LineError(TwinInputError):
    """An impossible line: out of reach of the exchange, unknown offer, rate that cannot sync."""
