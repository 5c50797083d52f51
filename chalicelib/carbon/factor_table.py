"""The bundled factor table (factors.csv beside this file) as a FactorLookup.

Choosing a factor, in order:
- activity: a canonical id ("natural_gas"), or any name activities.py
  accepts; unknown names fail with the closest accepted names.
- region: None means GB for every activity that has GB factors (the table is
  built on the UK government's factors; US users say "US" or an eGRID
  subregion). Names are matched by activities.normalise_region.
- unit: among the region's rows, the one whose unit measures the same thing
  as the row's unit (a fuel has litre, kWh and tonne rows); the caller
  converts within the dimension (MWh -> kWh).
- year: None means the latest year the table has. A year the table lacks
  falls back to the nearest earlier year (factors are published for a year
  and used until the next edition); a year before the earliest fails, naming
  the years there are. The Factor returned says which year was used.
"""
from __future__ import annotations

import csv
import functools
from collections import defaultdict
from collections.abc import Iterable
from importlib import resources

from chalicelib.carbon import units
from chalicelib.carbon.activities import normalise_region, resolve_activity, suggest_activities
from chalicelib.carbon.model import Factor, FactorNotFound

__all__ = ["DEFAULT_REGION", "FactorTable", "load_factors", "bundled_table"]

DEFAULT_REGION = "GB"


def _number(cell: str) -> float | None:
    return float(cell) if cell.strip() else None


def parse_factors(lines: Iterable[str]) -> list[Factor]:
    """Factors from the CSV text; lines starting with '#' are comments."""
    reader = csv.DictReader(line for line in lines if not line.startswith("#"))
    return [
        Factor(
            activity=row["activity"],
            region=row["region"],
            year=int(row["year"]),
            unit=row["unit"],
            kg_co2e=float(row["kg_co2e"]),
            kg_co2=_number(row["kg_co2"]),
            kg_ch4=_number(row["kg_ch4"]),
            kg_n2o=_number(row["kg_n2o"]),
            scope=int(row["scope"]),
            source=row["source"],
            table=row["table"],
        )
        for row in reader
    ]


@functools.cache
def load_factors() -> tuple[Factor, ...]:
    """The bundled factors, read once per process."""
    text = resources.files("chalicelib.carbon").joinpath("factors.csv").read_text(encoding="utf-8")
    return tuple(parse_factors(text.splitlines()))


class FactorTable:
    """FactorLookup over a list of factors (the bundled ones by default)."""

    def __init__(self, factors: Iterable[Factor] | None = None):
        self._factors = tuple(factors) if factors is not None else None

    @functools.cached_property
    def _index(self) -> dict[str, dict[str, list[Factor]]]:
        # activity -> region -> factors; built on first use, not at import.
        index: dict[str, dict[str, list[Factor]]] = defaultdict(lambda: defaultdict(list))
        for factor in self._factors if self._factors is not None else load_factors():
            index[factor.activity][factor.region].append(factor)
        return {activity: dict(by_region) for activity, by_region in index.items()}

    def activities(self) -> list[str]:
        return sorted(self._index)

    def regions(self, activity: str) -> list[str]:
        return sorted(self._index.get(activity, {}))

    def find(self, activity: str, unit: str, region: str | None, year: int | None) -> Factor:
        activity_id = self._activity_id(activity)
        by_region = self._index[activity_id]
        region_code = self._region(activity_id, by_region, region)
        rows = by_region[region_code]

        try:
            dimension = units.dimension_of(unit)
            fitting = [f for f in rows if units.same_dimension(f.unit, unit)]
        except units.UnitError as exc:
            raise FactorNotFound(str(exc)) from None
        if not fitting:
            measured = sorted({units.dimension_of(f.unit) or f.unit for f in rows})
            wanted = " or ".join(units.describe_dimension(m) for m in measured)
            got = units.describe_dimension(dimension).split(" (")[0] if dimension else f"'{unit}'"
            raise FactorNotFound(
                f"{activity_id.replace('_', ' ')} in {region_code} is measured in {wanted}, "
                f"not {got}"
            )

        years = sorted({f.year for f in fitting})
        if year is None:
            chosen = years[-1]
        else:
            earlier = [y for y in years if y <= year]
            if not earlier:
                raise FactorNotFound(
                    f"no {activity_id.replace('_', ' ')} factor for {region_code} in {year}; "
                    f"years available: {', '.join(map(str, years))}"
                )
            chosen = earlier[-1]
        candidates = [f for f in fitting if f.year == chosen]
        # Prefer the row in the very unit asked for (no conversion needed).
        exact = [f for f in candidates if units.canonical(f.unit) == units.canonical(unit)]
        return (exact or candidates)[0]

    def _activity_id(self, activity: str) -> str:
        if activity in self._index:
            return activity
        resolved = resolve_activity(activity)
        if resolved is not None and resolved.id in self._index:
            return resolved.id
        hint = suggest_activities(activity)
        raise FactorNotFound(
            f"no factors for activity '{activity}'"
            + (f"; did you mean {', '.join(hint)}?" if hint else "")
        )

    def _region(self, activity: str, by_region: dict[str, list[Factor]], region: str | None) -> str:
        name = activity.replace("_", " ")
        available = sorted(by_region)
        if region is None or not region.strip():
            if DEFAULT_REGION in by_region:
                return DEFAULT_REGION
            if len(available) == 1:
                return available[0]
            raise FactorNotFound(f"say which region for {name}: available {', '.join(available)}")
        code = normalise_region(region)
        if code not in by_region:
            raise FactorNotFound(
                f"no {name} factor for region '{region.strip()}'; regions available: "
                f"{', '.join(available)}"
            )
        return code


@functools.cache
def bundled_table() -> FactorTable:
    """The shared FactorTable over the bundled factors."""
    return FactorTable()
