"""The bundled factor table (chalicelib/carbon/factor_table.py and
factors.csv): the data is what the sources publish, and a factor is chosen
by activity, unit dimension, region and year as documented.

Sources quoted below (provenance in chalicelib/carbon/FACTORS.md):
- DESNZ 2023 = UK Government GHG conversion factors for company reporting
  2023, flat file; BEIS 2022 the same for 2022.
- eGRID2022 = US EPA eGRID2022 CO2 total output emission rates (lb/MWh).
"""
from __future__ import annotations

import pytest

from chalicelib.carbon import units
from chalicelib.carbon.factor_table import FactorTable, bundled_table, load_factors
from chalicelib.carbon.model import Factor, FactorNotFound

TABLE = bundled_table()


def test_every_activity_family_is_present():
    assert set(TABLE.activities()) == {
        "electricity", "natural_gas", "diesel", "petrol", "lpg", "propane", "burning_oil",
        "gas_oil", "fuel_oil", "coal", "flight_domestic", "flight_domestic_no_rf",
        "flight_short_haul", "flight_short_haul_no_rf", "flight_long_haul",
        "flight_long_haul_no_rf", "rail", "road_freight", "waste_landfill", "waste_combustion",
    }


def test_gas_columns_add_up_to_co2e_within_published_rounding():
    # DESNZ publishes each figure to 5 decimals; kg CO2e = CO2 + CH4 + N2O
    # (all in CO2e) up to that rounding. A transcription slip would show here.
    for f in load_factors():
        if f.kg_ch4 is not None:
            total = f.kg_co2 + f.kg_ch4 + f.kg_n2o
            assert total == pytest.approx(f.kg_co2e, abs=1.5e-5 * max(1.0, f.kg_co2e)), f


def test_every_row_is_well_formed():
    for f in load_factors():
        assert f.kg_co2e > 0 and f.scope in (1, 2, 3) and f.source and f.table
        assert units.dimension_of(f.unit) is not None, f.unit


def test_us_electricity_is_egrid_co2_converted_from_pounds():
    # eGRID2022 US average: 823.149 lb CO2/MWh; 1 lb = 0.45359237 kg
    factor = TABLE.find("electricity", "kWh", "US", None)
    assert factor.unit == "MWh"
    assert factor.kg_co2e == pytest.approx(823.149 * 0.45359237, rel=1e-12)
    assert factor.kg_co2 == factor.kg_co2e and factor.kg_ch4 is None and factor.kg_n2o is None
    assert (factor.year, factor.scope) == (2022, 2)


def test_defaults_are_gb_and_the_latest_year():
    factor = TABLE.find("electricity", "kilowatt_hour", None, None)
    # DESNZ 2023, UK electricity, Electricity generated: 0.20707 kg CO2e/kWh
    assert (factor.region, factor.year, factor.kg_co2e) == ("GB", 2023, 0.20707)


def test_a_published_year_is_used_exactly():
    # BEIS 2022, UK electricity: 0.19338 kg CO2e/kWh
    assert TABLE.find("electricity", "kWh", "GB", 2022).kg_co2e == 0.19338


def test_a_later_year_falls_back_to_the_latest_earlier_edition():
    factor = TABLE.find("electricity", "kWh", "UK", 2025)
    assert (factor.year, factor.kg_co2e) == (2023, 0.20707)


def test_a_year_before_the_table_names_the_years_there_are():
    with pytest.raises(FactorNotFound, match="in 2019; years available: 2022, 2023"):
        TABLE.find("electricity", "kWh", "GB", 2019)


@pytest.mark.parametrize(
    ("unit", "factor_unit", "kg_co2e"),
    [("litre", "litre", 2.51206), ("gallon", "litre", 2.51206), ("MWh", "kWh", 0.23908),
     ("short_ton", "tonne", 3015.65462)],
)
def test_the_row_of_the_same_dimension_is_chosen(unit, factor_unit, kg_co2e):
    # DESNZ 2023, Fuels > Liquid fuels > Diesel (average biofuel blend)
    factor = TABLE.find("diesel", unit, None, None)
    assert (factor.unit, factor.kg_co2e) == (factor_unit, kg_co2e)


def test_a_unit_no_row_fits_says_what_the_activity_is_measured_in():
    with pytest.raises(FactorNotFound, match="electricity in GB is measured in energy"):
        TABLE.find("electricity", "kilogram", None, None)


@pytest.mark.parametrize(
    ("region", "code"), [("United Kingdom", "GB"), ("camx", "CAMX"), ("USA", "US")],
)
def test_regions_are_matched_forgivingly(region, code):
    assert TABLE.find("electricity", "kWh", region, None).region == code


def test_an_unknown_region_names_the_regions_there_are():
    with pytest.raises(FactorNotFound, match="no diesel factor for region 'US'; regions available: GB"):
        TABLE.find("diesel", "litre", "US", None)


def test_a_unit_it_cannot_read_is_a_factor_not_found():
    with pytest.raises(FactorNotFound, match="unit 'bananas' is not a unit"):
        TABLE.find("electricity", "bananas", None, None)


def test_activity_names_are_accepted_as_users_write_them():
    assert TABLE.find("Natural Gas", "m**3", None, None).kg_co2e == 2.03839


def test_an_unknown_activity_suggests_close_names():
    with pytest.raises(FactorNotFound, match="no factors for activity 'cola'; did you mean coal"):
        TABLE.find("cola", "tonne", None, None)


def test_without_gb_rows_the_caller_must_say_the_region():
    table = FactorTable([
        Factor("electricity", region, 2022, "MWh", 1.0, None, None, None, 2, "s", "t")
        for region in ("US", "CAMX")
    ])
    with pytest.raises(FactorNotFound, match="say which region for electricity: available CAMX, US"):
        table.find("electricity", "kWh", None, None)


def test_a_single_region_is_the_default():
    table = FactorTable([Factor("rail", "US", 2022, "passenger * mile", 0.1, None, None, None, 3,
                                "s", "t")])
    assert table.find("rail", "kilometer * passenger", None, None).region == "US"
