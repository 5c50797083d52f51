"""calculate_rows (chalicelib/carbon/calculate.py): worked examples computed
by hand from the published factors, unit conversions, row errors with their
row numbers, and one lookup per distinct combination.

Every expected figure is amount × conversion × factor with the factor quoted
from its table (provenance in chalicelib/carbon/FACTORS.md):
- DESNZ 2023: UK Government GHG conversion factors for company reporting
  2023 (flat file); fuels in kWh are Gross CV; gas columns are kg CO2e of
  each gas.
- BEIS 2022: the same publication's 2022 edition.
- eGRID2022: US EPA eGRID2022 CO2 total output emission rates, lb/MWh,
  converted at 1 lb = 0.45359237 kg.
Conversions are the legal definitions: 1 US gal = 3.785411784 L, 1 imperial
gal = 4.54609 L, 1 mile = 1.609344 km, 1 short ton = 0.90718474 t, and
therm = 100,000 Btu × 1,055.056 J.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from chalicelib.carbon.calculate import ROW_COLUMNS, calculate_rows, parse_amounts, totals
from chalicelib.carbon.factor_table import bundled_table
from chalicelib.carbon.model import Factor, FactorNotFound
from chalicelib.jobs.model import ServiceError

COLUMNS = {"activity": "activity", "amount": "amount", "unit": "unit", "region": "region",
           "year": "year"}


def frame(*rows: tuple) -> tuple[pd.DataFrame, pd.Series]:
    """Text cells as a file has them: (activity, amount, unit[, region[, year]])."""
    cells = [list(r) + [""] * (5 - len(r)) for r in rows]
    df = pd.DataFrame(cells, columns=list(COLUMNS.values()), dtype=object)
    return df, pd.Series(range(2, 2 + len(df)))


def calc(*rows: tuple, lookup=None, **kwargs):
    df, numbers = frame(*rows)
    return calculate_rows(df, numbers, COLUMNS, lookup or bundled_table(), **kwargs)


def one(*row, **kwargs) -> pd.Series:
    rows, errors = calc(tuple(row), **kwargs)
    assert errors == []
    return rows.iloc[0]


# --- worked examples, one or more per activity family -------------------------

@pytest.mark.parametrize(
    ("activity", "amount", "unit", "expected"),
    [
        # DESNZ 2023 UK electricity (Electricity generated): 0.20707 kg CO2e/kWh
        ("electricity", "1000", "kWh", 207.07),          # 1000 × 0.20707
        ("Grid electricity", "2.5", "MWh", 517.675),     # 2500 kWh × 0.20707
        # DESNZ 2023 Natural gas: 2.03839 /m³, 0.18293 /kWh (Gross CV)
        ("natural gas", "100", "m3", 203.839),           # 100 × 2.03839
        ("gas", "10000", "kWh", 1829.3),                 # 10000 × 0.18293
        # 100 therm = 100 × 105,505,600 J / 3,600,000 J/kWh = 2930.7111… kWh
        ("natural gas", "100", "therms", 536.1149835555556),
        # DESNZ 2023 Diesel (average biofuel blend): 2.51206 /litre, 0.23908 /kWh
        ("diesel", "1000", "litres", 2512.06),           # 1000 × 2.51206
        ("diesel", "100", "US gallons", 950.918152611504),  # 100 × 3.785411784 × 2.51206
        ("diesel", "1000", "kWh", 239.08),               # 1000 × 0.23908
        # DESNZ 2023 Petrol (average biofuel blend): 2.09747 /litre
        ("petrol", "50", "L", 104.8735),                 # 50 × 2.09747
        ("gasoline", "10", "UK gallons", 95.352873923),  # 10 × 4.54609 × 2.09747
        # DESNZ 2023 LPG 1.55713 /litre; Propane 1.54358 /litre
        ("LPG", "200", "litres", 311.426),               # 200 × 1.55713
        ("propane", "100", "litres", 154.358),           # 100 × 1.54358
        # DESNZ 2023 Burning oil 2.54016 /litre; Gas oil 2.75541 /litre; Fuel oil 3228.89019 /tonne
        ("heating oil", "500", "litres", 1270.08),       # 500 × 2.54016
        ("gas oil", "100", "litres", 275.541),           # 100 × 2.75541
        ("fuel oil", "2", "tonnes", 6457.78038),         # 2 × 3228.89019
        # DESNZ 2023 Coal (industrial): 2396.47994 /tonne
        ("coal", "3", "tonnes", 7189.43982),             # 3 × 2396.47994
        ("coal", "1", "short tons", 2174.0500312841156),  # 0.90718474 × 2396.47994
        # DESNZ 2023 Business travel- air, average passenger, with RF, /passenger.km
        ("short-haul flight", "1000", "pkm", 185.92),    # 1000 × 0.18592
        ("flights (long haul)", "5000", "passenger-km", 1306.4),  # 5000 × 0.26128
        ("domestic flight", "400", "passenger km", 109.032),      # 400 × 0.27258
        ("short haul flight without RF", "1000", "pkm", 109.74),  # 1000 × 0.10974
        ("short haul flight", "100", "passenger miles", 29.920923648),  # 100 × 1.609344 × 0.18592
        # DESNZ 2023 Business travel- land, National rail: 0.03546 /passenger.km
        ("train", "250", "pkm", 8.865),                  # 250 × 0.03546
        # DESNZ 2023 Freighting goods, HGV (all diesel), All HGVs, Average laden: 0.09696 /tonne.km
        ("HGV", "1000", "tkm", 96.96),                   # 1000 × 0.09696
        ("road freight", "1000", "ton-miles", 141.5589159736959),  # 1000 × 0.90718474 × 1.609344 × 0.09696
        # DESNZ 2023 Waste disposal, Commercial and industrial waste, /tonne:
        # landfill 520.33474, combustion 21.28081
        ("waste", "2.5", "tonnes", 1300.83685),          # 2.5 × 520.33474
        ("landfill", "500", "kg", 260.16737),            # 0.5 × 520.33474
        ("incineration", "1", "t", 21.28081),            # 1 × 21.28081
    ],
)
def test_worked_examples(activity, amount, unit, expected):
    row = one(activity, amount, unit)
    assert row.kg_co2e == pytest.approx(expected, rel=1e-9)


def test_gases_are_split_as_published():
    # DESNZ 2023 UK electricity per kWh: CO2 0.20496, CH4 0.000896, N2O 0.0012183 (kg CO2e)
    row = one("electricity", "1000", "kWh")
    assert (row.kg_co2, row.kg_ch4, row.kg_n2o) == pytest.approx((204.96, 0.896, 1.2183), rel=1e-9)
    assert (row.scope, row.factor, row.factor_unit, row.factor_year) == (2, 0.20707, "kWh", 2023)
    assert row.factor_source == "DESNZ GHG conversion factors for company reporting 2023"
    assert row.factor_table == "UK electricity > Electricity generated > Electricity: UK"


def test_gases_the_source_does_not_split_are_nan():
    row = one("waste", "1", "tonnes")
    assert math.isnan(row.kg_co2) and math.isnan(row.kg_ch4) and math.isnan(row.kg_n2o)


def test_us_average_and_egrid_subregions():
    # eGRID2022 US average 823.149 lb CO2/MWh: 1500 kWh = 1.5 MWh × 823.149 × 0.45359237
    us = one("electricity", "1500", "kWh", "USA")
    assert us.kg_co2e == pytest.approx(560.061158659695, rel=1e-9)
    assert (us.region, us.factor_unit, us.scope, us.year) == ("US", "MWh", 2, 2022)
    # eGRID2022 CAMX 497.443 lb/MWh: 1 MWh × 497.443 × 0.45359237
    camx = one("electricity", "1", "MWh", "camx")
    assert camx.kg_co2e == pytest.approx(225.63634930991, rel=1e-9)


def test_year_cell_picks_the_edition():
    # BEIS 2022 UK electricity 0.19338 /kWh: 1000 × 0.19338
    row = one("electricity", "1000", "kWh", "UK", "2022")
    assert (row.kg_co2e, row.factor_year, row.year) == (pytest.approx(193.38, rel=1e-9), 2022, 2022)


def test_later_year_uses_the_latest_earlier_edition_and_says_so():
    row = one("electricity", "1000", "kWh", "", "2024-03-31")
    assert (row.year, row.factor_year, row.kg_co2e) == (2024, 2023, pytest.approx(207.07, rel=1e-9))


def test_defaults_stand_in_for_empty_cells_only():
    rows, errors = calc(("electricity", "1000", "kWh", "", ""), ("electricity", "1000", "kWh", "GB", "2023"),
                        default_region="US", default_year=2022)
    assert errors == []
    assert list(rows.region) == ["US", "GB"] and list(rows.factor_year) == [2022, 2023]


def test_default_year_may_come_as_text():
    rows, errors = calc(("electricity", "1000", "kWh"), default_year="2022")
    assert errors == [] and rows.iloc[0].factor_year == 2022


def test_output_columns_and_types():
    rows, _ = calc(("electricity", "1", "kWh"))
    assert list(rows.columns) == ROW_COLUMNS
    assert rows["row"].tolist() == [2] and rows["unit"].tolist() == ["kWh"]
    assert rows["amount"].dtype == float and rows["scope"].dtype == np.int64


def test_without_region_and_year_columns():
    df = pd.DataFrame({"Fuel": ["diesel"], "Qty": ["10"], "UoM": ["litres"]}, dtype=object)
    rows, errors = calculate_rows(df, pd.Series([7]), {"activity": "Fuel", "amount": "Qty", "unit": "UoM"},
                                  bundled_table())
    assert errors == [] and rows.iloc[0].row == 7
    assert rows.iloc[0].kg_co2e == pytest.approx(25.1206, rel=1e-9)  # 10 × 2.51206


# --- amounts -----------------------------------------------------------------

@pytest.mark.parametrize(
    ("cell", "value"),
    [("1,234.5", 1234.5), ("12,000", 12000.0), (" 7 ", 7.0), ("0", 0.0), ("1e3", 1000.0),
     ("1,234,567.25", 1234567.25)],
)
def test_amounts_accepted(cell, value):
    values, reasons = parse_amounts(np.array([cell], dtype=object))
    assert values[0] == value and reasons[0] == ""


@pytest.mark.parametrize(
    ("cell", "reason"),
    [("", "the amount is empty"), ("   ", "the amount is empty"),
     ("abc", "amount 'abc' is not a number"), ("12,5", "amount '12,5' is not a number"),
     ("1,23,4", "amount '1,23,4' is not a number"), ("nan", "amount 'nan' is not a number"),
     ("inf", "amount 'inf' is not a number"), ("-5", "amount '-5' is negative"),
     ("-1,000", "amount '-1,000' is negative")],
)
def test_amounts_refused(cell, reason):
    _, reasons = parse_amounts(np.array([cell], dtype=object))
    assert reasons[0] == reason


# --- errors: every kind, with its row number; the other rows still count ---------

def test_each_error_names_its_row_and_the_good_rows_still_count():
    rows, errors = calc(
        ("electricity", "1000", "kWh"),                    # row 2 ok
        ("cola", "1", "tonnes"),                           # row 3
        ("", "1", "kWh"),                                  # row 4
        ("electricity", "1", "kg"),                        # row 5
        ("electricity", "1", "bananas"),    # row 6
        ("electricity", "1", ""),                          # row 7
        ("electricity", "-3", "kWh"),                      # row 8
        ("electricity", "lots", "kWh"),                    # row 9
        ("electricity", "", "kWh"),                        # row 10
        ("electricity", "1", "kWh", "France"),             # row 11
        ("electricity", "1", "kWh", "", "FY23"),           # row 12
        ("electricity", "1", "kWh", "", "2019"),           # row 13
        ("diesel", "1", "litres", "US"),                   # row 14
        ("rail", "10", "km"),                              # row 15
        ("natural gas", "100", "m3"),                      # row 16 ok
    )
    assert rows["row"].tolist() == [2, 16]
    assert rows["kg_co2e"].tolist() == pytest.approx([207.07, 203.839], rel=1e-9)
    assert errors == [
        {"row": 3, "error": "unknown activity 'cola'; did you mean coal?"},
        {"row": 4, "error": "the activity is empty"},
        {"row": 5, "error": "unit 'kg' does not fit electricity, which is measured in energy (e.g. kWh)"},
        {"row": 6, "error": "unit 'bananas' is not a unit Sluice knows "
                            "(e.g. kWh, MWh, litres, US gallons, m³, tonnes, km, passenger-km, tonne-km)"},
        {"row": 7, "error": "the unit is empty"},
        {"row": 8, "error": "amount '-3' is negative"},
        {"row": 9, "error": "amount 'lots' is not a number"},
        {"row": 10, "error": "the amount is empty"},
        {"row": 11, "error": "no electricity factor for region 'France'; regions available: "
                             + ", ".join(sorted(bundled_table().regions("electricity")))},
        {"row": 12, "error": "year 'FY23' is not a year"},
        {"row": 13, "error": "no electricity factor for GB in 2019; years available: 2022, 2023"},
        {"row": 14, "error": "no diesel factor for region 'US'; regions available: GB"},
        {"row": 15, "error": "unit 'km' does not fit rail, which is measured in passenger distance "
                             "(e.g. passenger-km)"},
    ]


def test_a_fuel_lists_every_dimension_it_accepts():
    _, errors = calc(("diesel", "1", "km"))
    assert errors[0]["error"] == ("unit 'km' does not fit diesel, which is measured in volume (e.g. litres) "
                                  "or energy (e.g. kWh) or mass (e.g. tonnes)")


def test_a_row_with_a_bad_activity_and_a_bad_amount_reports_the_activity():
    _, errors = calc(("cola", "abc", "kg"))
    assert errors == [{"row": 2, "error": "unknown activity 'cola'; did you mean coal?"}]


def test_empty_frame():
    rows, errors = calc()
    assert errors == [] and list(rows.columns) == ROW_COLUMNS and rows.empty


# --- the lookup: once per distinct combination ------------------------------

class CountingLookup:
    """A FactorLookup that records its calls and answers from the table."""

    def __init__(self):
        self.calls: list[tuple] = []

    def find(self, activity, unit, region, year):
        self.calls.append((activity, unit, region, year))
        return bundled_table().find(activity, unit, region, year)


def test_lookup_called_once_per_distinct_combination():
    lookup = CountingLookup()
    rows = [("electricity", str(i), "kWh", "UK") for i in range(3000)]
    rows += [("Electricity", "1", "kwh", "GB") for _ in range(3000)]   # same factor, other spelling
    rows += [("diesel", "2", "litres") for _ in range(3000)]
    rows += [("diesel", "2", "US gallons") for _ in range(1000)]       # another unit: another call
    rows += [("electricity", "1", "kWh", "US") for _ in range(1000)]
    rows += [("cola", "1", "kg")] * 500                                # no lookup for unknown names
    rows += [("electricity", "1", "kg")] * 500                         # nor for units that cannot fit
    result, errors = calc(*rows, lookup=lookup)
    assert len(result) == 11000 and len(errors) == 1000
    assert sorted(lookup.calls, key=str) == sorted([
        ("electricity", "kilowatt_hour", "GB", None),
        ("diesel", "liter", None, None),
        ("diesel", "gallon", None, None),
        ("electricity", "kilowatt_hour", "US", None),
    ], key=str)


def test_factor_not_found_is_asked_once_and_told_to_every_row():
    class Refusing(CountingLookup):
        def find(self, activity, unit, region, year):
            self.calls.append((activity, unit, region, year))
            raise FactorNotFound("no such factor in the API")

    lookup = Refusing()
    rows, errors = calc(*[("electricity", "1", "kWh", "UK")] * 50, lookup=lookup)
    assert rows.empty and len(lookup.calls) == 1
    assert errors[0] == {"row": 2, "error": "no such factor in the API"} and len(errors) == 50


def test_service_errors_propagate_so_the_chunk_is_retried():
    class Down:
        def find(self, activity, unit, region, year):
            raise ServiceError("factor API unreachable")

    with pytest.raises(ServiceError):
        calc(("electricity", "1", "kWh"), lookup=Down())


def test_a_factor_from_another_source_is_used_as_given():
    class Api:
        def find(self, activity, unit, region, year):
            return Factor(activity, "GB", 2024, "MWh", 200.0, 199.0, 0.5, 0.5, 2, "api", "grid")

    row = one("electricity", "500", "kWh", lookup=Api())
    # 500 kWh = 0.5 MWh × 200 kg CO2e/MWh
    assert (row.kg_co2e, row.kg_co2, row.factor_source, row.factor_year) == (100.0, 99.5, "api", 2024)


# --- volume (no timing: speed is measured by benchmarks) ---------------------

def test_two_hundred_thousand_rows():
    n = 200_000
    rng = np.random.default_rng(0)
    amounts = rng.integers(0, 10_000, n)
    kinds = np.array(["electricity", "diesel", "train"], dtype=object)
    kind_units = np.array(["kWh", "litres", "pkm"], dtype=object)
    # DESNZ 2023: 0.20707 /kWh, 2.51206 /litre, 0.03546 /passenger.km
    factors = np.array([0.20707, 2.51206, 0.03546])
    pick = rng.integers(0, 3, n)
    df = pd.DataFrame({"activity": kinds[pick], "amount": amounts.astype(str).astype(object),
                       "unit": kind_units[pick]}, dtype=object)
    lookup = CountingLookup()
    rows, errors = calculate_rows(df, pd.Series(np.arange(2, n + 2)),
                                  {"activity": "activity", "amount": "amount", "unit": "unit"}, lookup)
    assert errors == [] and len(rows) == n and len(lookup.calls) == 3
    assert rows["row"].to_numpy().tolist() == list(range(2, n + 2))
    assert rows["kg_co2e"].sum() == pytest.approx(float((amounts * factors[pick]).sum()), rel=1e-9)


def test_totals_by_scope_and_activity():
    rows, _ = calc(("electricity", "1000", "kWh"), ("natural gas", "100", "m3"), ("train", "250", "pkm"))
    summary = totals(rows)
    assert summary["kg_co2e"] == pytest.approx(207.07 + 203.839 + 8.865, rel=1e-9)
    assert summary["by_scope"] == pytest.approx({1: 203.839, 2: 207.07, 3: 8.865}, rel=1e-9)
    assert set(summary["by_activity"]) == {"electricity", "natural_gas", "rail"}
    assert summary["rows"] == 3


def test_a_cell_too_long_to_name_anything_is_refused_before_any_lookup_and_quoted_in_part():
    class NoLookups:
        def find(self, *args):
            raise AssertionError("a 10 MB cell must never reach the factor source")

    huge = "Z" * (10 * 2**20)
    rows, errors = calc(("electricity", "1", "kWh"), (huge, "1", "kWh"), ("electricity", "1", huge),
                        ("electricity", "1" * 500, "kWh"), lookup=None)
    assert rows["row"].tolist() == [2]
    shown = "'" + "Z" * 60 + "…' (10,485,760 characters)"
    assert errors == [
        {"row": 3, "error": f"the activity {shown} is too long to be one"},
        {"row": 4, "error": f"the unit {shown} is too long to be one"},
        {"row": 5, "error": "amount '" + "1" * 60 + "…' (500 characters) is not a number"},
    ]
    _, errors = calc((huge, "1", "kWh"), lookup=NoLookups())
    assert len(errors[0]["error"]) < 200
