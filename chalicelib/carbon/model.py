"""What a factor is, and the one question every factor source answers.

The bundled table (chalicelib/carbon/factor_table.py) and the external factor
API client (chalicelib/carbon/factor_api.py) both implement FactorLookup, so
the calculation does not know where its factors come from.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Factor:
    """An emission factor: kilograms per one `unit` of the activity.

    `unit` is the factor's denominator as pint understands it ("kWh", "litre",
    "passenger * km", "tonne * km", "tonne"). The gases are None where the
    source does not give them separately.
    """

    activity: str
    region: str
    year: int
    unit: str
    kg_co2e: float
    kg_co2: float | None
    kg_ch4: float | None
    kg_n2o: float | None
    scope: int
    source: str
    table: str


class FactorNotFound(Exception):
    """No factor for this activity/unit/region/year; the message says why and
    becomes the row's error."""


class FactorLookup(Protocol):
    def find(self, activity: str, unit: str, region: str | None, year: int | None) -> Factor:
        """The factor for `activity` in `region` and `year` when given (None:
        the source's default region, its latest year). `unit` is the unit the
        row is measured in (normalised by chalicelib/carbon/units.py), so a
        source holding several factors for one activity (fuel per litre, per
        kWh, per tonne) picks the one of the same dimension; the factor's own
        unit may still differ (MWh vs kWh) and the caller converts.
        Raises FactorNotFound with a message naming what did not match;
        raises chalicelib.jobs.model.ServiceError when the source is
        unreachable and the chunk should be retried."""
