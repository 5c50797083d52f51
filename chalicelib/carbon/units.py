"""Units as users write them, turned into pint units, and the multipliers
between a row's unit and a factor's unit.

What users type is messy ("kwh", "US gallons", "m³", "passenger miles"), and
pint is case-sensitive ("mwh" is not a unit, "mWh" is a milliwatt-hour), so
common spellings go through an alias table first; anything else is handed
to pint as written, which covers the long tail ("GJ", "lb", "ft**3").

Conventions (documented in README_FRAGMENT.md):
- "ton"/"tons" are US short tons (2,000 lb); "tonne", "t", "metric ton" are
  1,000 kg; "long ton" is 2,240 lb.
- "gallon"/"gal" are US gallons; "UK gallon"/"imperial gallon" are imperial.
- "therm" is 100,000 Btu = 105.5056 MJ (pint's EC therm, the same Btu as
  MMBtu, so 1 MMBtu = 10 therms); "US therm" is 105.4804 MJ.
- "passenger" is a counting dimension of its own, so passenger-km and
  passenger-miles convert into each other but never into plain km;
  tonne-km is mass × length, so short ton-miles convert to tonne-km.

Building a UnitRegistry takes a noticeable fraction of a second, so there is
one, built on first use and shared; parsed units are cached per spelling.
"""
from __future__ import annotations

import functools
import re

import pint

__all__ = [
    "UnitError",
    "UnitNotRecognised",
    "UnitMismatch",
    "registry",
    "parse_unit",
    "canonical",
    "dimension_of",
    "describe_dimension",
    "conversion_factor",
    "same_dimension",
]


class UnitError(ValueError):
    """A unit text that cannot be used; the message is shown to the user."""


class UnitNotRecognised(UnitError):
    pass


class UnitMismatch(UnitError):
    pass


_DEFINITIONS = [
    # A counting dimension: passenger-km stays distinct from vehicle-km.
    "passenger = [passenger] = pax = passengers",
    "MMBtu = 1e6 * Btu = mmBtu = MMBTU",
    # US gas bills: hundreds and thousands of cubic feet.
    "ccf = 100 * foot ** 3 = CCF",
    "Mcf = 1000 * foot ** 3 = MCF",
]

# Lower-cased, whitespace-collapsed spellings -> pint expressions. Only what
# pint cannot parse as written (case, plurals, hyphens, words) needs a line.
_ALIASES: dict[str, str] = {
    # energy
    "wh": "Wh", "kwh": "kWh", "kw h": "kWh", "kilowatt hour": "kWh", "kilowatt hours": "kWh",
    "kilowatt-hour": "kWh", "kilowatt-hours": "kWh", "kwhs": "kWh",
    "mwh": "MWh", "megawatt hour": "MWh", "megawatt hours": "MWh", "megawatt-hour": "MWh",
    "megawatt-hours": "MWh", "gwh": "GWh", "gigawatt hour": "GWh", "gigawatt hours": "GWh",
    "kj": "kJ", "mj": "MJ", "gj": "GJ", "tj": "TJ", "megajoule": "MJ", "megajoules": "MJ",
    "gigajoule": "GJ", "gigajoules": "GJ",
    "therm": "therm", "therms": "therm", "thm": "therm",
    "us therm": "US_therm", "us therms": "US_therm",
    "mmbtu": "MMBtu", "mm btu": "MMBtu", "million btu": "MMBtu", "btu": "Btu", "btus": "Btu",
    # volume
    "l": "litre", "ltr": "litre", "ltrs": "litre", "litre": "litre", "litres": "litre",
    "liter": "litre", "liters": "litre",
    "ml": "millilitre", "kl": "kilolitre", "megalitre": "megalitre", "megalitres": "megalitre",
    "m3": "m**3", "m³": "m**3", "m^3": "m**3", "cubic metre": "m**3", "cubic metres": "m**3",
    "cubic meter": "m**3", "cubic meters": "m**3", "cu m": "m**3", "scm": "m**3",
    "ft3": "ft**3", "ft³": "ft**3", "cubic foot": "ft**3", "cubic feet": "ft**3", "cf": "ft**3",
    "ccf": "ccf", "mcf": "Mcf",
    "gal": "gallon", "gallon": "gallon", "gallons": "gallon",
    "us gal": "gallon", "us gallon": "gallon", "us gallons": "gallon",
    "uk gal": "imperial_gallon", "uk gallon": "imperial_gallon", "uk gallons": "imperial_gallon",
    "imperial gallon": "imperial_gallon", "imperial gallons": "imperial_gallon",
    "imp gal": "imperial_gallon",
    "barrel": "oil_barrel", "barrels": "oil_barrel", "bbl": "oil_barrel",
    # mass
    "kg": "kg", "kgs": "kg", "kilogram": "kg", "kilograms": "kg", "kilo": "kg", "kilos": "kg",
    "g": "g", "gram": "g", "grams": "g",
    "t": "tonne", "tonne": "tonne", "tonnes": "tonne", "metric ton": "tonne",
    "metric tons": "tonne", "metric tonne": "tonne", "metric tonnes": "tonne",
    "ton": "short_ton", "tons": "short_ton", "short ton": "short_ton", "short tons": "short_ton",
    "us ton": "short_ton", "us tons": "short_ton",
    "long ton": "long_ton", "long tons": "long_ton", "uk ton": "long_ton", "uk tons": "long_ton",
    "lb": "lb", "lbs": "lb", "pound": "lb", "pounds": "lb",
    # distance
    "km": "km", "kms": "km", "kilometre": "km", "kilometres": "km", "kilometer": "km",
    "kilometers": "km",
    "mi": "mile", "mile": "mile", "miles": "mile",
    "m": "m", "metre": "m", "metres": "m", "meter": "m", "meters": "m",
    # passenger distance
    "pkm": "passenger * km", "p km": "passenger * km", "passenger km": "passenger * km",
    "passenger kms": "passenger * km", "passenger kilometre": "passenger * km",
    "passenger kilometres": "passenger * km", "passenger kilometer": "passenger * km",
    "passenger kilometers": "passenger * km", "passenger.km": "passenger * km",
    "pmi": "passenger * mile", "passenger mile": "passenger * mile",
    "passenger miles": "passenger * mile", "passenger.mile": "passenger * mile",
    # freight distance (mass × length)
    "tkm": "tonne * km", "t km": "tonne * km", "tonne km": "tonne * km",
    "tonne kms": "tonne * km", "tonne kilometre": "tonne * km", "tonne kilometres": "tonne * km",
    "tonne kilometer": "tonne * km", "tonne kilometers": "tonne * km", "tonne.km": "tonne * km",
    "tonnes km": "tonne * km", "metric ton km": "tonne * km",
    "ton mile": "short_ton * mile", "ton miles": "short_ton * mile",
    "short ton mile": "short_ton * mile", "short ton miles": "short_ton * mile",
    "tmi": "short_ton * mile", "tonne mile": "tonne * mile", "tonne miles": "tonne * mile",
}

