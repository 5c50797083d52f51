"""Target codes (seed 001's hole codes) and finding them in text.

A code matches as a whole token, in any case: "HOLE-1" is found in "see
hole-1." and "(HOLE-1, HOLE-2)" but not in "HOLE-12", "XHOLE-1", "HOLE-1-A"
or "HOLE-1.5". A token's edge is where a letter or digit meets anything that
is neither, except a joiner (- _ . /) between two letters or digits, which
keeps a token going. Dashes of every kind count as "-" and any run of spaces
as one, so text from PDFs (which often carry en dashes and odd spaces)
matches codes typed with plain ones.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from ..jobs.model import InputError

#: a job looks for at most this many codes; matching stays ~10 ms per page
MAX_CODES = 20_000
MAX_CODE_LENGTH = 200
_SEPARATORS = re.compile(r"[,;\n\r]+")
_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d"), "-")
_SPACES = re.compile(r"\s+")
# Fixed-width lookarounds: no letter/digit, and no joiner with one behind it,
# on either side of the code.
_BEFORE = r"(?<!\w)(?<!\w[-_./])"
_AFTER = r"(?!\w)(?![-_./]\w)"


def normalise_codes(value: str | Iterable[object]) -> list[str]:
    """The caller's codes as a clean list: a list of strings, or one string
    with codes separated by commas, semicolons or new lines. Blanks go,
    surrounding spaces go, and a code given twice (in any case) is kept once
    in its first spelling."""
    items = _SEPARATORS.split(value) if isinstance(value, str) else value
    if not isinstance(items, Iterable) or isinstance(items, (bytes, dict)):
        raise InputError(f"target_hole_codes must be a list of codes or one string of codes "
                         f"separated by commas, got {value!r}")
    codes: dict[str, str] = {}
    for position, item in enumerate(items, start=1):
        if not isinstance(item, str):
            raise InputError(f"target_hole_codes[{position}] is {item!r}; every code must be text")
        code = _SPACES.sub(" ", item.translate(_DASHES)).strip()
        if not code:
            continue
        if len(code) > MAX_CODE_LENGTH:
            raise InputError(f"target_hole_codes[{position}] is {len(code)} characters long; "
                             f"a code may have at most {MAX_CODE_LENGTH}")
        if not any(ch.isalnum() for ch in code):
            raise InputError(f"target_hole_codes[{position}] ({code!r}) has no letter or digit")
        codes.setdefault(_key(code), code)
        if len(codes) > MAX_CODES:
            raise InputError(f"more than {MAX_CODES:,} target codes; split the scan into several jobs")
    if not codes:
        raise InputError("target_hole_codes lists no codes")
    return list(codes.values())


def status_words(count: int) -> str:
    """Seed 001's words for how many codes a document holds."""
    return "No Code" if count == 0 else "1 Code" if count == 1 else f"{count} Codes"


class CodeMatcher:
    """Finds which of the target codes a text holds. Built once per set of
    codes (one regular expression for all of them), used for many texts."""

    def __init__(self, codes: list[str]):
        self._codes = normalise_codes(codes)
        self._order = {_key(code): i for i, code in enumerate(self._codes)}
        # Longest first, so that of two codes where one starts the other the
        # longer is tried first (the edge check rejects the shorter anyway).
        alternatives = sorted(self._codes, key=len, reverse=True)
        pattern = "|".join(re.escape(unicodedata.normalize("NFKC", code)).replace(r"\ ", r"\s+")
                            for code in alternatives)
        self._pattern = re.compile(f"{_BEFORE}(?:{pattern}){_AFTER}", re.IGNORECASE)

    @property
    def codes(self) -> list[str]:
        return list(self._codes)

    def find(self, text: str) -> list[str]:
        """The codes found in `text`, each once, in the order of the targets."""
        text = unicodedata.normalize("NFKC", text).translate(_DASHES)
        found = {self._order[_key(m)] for m in self._pattern.findall(text) if _key(m) in self._order}
        return [self._codes[i] for i in sorted(found)]


def _key(code: str) -> str:
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", code).translate(_DASHES)).strip().casefold()
