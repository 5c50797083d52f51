"""Values made safe for a spreadsheet cell, one column kind at a time.

Every converter takes whatever a caller streams (a str read back from a CSV
chunk file, a float from pandas, a date, None) and returns a plain value that
openpyxl stores with the right type: int/float for numbers, date/datetime for
dates, bool for booleans, str for text, None for an empty cell.

Text is the dangerous kind. A cell whose text starts with = + - @ or a tab,
CR or LF can be taken for a formula by a spreadsheet (the OWASP "CSV
injection" list), so such text gets a leading apostrophe. Characters that XML
1.0 forbids would make openpyxl raise IllegalCharacterError halfway through a
million rows, so they are replaced with U+FFFD.
"""
from __future__ import annotations

import datetime as dt
import math
import numbers
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

KINDS = ("text", "number", "integer", "date", "bool")

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")
REPLACEMENT = "\ufffd"
# XML 1.0 allows tab, LF and CR among the C0 controls, no surrogates, and not
# U+FFFE/U+FFFF; openpyxl's own check misses the last two (the file then fails
# to encode or to open).
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# Excel keeps integers as doubles: beyond 2**53 digits would silently change,
# so such integers (IDs, mostly) are written as text.
_EXACT_INT = 2 ** 53
_TRUE = frozenset(("true", "yes", "1"))
_FALSE = frozenset(("false", "no", "0"))

Converter = Callable[[Any], Any]


def text(value: Any) -> str | None:
    """Any value as safe text; None, NaN and "" are an empty cell."""
    if value is None:
        return None
    if type(value) is not str:
        if value != value:  # NaN, NaT
            return None
        value = str(value)
    if not value:
        return None
    if _ILLEGAL_XML.search(value):
        value = _ILLEGAL_XML.sub(REPLACEMENT, value)
    if "\r" in value:  # XML readers turn CR into LF anyway; say so up front
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    if value.startswith(FORMULA_PREFIXES):
        value = "'" + value
    return value


def number(value: Any) -> Any:
    """A number stays a number (negative ones too); numeric text becomes one;
    anything else is kept as text rather than lost."""
    kind = type(value)
    if kind is float:
        return _finite(value)
    if kind is int:
        return value if -_EXACT_INT <= value <= _EXACT_INT else text(value)
    if value is None or kind is bool:
        return value
    if kind is str:
        return _parse_number(value)
    if isinstance(value, numbers.Integral):  # numpy integers
        return number(int(value))
    if isinstance(value, numbers.Real | Decimal):
        return _finite(float(value))
    return text(value)


def integer(value: Any) -> Any:
    """As `number`, with whole floats (3.0, as pandas reads an integer column
    with gaps) written as ints."""
    value = number(value)
    if type(value) is float and value.is_integer() and abs(value) <= _EXACT_INT:
        return int(value)
    return value


def date(value: Any) -> Any:
    """Dates and datetimes as themselves (aware ones in UTC, since Excel has
    no time zones), ISO 8601 text parsed, anything else as text."""
    if value is None or value != value:  # NaT
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value
    if isinstance(value, dt.date | dt.time):
        return value
    if isinstance(value, str):
        stripped = value.strip()
        if not stripped:
            return None
        try:
            parsed = (dt.date.fromisoformat(stripped) if len(stripped) == 10
                      else dt.datetime.fromisoformat(stripped))
        except ValueError:
            return text(value)
        return date(parsed)
    return number(value)


def boolean(value: Any) -> Any:
    if value is None or type(value) is bool:
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE or lowered in _FALSE:
            return lowered in _TRUE
        return text(value) if lowered else None
    return number(value)


def auto(value: Any) -> Any:
    """For summary cells, which carry no column kind: go by the value's type."""
    if value is None or type(value) is bool:
        return value
    if isinstance(value, numbers.Number | Decimal):
        return number(value)
    if isinstance(value, dt.date | dt.time):
        return date(value)
    return text(value)


CONVERTERS: dict[str, Converter] = {
    "text": text, "number": number, "integer": integer, "date": date, "bool": boolean,
}


def display_width(value: Any) -> int:
    """Roughly how many characters the cell shows, for sizing its column."""
    if value is None:
        return 0
    if isinstance(value, str):
        return max(map(len, value.splitlines()), default=0)
    if isinstance(value, bool):
        return 5
    if isinstance(value, dt.datetime):
        return 19
    if isinstance(value, dt.date):
        return 10
    if isinstance(value, float):
        return min(len(repr(value)), 12)  # General format shows ~11 significant digits
    return len(str(value))


def _finite(value: float) -> float | str | None:
    if math.isfinite(value):
        return value
    return None if value != value else text(value)  # inf has no Excel number


def _parse_number(value: str) -> Any:
    stripped = value.strip()
    if not stripped:
        return None
    if "_" not in stripped:  # Python reads "1_000"; a spreadsheet user would not
        for parse in (int, float):
            try:
                return number(parse(stripped))
            except ValueError:
                pass
    return text(value)
