"""Emissions for a frame of activity rows: amount × unit conversion × factor.

A file of a million rows names a handful of (activity, unit, region, year)
combinations, so the work is split in two:

1. Every distinct combination of the four cells, as written, is resolved
   once: activity name, unit, region and year are read, the factor is
   looked up, the unit multiplier computed. Lookups are cached per call on
   the *normalised* combination, so "UK" and "GB" cost one lookup; the
   external factor API is rate-limited and sees exactly one call per
   distinct combination.
2. The amounts are parsed and multiplied for all rows at once with numpy.

A row that cannot be calculated becomes an error {"row": n, "error": ...};
the other rows still count.

Amounts: numbers as text, surrounding spaces ignored. Thousands separators
are accepted when they are commas in groups of three ("1,234.5",
"12,000"); any other comma ("12,5") is an error rather than a guess at a
decimal comma. Negative, empty, non-numeric and non-finite amounts are
errors; zero is allowed.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from chalicelib.carbon import units
from chalicelib.carbon.activities import Activity, normalise_region, resolve_activity, suggest_activities
from chalicelib.carbon.model import Factor, FactorLookup, FactorNotFound

__all__ = ["ROW_COLUMNS", "calculate_rows", "parse_amounts", "parse_year", "totals"]

ROW_COLUMNS = [
    "row", "activity", "amount", "unit", "region", "year",
    "kg_co2e", "kg_co2", "kg_ch4", "kg_n2o", "scope",
    "factor", "factor_unit", "factor_source", "factor_table", "factor_year",
]

#: an activity, unit, region or year cell longer than this names none: it
#: is refused before any lookup, and quoted only in part in messages
MAX_CELL_CHARS = 200
_QUOTED_CHARS = 60

_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$")
# A leading year ("2023", "2023.0", "2023-04-01", "2023/24") or a date that
# ends in one ("01/04/2023").
_YEAR = re.compile(r"^\s*(\d{4})(?:\.0+)?(?:\D.*)?$|^\s*\d{1,2}[/.-]\d{1,2}[/.-](\d{4})\s*$")


@dataclass(frozen=True)
class _Resolved:
    """One combination of cells, resolved: an error, or what every row of
    the combination needs."""

    error: str | None = None
    activity: str = ""
    factor: Factor | None = None
    multiplier: float = float("nan")  # row unit -> factor unit
    year: int = 0


def calculate_rows(
    frame: pd.DataFrame,
    row_numbers: pd.Series,
    columns: Mapping[str, str],
    lookup: FactorLookup,
    *,
    default_region: str | None = None,
    default_year: int | str | None = None,
) -> tuple[pd.DataFrame, list[dict]]:
    """Rows answered (columns ROW_COLUMNS, in input order) and row errors.

    `columns` maps roles to headers (activities.match_columns); region and
    year are optional. `default_region`/`default_year` stand in for a missing
    column or an empty cell. FactorNotFound becomes the rows' error; any
    other exception from `lookup` (ServiceError) propagates so the chunk is
    retried."""
    n = len(frame)
    numbers = np.asarray(row_numbers, dtype=np.int64)
    texts = [_cells(frame, columns.get(role), n) for role in ("activity", "unit", "region", "year")]
    combo_of_row, first_row = _combinations(texts, n)

    resolver = _Resolver(lookup, default_region, default_year)
    resolved = [resolver.resolve(*(str(t[i]) for t in texts)) for i in first_row]

    amounts, amount_errors = parse_amounts(_cells(frame, columns["amount"], n))
    combo_error = np.array([r.error is not None for r in resolved], dtype=bool)
    row_combo_error = combo_error[combo_of_row] if n else np.zeros(0, dtype=bool)
    row_amount_error = amount_errors != ""
    ok = ~row_combo_error & ~row_amount_error

    errors = _errors(numbers, combo_of_row, resolved, row_combo_error, amount_errors, row_amount_error)
    rows = _rows(texts[1], numbers, combo_of_row, resolved, amounts, ok)
    return rows, errors


def _cells(frame: pd.DataFrame, column: str | None, n: int) -> np.ndarray:
    if column is None:
        return np.full(n, "", dtype=object)
    return frame[column].to_numpy(dtype=object, na_value="")


def _combinations(texts: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """A combination number per row and the first row of each combination,
    by factorising each column and folding the codes pairwise (re-factorised
    at each step so the combined code never overflows)."""
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    combined = np.zeros(n, dtype=np.int64)
    for cells in texts:
        codes, uniques = pd.factorize(cells)
        combined = combined * len(uniques) + codes
        combined, _ = pd.factorize(combined)
    # factorize numbers values in order of first appearance, so the running
    # maximum steps up exactly at each combination's first row.
    combined = combined.astype(np.int64)
    first = np.flatnonzero(np.diff(np.maximum.accumulate(combined), prepend=-1) != 0)
    return combined, first


class _Resolver:
    """Turns cell texts into factors, caching every step for one call."""

    def __init__(self, lookup: FactorLookup, default_region: str | None, default_year: int | str | None):
        self._lookup = lookup
        self._default_region = default_region
        # Options may carry the year as text ("2022").
        self._default_year = (
            default_year if default_year is None or isinstance(default_year, int)
            else parse_year(str(default_year))
        )
        self._found: dict[tuple, Factor | str] = {}

    def resolve(self, activity_text: str, unit_text: str, region_text: str, year_text: str) -> _Resolved:
        for role, text in (("activity", activity_text), ("unit", unit_text), ("region", region_text),
                           ("year", year_text)):
            if len(text) > MAX_CELL_CHARS:
                return _Resolved(error=f"the {role} {_quoted(text)} is too long to be one")
        activity = resolve_activity(activity_text.strip()) if activity_text.strip() else None
        if activity is None:
            return _Resolved(error=_unknown_activity(activity_text))
        if not unit_text.strip():
            return _Resolved(error="the unit is empty")
        try:
            unit = units.canonical(unit_text)
        except units.UnitError as exc:
            return _Resolved(error=str(exc))
        fit_error = _fit_error(activity, unit_text.strip(), unit)
        if fit_error:
            return _Resolved(error=fit_error)

        region = region_text.strip() or (self._default_region or "")
        region_code = normalise_region(region) if region else None
        if year_text.strip():
            year = parse_year(year_text)
            if year is None:
                return _Resolved(error=f"year '{year_text.strip()}' is not a year")
        else:
            year = self._default_year

        key = (activity.id, unit, region_code, year)
        if key not in self._found:
            try:
                self._found[key] = self._lookup.find(activity.id, unit, region_code, year)
            except FactorNotFound as exc:
                self._found[key] = str(exc)
        found = self._found[key]
        if isinstance(found, str):
            return _Resolved(error=found)
        try:
            multiplier = units.conversion_factor(unit, found.unit)
        except units.UnitError:
            return _Resolved(
                error=f"unit '{unit_text.strip()}' does not fit the factor's unit '{found.unit}'"
            )
        return _Resolved(
            activity=activity.id, factor=found, multiplier=multiplier,
            year=year if year is not None else found.year,
        )


def _unknown_activity(text: str) -> str:
    if not text.strip():
        return "the activity is empty"
    hint = suggest_activities(text)
    return f"unknown activity '{text.strip()}'" + (f"; did you mean {', '.join(hint)}?" if hint else "")


def _fit_error(activity: Activity, unit_text: str, unit: str) -> str | None:
    # Checked before the lookup so a wrong unit never costs an API call.
    if units.dimension_of(unit) in activity.measured_in:
        return None
    wanted = " or ".join(units.describe_dimension(d) for d in activity.measured_in)
    return f"unit '{unit_text}' does not fit {activity.label}, which is measured in {wanted}"


def parse_year(text: str) -> int | None:
    """The year a cell names ('2023', '2023.0', '2023-04-01', '01/04/2023'),
    or None ('FY23', 'last year')."""
    match = _YEAR.match(text)
    if not match:
        return None
    return int(match.group(1) or match.group(2))


def parse_amounts(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Floats for amount cells and, per cell, "" or the reason it is not a
    usable amount. Vectorised: one pandas pass, a second only for the cells
    with thousands separators."""
    text = pd.Series(cells, dtype=object).str.strip()
    values = np.array(pd.to_numeric(text, errors="coerce"), dtype=float)  # writable copy
    failed = np.isnan(values)
    if failed.any():
        grouped = failed & text.str.match(_THOUSANDS).fillna(False).to_numpy(dtype=bool)
        if grouped.any():
            plain = text[grouped].str.replace(",", "", regex=False)
            values[grouped] = pd.to_numeric(plain).to_numpy(dtype=float)
    reasons = np.full(len(values), "", dtype=object)
    empty = (text == "").to_numpy(dtype=bool)
    bad = ~np.isfinite(values) & ~empty
    negative = np.isfinite(values) & (values < 0)
    if empty.any():
        reasons[empty] = "the amount is empty"
    for i in np.flatnonzero(bad):
        reasons[i] = f"amount {_quoted(text.iat[i])} is not a number"
    for i in np.flatnonzero(negative):
        reasons[i] = f"amount {_quoted(text.iat[i])} is negative"
    return values, reasons


