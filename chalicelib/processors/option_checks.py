"""Checks every processor's validate_options makes, worded the same way:
which options it takes, and whole numbers within a range."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..jobs.model import InputError


def only_known(options: Mapping[str, Any], known: Iterable[str], processor: str) -> dict[str, Any]:
    """A copy of `options`, or InputError naming the ones `processor` does not take."""
    known = set(known)
    unknown = sorted(set(options) - known)
    if unknown:
        raise InputError(f"unknown option(s) {', '.join(unknown)} for the {processor} processor; "
                         f"it takes {', '.join(sorted(known))}")
    return dict(options)


def whole_number(options: Mapping[str, Any], name: str, default: int, low: int, high: int,
                 why: str = "") -> int:
    """options[name] (or the default) as an int from low to high; text such
    as "10" counts, true and 10.5 do not."""
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit() \
            or not low <= int(value) <= high:
        raise InputError(f"options.{name} must be a whole number from {low} to {high}{why}, got {value!r}")
    return int(value)
