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


# Options the pipeline reads itself, whatever the processor: checked here once,
# before the processor sees the rest (so no processor needs to know them).
PIPELINE_OPTIONS_HELP = [
    {"name": "max_failed_percent", "type": "number", "default": 0, "advanced": True,
     "help": "Share of chunks (0-100 %) that may fail while the job still completes, with "
             "errors; above it the job fails"},
]


def pipeline_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the pipeline's own options, checked; the rest, for the processor)."""
    own = {k: v for k, v in options.items() if k not in _PIPELINE_OPTION_NAMES}
    checked = {}
    if "max_failed_percent" in options:
        checked["max_failed_percent"] = percent(options, "max_failed_percent")
    return checked, own


_PIPELINE_OPTION_NAMES = frozenset(o["name"] for o in PIPELINE_OPTIONS_HELP)


def percent(options: Mapping[str, Any], name: str) -> int | float:
    """options[name] as a number from 0 to 100; text such as "12.5" counts,
    true does not."""
    value = options.get(name)
    try:
        number = float(value) if not isinstance(value, bool) and isinstance(value, (int, float, str)) \
            else None
    except ValueError:
        number = None
    if number is None or not 0 <= number <= 100:  # NaN fails both comparisons
        raise InputError(f"options.{name} must be a number from 0 to 100, got {value!r}")
    return int(number) if number.is_integer() else number
