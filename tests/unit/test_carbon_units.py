"""Units as users write them (chalicelib/carbon/units.py): spellings, the
conversions the calculation relies on, and the messages for units that do
not fit. Conversion constants are the legal definitions (1 US gallon =
3.785411784 L, 1 imperial gallon = 4.54609 L, 1 mile = 1.609344 km, 1 lb =
0.45359237 kg), so the expected values are exact arithmetic."""
from __future__ import annotations

import pytest

from chalicelib.carbon import units


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kWh", "kilowatt_hour"), ("kwh", "kilowatt_hour"), ("KWH", "kilowatt_hour"),
        ("kilowatt hours", "kilowatt_hour"), ("MWh", "megawatt_hour"), ("mwh", "megawatt_hour"),
        ("GJ", "gigajoule"), ("therm", "therm"), ("therms", "therm"), ("MMBtu", "MMBtu"),
        ("mmbtu", "MMBtu"), ("litres", "liter"), ("liters", "liter"), ("L", "liter"),
        ("l", "liter"), ("US gallons", "gallon"), ("U.S. gallons", "gallon"), ("gal", "gallon"),
        ("UK gallons", "imperial_gallon"), ("imperial gallons", "imperial_gallon"),
        ("m3", "meter ** 3"), ("m³", "meter ** 3"), ("cubic metres", "meter ** 3"),
        ("km", "kilometer"), ("miles", "mile"), ("mi", "mile"),
        ("passenger-km", "kilometer * passenger"), ("pkm", "kilometer * passenger"),
        ("Passenger_KM", "kilometer * passenger"), ("passenger miles", "mile * passenger"),
        ("tonne-km", "kilometer * metric_ton"), ("tkm", "kilometer * metric_ton"),
        ("ton-miles", "mile * ton"), ("kg", "kilogram"), ("tonnes", "metric_ton"),
        ("t", "metric_ton"), ("short tons", "ton"), ("tons", "ton"), ("lb", "pound"),
    ],
)
def test_spellings_normalise_to_one_pint_unit(text, expected):
    assert units.canonical(text) == expected


@pytest.mark.parametrize(
    ("text", "dimension"),
    [
        ("kWh", "energy"), ("therms", "energy"), ("litres", "volume"), ("m³", "volume"),
        ("US gallons", "volume"), ("tonnes", "mass"), ("short tons", "mass"), ("km", "length"),
        ("passenger miles", "passenger_distance"), ("tonne-km", "freight_distance"),
        ("ton-miles", "freight_distance"), ("hours", None),
    ],
)
def test_named_dimensions(text, dimension):
    assert units.dimension_of(text) == dimension


@pytest.mark.parametrize(
    ("source", "target", "multiplier"),
    [
        ("US gallons", "litre", 3.785411784),
        ("UK gallons", "litre", 4.54609),
        ("MWh", "kWh", 1000.0),
        ("GJ", "kWh", 1e9 / 3.6e6),
        # therm = 100,000 Btu and pint's Btu is 1,055.056 J (README: the EC therm)
        ("therms", "kWh", 1e5 * 1055.056 / 3.6e6),
        ("MMBtu", "kWh", 1e6 * 1055.056 / 3.6e6),
        ("MMBtu", "therm", 10.0),
        ("US therm", "MJ", 105.4804),
        ("miles", "km", 1.609344),
        ("passenger miles", "passenger * km", 1.609344),
        ("short tons", "tonne", 0.90718474),
        ("ton-miles", "tonne * km", 0.90718474 * 1.609344),
        ("kg", "tonne", 0.001),
        ("cubic feet", "m**3", 0.3048**3),
    ],
)
def test_conversion_multipliers(source, target, multiplier):
    assert units.conversion_factor(source, target) == pytest.approx(multiplier, rel=1e-12)


def test_passenger_distance_never_converts_to_plain_distance():
    with pytest.raises(units.UnitMismatch):
        units.conversion_factor("passenger-km", "km")


def test_unit_of_another_dimension_is_refused_with_both_names():
    with pytest.raises(units.UnitMismatch, match="unit 'kg' cannot be converted to 'kWh'"):
        units.conversion_factor("kg", "kWh")


@pytest.mark.parametrize("text", ["xyz", "kg CO2e", "2023", "5 kg", "%", "percent"])
def test_unknown_units_are_named_in_the_message(text):
    with pytest.raises(units.UnitNotRecognised, match=f"unit '{text}' is not a unit Sluice knows"):
        units.parse_unit(text)


def test_empty_unit_is_its_own_message():
    with pytest.raises(units.UnitNotRecognised, match="the unit is empty"):
        units.parse_unit("   ")


def test_describe_dimension_gives_an_example():
    assert units.describe_dimension("energy") == "energy (e.g. kWh)"
    assert units.describe_dimension("passenger_distance") == "passenger distance (e.g. passenger-km)"


def test_one_registry_is_shared():
    assert units.registry() is units.registry()