def _quoted(text: str) -> str:
    """A cell in quotes for a message; a long one cut, with its length."""
    if len(text) <= _QUOTED_CHARS:
        return f"'{text}'"
    return f"'{text[:_QUOTED_CHARS]}…' ({len(text):,} characters)"


def _errors(numbers, combo_of_row, resolved, row_combo_error, amount_errors, row_amount_error) -> list[dict]:
    # Both kinds in input order; a row with both reports the combination's
    # error (activity/unit/region/year), which explains more.
    bad = np.flatnonzero(row_combo_error | row_amount_error)
    out = []
    for i in bad:
        message = resolved[combo_of_row[i]].error if row_combo_error[i] else amount_errors[i]
        out.append({"row": int(numbers[i]), "error": message})
    return out


def _rows(unit_cells, numbers, combo_of_row, resolved, amounts, ok) -> pd.DataFrame:
    keep = np.flatnonzero(ok)
    combos = combo_of_row[keep]
    per_combo = _per_combo_arrays(resolved)
    amount = amounts[keep]
    scaled = amount * per_combo["multiplier"][combos]

    def gas(name: str) -> np.ndarray:
        return scaled * per_combo[name][combos]  # NaN where the source has no split

    return pd.DataFrame({
        "row": numbers[keep],
        "activity": per_combo["activity"][combos],
        "amount": amount,
        "unit": unit_cells[keep],
        "region": per_combo["region"][combos],
        "year": per_combo["year"][combos],
        "kg_co2e": gas("kg_co2e"),
        "kg_co2": gas("kg_co2"),
        "kg_ch4": gas("kg_ch4"),
        "kg_n2o": gas("kg_n2o"),
        "scope": per_combo["scope"][combos],
        "factor": per_combo["kg_co2e"][combos],
        "factor_unit": per_combo["factor_unit"][combos],
        "factor_source": per_combo["factor_source"][combos],
        "factor_table": per_combo["factor_table"][combos],
        "factor_year": per_combo["factor_year"][combos],
    }, columns=ROW_COLUMNS)