# Named dimensions, in the words used in messages, with an example unit.
_DIMENSIONS: dict[str, tuple[str, str]] = {
    "energy": ("energy", "kWh"),
    "volume": ("volume", "litres"),
    "mass": ("mass", "tonnes"),
    "length": ("distance", "km"),
    "passenger_distance": ("passenger distance", "passenger-km"),
    "freight_distance": ("freight distance (mass × distance)", "tonne-km"),
}


@functools.cache
def registry() -> pint.UnitRegistry:
    """The one registry every conversion goes through."""
    ureg = pint.UnitRegistry()
    for line in _DEFINITIONS:
        ureg.define(line)
    return ureg


@functools.cache
def _dimensionalities() -> dict[str, object]:
    ureg = registry()
    return {
        "energy": ureg.parse_units("kWh").dimensionality,
        "volume": ureg.parse_units("litre").dimensionality,
        "mass": ureg.parse_units("kg").dimensionality,
        "length": ureg.parse_units("km").dimensionality,
        "passenger_distance": ureg.parse_units("passenger * km").dimensionality,
        "freight_distance": ureg.parse_units("tonne * km").dimensionality,
    }


def _key(text: str) -> str:
    # "Passenger-Km" / "passenger_km" / " passenger  km " all become "passenger km".
    lowered = text.strip().lower().replace("u.s.", "us").replace("u.k.", "uk")
    return re.sub(r"[\s_\-]+", " ", lowered).strip()


@functools.cache
def parse_unit(text: str) -> pint.Unit:
    """The pint unit for what a user wrote. Raises UnitNotRecognised."""
    cleaned = text.strip()
    if not cleaned:
        raise UnitNotRecognised("the unit is empty")
    ureg = registry()
    expression = _ALIASES.get(_key(cleaned))
    candidates = [expression] if expression else [cleaned, cleaned.replace("-", " * ")]
    for candidate in candidates:
        try:
            parsed = ureg.parse_expression(candidate)
        except (pint.errors.PintError, SyntaxError, TypeError, ValueError, AttributeError):
            continue
        # A bare unit parses to a quantity of 1; "2023" or "5 kg" are not units.
        if (
            isinstance(parsed, ureg.Quantity)
            and parsed.magnitude == 1
            and not parsed.dimensionless
        ):
            return parsed.units
    raise UnitNotRecognised(
        f"unit '{cleaned}' is not a unit Sluice knows "
        "(e.g. kWh, MWh, litres, US gallons, m³, tonnes, km, passenger-km, tonne-km)"
    )


def canonical(text: str) -> str:
    """A stable string for the unit, the same for every spelling of it
    ("kwh", "kWh", "kilowatt hours" -> "kilowatt_hour"); this is what a
    FactorLookup receives."""
    return str(parse_unit(text))


def dimension_of(text: str) -> str | None:
    """The named dimension ("energy", "volume", "mass", "length",
    "passenger_distance", "freight_distance") or None for anything else."""
    dims = parse_unit(text).dimensionality
    for name, dimensionality in _dimensionalities().items():
        if dims == dimensionality:
            return name
    return None


def describe_dimension(name: str) -> str:
    """'energy (e.g. kWh)' for messages."""
    words, example = _DIMENSIONS[name]
    return f"{words} (e.g. {example})"


def same_dimension(a: str, b: str) -> bool:
    return parse_unit(a).dimensionality == parse_unit(b).dimensionality


@functools.cache
def conversion_factor(from_unit: str, to_unit: str) -> float:
    """m such that an amount in `from_unit` times m is the amount in
    `to_unit` (1 MWh -> kWh gives 1000). Raises UnitMismatch when the two
    measure different things."""
    ureg = registry()
    source, target = parse_unit(from_unit), parse_unit(to_unit)
    try:
        return float(ureg.Quantity(1.0, source).to(target).magnitude)
    except pint.errors.DimensionalityError:
        raise UnitMismatch(f"unit '{from_unit}' cannot be converted to '{to_unit}'") from None
