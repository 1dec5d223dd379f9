"""Calendar arithmetic shared by the planners (phases start on dates a whole number of years apart)."""

from __future__ import annotations

import datetime as dt

__all__ = ["add_years"]


def add_years(day: dt.date, years: int) -> dt.date:
    """The same day ``years`` calendar years later (earlier if negative); 29 February becomes 28 February
    in a year that has none.

    Args:
        day: the date.
        years: whole years to add.

    Raises:
        ValueError: the result is outside the years 1..9999 that :class:`datetime.date` holds.
    """
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)