def _per_combo_arrays(resolved: list[_Resolved]) -> dict[str, np.ndarray]:
    def floats(get) -> np.ndarray:
        return np.array([_nan(get(r.factor)) if r.factor else np.nan for r in resolved], dtype=float)

    def objects(get) -> np.ndarray:
        return np.array([get(r) if r.factor else "" for r in resolved], dtype=object)

    def ints(get) -> np.ndarray:
        return np.array([get(r) if r.factor else 0 for r in resolved], dtype=np.int64)

    return {
        "multiplier": np.array([r.multiplier for r in resolved], dtype=float),
        "kg_co2e": floats(lambda f: f.kg_co2e),
        "kg_co2": floats(lambda f: f.kg_co2),
        "kg_ch4": floats(lambda f: f.kg_ch4),
        "kg_n2o": floats(lambda f: f.kg_n2o),
        "activity": objects(lambda r: r.activity),
        "region": objects(lambda r: r.factor.region),
        "factor_unit": objects(lambda r: r.factor.unit),
        "factor_source": objects(lambda r: r.factor.source),
        "factor_table": objects(lambda r: r.factor.table),
        "year": ints(lambda r: r.year),
        "scope": ints(lambda r: r.factor.scope),
        "factor_year": ints(lambda r: r.factor.year),
    }


def _nan(value: float | None) -> float:
    return np.nan if value is None else value


def totals(rows: pd.DataFrame) -> dict:
    """kg CO2e in all, by scope and by activity, for summaries. Sums of the
    calculated rows only (errors are not in `rows`)."""
    by_scope = rows.groupby("scope")["kg_co2e"].sum()
    by_activity = rows.groupby("activity")["kg_co2e"].sum()
    return {
        "kg_co2e": float(rows["kg_co2e"].sum()),
        "rows": int(len(rows)),
        "by_scope": {int(k): float(v) for k, v in by_scope.items()},
        "by_activity": {str(k): float(v) for k, v in by_activity.items()},
    }
