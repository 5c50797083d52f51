"""The vocabulary users write (chalicelib/carbon/activities.py): activity
names and synonyms, region names, and which header is which column."""
from __future__ import annotations

import pytest

from chalicelib.carbon.activities import (
    ACTIVITIES,
    match_columns,
    normalise_region,
    resolve_activity,
    suggest_activities,
)
from chalicelib.jobs.model import InputError


@pytest.mark.parametrize(
    ("text", "activity"),
    [
        ("electricity", "electricity"), ("Grid Electricity", "electricity"),
        ("power", "electricity"), ("Natural Gas", "natural_gas"), ("gas", "natural_gas"),
        ("NATURAL_GAS", "natural_gas"), ("mains gas", "natural_gas"),
        # gas oil is a distinct UK fuel (red diesel), not natural gas and not diesel
        ("gas oil", "gas_oil"), ("Gas-Oil", "gas_oil"), ("red diesel", "gas_oil"),
        ("diesel", "diesel"), ("Diesel (average biofuel blend)", "diesel"),
        ("petrol", "petrol"), ("gasoline", "petrol"), ("Motor Gasoline", "petrol"),
        ("LPG", "lpg"), ("propane", "propane"),
        ("heating oil", "burning_oil"), ("Burning oil", "burning_oil"), ("kerosene", "burning_oil"),
        ("fuel oil", "fuel_oil"), ("coal", "coal"),
        ("flight short haul", "flight_short_haul"), ("short-haul flight", "flight_short_haul"),
        ("Flights (short haul)", "flight_short_haul"), ("FLIGHT_SHORT_HAUL", "flight_short_haul"),
        ("short haul", "flight_short_haul"),
        ("Short haul flights without RF", "flight_short_haul_no_rf"),
        ("long-haul flights", "flight_long_haul"), ("Domestic flights", "flight_domestic"),
        ("domestic flight (no RF)", "flight_domestic_no_rf"),
        ("rail", "rail"), ("train", "rail"), ("National Rail", "rail"),
        ("road freight", "road_freight"), ("HGV", "road_freight"), ("trucks", "road_freight"),
        ("waste", "waste_landfill"), ("landfill", "waste_landfill"),
        ("Waste to landfill", "waste_landfill"), ("C&I waste", "waste_landfill"),
        ("incineration", "waste_combustion"),
    ],
)
def test_activity_names_are_matched_forgivingly(text, activity):
    resolved = resolve_activity(text)
    assert resolved is not None and resolved.id == activity


@pytest.mark.parametrize("text", ["cola", "electrcity", "domestic", "flights", ""])
def test_near_misses_are_not_guessed(text):
    assert resolve_activity(text) is None


@pytest.mark.parametrize(
    ("text", "first"),
    [("cola", "coal"), ("electrcity", "electricity"), ("flights", "domestic flights"),
     ("natral gas", "natural gas")],
)
def test_suggestions_name_the_closest_activities(text, first):
    assert suggest_activities(text)[0] == first


def test_every_activity_id_resolves_to_itself():
    for activity in ACTIVITIES:
        assert resolve_activity(activity.id) is activity
        assert resolve_activity(activity.label) is activity


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("UK", "GB"), ("GB", "GB"), ("United Kingdom", "GB"), ("u.k.", "GB"), ("England", "GB"),
        ("US", "US"), ("USA", "US"), ("U.S.A.", "US"), ("United States", "US"),
        ("camx", "CAMX"), ("US-CAMX", "CAMX"), ("CAMX (WECC California)", "CAMX"),
        ("eGRID RFCE", "RFCE"), ("France", "France"),
    ],
)
def test_regions(text, code):
    assert normalise_region(text) == code


def test_columns_found_by_synonyms_whatever_the_case():
    header = ["Site", "Fuel Type", "QTY", "UoM", "Country", "Reporting Year"]
    assert match_columns(header) == {
        "activity": "Fuel Type", "amount": "QTY", "unit": "UoM",
        "region": "Country", "year": "Reporting Year",
    }


@pytest.mark.parametrize(
    ("header", "role", "column"),
    [
        (["activity", "quantity", "units"], "amount", "quantity"),
        (["activity", "value", "unit"], "amount", "value"),
        (["activity", "consumption", "unit"], "amount", "consumption"),
        (["Activity_Type", "Amount", "Unit_of_Measure"], "unit", "Unit_of_Measure"),
        (["activity", "amount", "unit", "grid region"], "region", "grid region"),
        (["activity", "amount", "unit", "Location"], "region", "Location"),
        (["activity", "Energy consumption", "unit"], "amount", "Energy consumption"),
    ],
)
def test_column_synonyms(header, role, column):
    assert match_columns(header)[role] == column


def test_an_exact_name_is_not_stolen_by_a_partial_match():
    header = ["Energy consumption", "consumption", "activity", "unit"]
    assert match_columns(header)["amount"] == "consumption"


def test_explicit_mapping_wins_and_is_matched_forgivingly():
    header = ["Fuel", "Notes", "How much", "Unit"]
    columns = match_columns(header, {"activity": "notes", "amount": "How much"})
    assert columns["activity"] == "Notes" and columns["amount"] == "How much"


def test_optional_columns_may_be_absent():
    assert match_columns(["activity", "amount", "unit"]) == {
        "activity": "activity", "amount": "amount", "unit": "unit",
    }


def test_missing_required_column_names_role_header_and_fix():
    with pytest.raises(InputError) as caught:
        match_columns(["Fuel", "kWh used", "Site"])
    message = str(caught.value)
    assert "no amount column found" in message
    assert "'Fuel', 'kWh used', 'Site'" in message
    assert '{"columns": {"amount": "<column header>"}}' in message
    assert "also missing: unit" in message


def test_mapping_to_a_column_that_is_not_there():
    with pytest.raises(InputError, match="maps amount to 'kWh', but the header has no such column"):
        match_columns(["activity", "amount", "unit"], {"amount": "kWh"})


def test_mapping_an_unknown_role():
    with pytest.raises(InputError, match="unknown role"):
        match_columns(["activity", "amount", "unit"], {"colour": "activity"})
