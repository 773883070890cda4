"""Errors a user can fix (bad input, a damaged file, missing weights), shared by the API and the CLI.

Every exception class that derives from :class:`UserFacingError` carries a message that names the
file or option at fault; the ``salrank`` command line prints it on one line and exits with code 2,
without a traceback. This module imports nothing heavy, so the command line can use it while its
parser is built.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

__all__ = ["UserFacingError", "InvalidOptionError", "check_number", "check_int"]


class UserFacingError(Exception):
    """Marker base of errors caused by the user's input; the message names the file or option."""


class InvalidOptionError(UserFacingError, ValueError):
    """A numeric option outside its allowed range (the message names the option and the range)."""


def _range_text(low, high, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high}"
    return "finite"


def check_number(name: str, value, low: float | None = None, high: float | None = None, *,
                 low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a float if it is a finite real number within the bounds, else
    :class:`InvalidOptionError` naming ``name`` and the allowed range (``low_open``/``high_open``:
    that bound is excluded)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InvalidOptionError(f"{name} must be a number {_range_text(low, high, low_open, high_open)}, "
                                 f"got {value!r}")
    v = float(value)
    bad = not math.isfinite(v)
    if low is not None and (v < low or (low_open and v == low)):
        bad = True
    if high is not None and (v > high or (high_open and v == high)):
        bad = True
    if bad:
        raise InvalidOptionError(f"{name} must be {_range_text(low, high, low_open, high_open)}, got {value!r}")
    return v


def check_int(name: str, value, low: int | None = None, high: int | None = None) -> int:
    """``value`` if it is an integer within ``[low, high]``, else :class:`InvalidOptionError`."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InvalidOptionError(f"{name} must be an integer {_range_text(low, high, False, False)}, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise InvalidOptionError(f"{name} must be an integer {_range_text(low, high, False, False)}, got {value!r}")
    return int(value)

