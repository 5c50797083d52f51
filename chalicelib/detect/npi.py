"""National Provider Identifiers (NPIs) in a page's OCR'd text.

An NPI is ten digits, the last a Luhn check digit computed over "80840"
(80: health, 840: the USA) followed by the first nine digits: CMS's rule,
which keeps every NPI usable as a card issuer identifier. CMS's own example:
123456789 gets check digit 3, so 1234567893 is a valid NPI.

What counts as a candidate:

- ten digits in a row, not part of a longer run: no letter or digit on
  either side, and no "." "-" "/" joining it to more digits (so
  "12345678901", "A1234567893", "1234567893.50" and "1234567893-01" are not
  NPIs). Text reading "NPI1234567893", where OCR dropped the space after the
  label, is the one exception: a candidate may follow the word NPI directly.
- three, three and four digits split by one kind of separator, a space or
  a hyphen ("123 456 7893", "123-456-7893"), only when the word NPI stands
  before it (see below). Without it that is how phone and fax numbers are
  written, and one in ten of them passes the check digit.

A candidate is reported only when its check digit is right. Its score is
NEAR_KEYWORD_SCORE when "NPI" (any case; also "N.P.I.") or "National
Provider" ends within KEYWORD_WINDOW characters before it, BARE_SCORE
otherwise, so callers can rank findings or set a threshold. An NPI found
several times on a page is one finding, with its best score.
"""
from __future__ import annotations

import bisect
import re

from .base import Finding, masked_context

NEAR_KEYWORD_SCORE = 0.95
BARE_SCORE = 0.6
KEYWORD_WINDOW = 60
_PREFIX = "80840"

_LETTER = r"[^\W\d_]"
_KEYWORD = re.compile(rf"(?<!{_LETTER})(?:N\.?P\.?I(?:s|'s)?|National\s+Provider)(?!{_LETTER})",
                      re.IGNORECASE)
# No letter or digit beside it, and no joiner with a digit behind it.
_START = r"(?:(?<![^\W_])(?<![0-9][./-])|(?<=[Nn][Pp][Ii]))"
_END = r"(?![^\W_])(?![./-][0-9])"
_CANDIDATE = re.compile(
    rf"{_START}(?:(?P<plain>[0-9]{{10}})"
    rf"|(?<![0-9] )(?P<grouped>[0-9]{{3}}(?P<sep>[ -])[0-9]{{3}}(?P=sep)[0-9]{{4}})(?! [0-9])){_END}"
)


def npi_check_digit(first_nine: str) -> int:
    """The check digit of an NPI whose first nine digits are `first_nine`."""
    if len(first_nine) != 9 or not first_nine.isascii() or not first_nine.isdigit():
        raise ValueError(f"an NPI's first part is nine digits, got {first_nine!r}")
    total = 0
    # Luhn: double every other digit from the right, starting with the
    # rightmost (the check digit is not there yet), adding a product's digits.
    for position, char in enumerate(reversed(_PREFIX + first_nine)):
        digit = int(char) * (2 if position % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return (10 - total % 10) % 10


def is_valid_npi(value: str) -> bool:
    """Ten ASCII digits whose last is the check digit of the first nine."""
    return (len(value) == 10 and value.isascii() and value.isdigit()
            and npi_check_digit(value[:9]) == int(value[9]))


class NpiDetector:
    name = "npi"

    def find(self, text: str, page: int) -> list[Finding]:
        keyword_ends = [match.end() for match in _KEYWORD.finditer(text)]
        found: dict[str, Finding] = {}
        for match in _CANDIDATE.finditer(text):
            near = _keyword_before(keyword_ends, match.start())
            if match["grouped"] and not near:
                continue
            value = match["plain"] or re.sub(r"[ -]", "", match["grouped"])
            if not is_valid_npi(value):
                continue
            score = NEAR_KEYWORD_SCORE if near else BARE_SCORE
            if value not in found or found[value].score < score:
                # Replacing keeps the dict's order: the first occurrence's place.
                found[value] = Finding(kind=self.name, value=value, page=page, score=score,
                                       context=masked_context(text, match.start(), match.end()))
        return list(found.values())


def _keyword_before(keyword_ends: list[int], start: int) -> bool:
    """Whether a keyword ends within KEYWORD_WINDOW characters before `start`."""
    index = bisect.bisect_right(keyword_ends, start)
    return index > 0 and keyword_ends[index - 1] >= start - KEYWORD_WINDOW
