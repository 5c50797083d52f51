"""The NPI detector: CMS's check digit, what counts as a candidate, ranking
by the word NPI nearby, one finding per NPI and page, and masked context."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.detect import (
    Detector,
    Finding,
    NpiDetector,
    UnknownDetectorError,
    detectors_for,
    is_valid_npi,
    npi_check_digit,
)
from chalicelib.detect.npi import BARE_SCORE, NEAR_KEYWORD_SCORE
from chalicelib.jobs.model import InputError

CMS_EXAMPLE = "1234567893"  # CMS: the nine digits 123456789 get check digit 3

nine_digits = st.text(alphabet="0123456789", min_size=9, max_size=9)


def find(text: str, page: int = 1) -> list[Finding]:
    return NpiDetector().find(text, page)


def values(text: str) -> list[str]:
    return [finding.value for finding in find(text)]


def _luhn_valid(digits: str) -> bool:
    """The textbook Luhn validity test over a whole number, check digit
    included: an oracle written the other way round from the detector's."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        doubled = int(char) * 2 if position % 2 else int(char)
        total += doubled // 10 + doubled % 10
    return total % 10 == 0


# --- the check digit -----------------------------------------------------------

def test_cms_example():
    assert npi_check_digit("123456789") == 3
    assert is_valid_npi(CMS_EXAMPLE)
    assert values(CMS_EXAMPLE) == [CMS_EXAMPLE]


@pytest.mark.parametrize("last", [d for d in "0123456789" if d != "3"])
def test_every_other_check_digit_is_wrong(last):
    assert not is_valid_npi("123456789" + last)
    assert values("123456789" + last) == []


@given(nine_digits)
def test_check_digit_agrees_with_luhn_over_the_80840_prefix(first_nine):
    npi = first_nine + str(npi_check_digit(first_nine))
    assert _luhn_valid("80840" + npi)


@given(nine_digits)
def test_check_digit_agrees_with_cms_constant_24_method(first_nine):
    # CMS: without the prefix, add 24 to the doubled-and-added total of the nine digits.
    total = 24
    for position, char in enumerate(reversed(first_nine)):
        doubled = int(char) * 2 if position % 2 == 0 else int(char)
        total += doubled // 10 + doubled % 10
    assert npi_check_digit(first_nine) == (10 - total % 10) % 10


FULLWIDTH_CMS_EXAMPLE = "\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19\uff13"


@pytest.mark.parametrize("value", ["123456789", "12345678930", "12345678a3", FULLWIDTH_CMS_EXAMPLE,
                                   " 1234567893", ""])
def test_only_ten_ascii_digits_can_be_valid(value):
    assert not is_valid_npi(value)


@pytest.mark.parametrize("value", ["12345678", "1234567890", "12345678a"])
def test_check_digit_needs_nine_digits(value):
    with pytest.raises(ValueError, match="nine digits"):
        npi_check_digit(value)


@given(nine_digits)
def test_any_nine_digits_with_their_check_digit_are_found(first_nine):
    npi = first_nine + str(npi_check_digit(first_nine))
    assert values(npi) == [npi]
    assert values(f"Billing provider {npi}, see attached.") == [npi]


@given(nine_digits, st.integers(0, 9), st.integers(1, 9))
def test_changing_any_one_digit_makes_it_not_found(first_nine, position, shift):
    npi = first_nine + str(npi_check_digit(first_nine))
    changed = npi[:position] + str((int(npi[position]) + shift) % 10) + npi[position + 1:]
    assert values(f"NPI {changed}") == []


# --- candidates ------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "1234567893", "NPI: 1234567893", "(1234567893)", "npi#1234567893", "1234567893.", "ID 1234567893, next",
    "line one\n1234567893\nline three", "NPI1234567893", "npi1234567893", "1234567893 is on file",
    "x_1234567893",
])
def test_ten_digits_standing_alone_are_found(text):
    assert values(text) == [CMS_EXAMPLE]


@pytest.mark.parametrize("text", [
    "12345678931",            # an 11-digit run
    "01234567893",            # ...whose last ten are an NPI
    "123456789312345678931",  # a long run
    "A1234567893",            # glued to letters
    "1234567893B",
    "ID1234567893",
    "1234567893.50",          # joined to more digits: an amount
    "9.1234567893",
    "1234567893-01",          # a longer code
    "01/1234567893",
])
def test_ten_digits_inside_something_longer_are_not(text):
    assert values(text) == []


@pytest.mark.parametrize("text", ["NPI 123-456-7893", "NPI 123 456 7893", "NPI: 123-456-7893.",
                                  "npi\n123 456 7893"])
def test_three_three_four_groups_count_after_the_word_npi(text):
    assert [(f.value, f.score) for f in find(text)] == [(CMS_EXAMPLE, NEAR_KEYWORD_SCORE)]


@pytest.mark.parametrize("text", [
    "Phone 123-456-7893",      # without the keyword that is a phone number
    "123 456 7893",
    "NPI 123-456 7893",        # separators of two kinds
    "NPI 123.456.7893",
    "NPI (123) 456-7893",
    "NPI 1 123 456 7893",      # more digit groups on either side
    "NPI 123-456-7893-1",
    "NPI 123 456 7893 2",
    "NPI 12-3456-7893",
])
def test_other_digit_groups_are_not_npis(text):
    assert values(text) == []


# --- ranking -------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "NPI 1234567893", "npi: 1234567893", "N.P.I. 1234567893", "Provider NPIs: 1234567893",
    "National Provider Identifier 1234567893", "NATIONAL PROVIDER ID\n1234567893",
    "NPI" + " " * 60 + "1234567893", "NPI number of the billing provider on this claim: 1234567893",
])
def test_the_word_npi_shortly_before_ranks_it_high(text):
    assert [f.score for f in find(text)] == [NEAR_KEYWORD_SCORE]


@pytest.mark.parametrize("text", [
    "1234567893", "NPI" + " " * 61 + "1234567893", "1234567893 is the NPI", "SNPI 1234567893",
    "Nationally provided 1234567893", "INPUT 1234567893",
])
def test_without_the_word_npi_shortly_before_it_ranks_lower(text):
    assert [f.score for f in find(text)] == [BARE_SCORE]


def test_scores_let_callers_rank():
    assert 0 < BARE_SCORE < NEAR_KEYWORD_SCORE <= 1


# --- findings ---------------------------------------------------------------------

def test_an_npi_seen_twice_on_a_page_is_one_finding_with_its_best_score():
    other = "1245319599"
    assert is_valid_npi(other)
    text = f"Ref 1234567893 and {other}.\n" + "filler " * 12 + "\nNPI: 1234567893\nagain 1234567893"
    found = NpiDetector().find(text, 7)
    assert [(f.value, f.score, f.page, f.kind) for f in found] == [
        (CMS_EXAMPLE, NEAR_KEYWORD_SCORE, 7, "npi"), (other, BARE_SCORE, 7, "npi")]
    assert found[0].context == "filler filler filler NPI: ******7893 again **********"


def test_nothing_to_find():
    assert find("") == [] and find("no numbers here at all") == []


def test_context_masks_the_value_and_every_other_digit():
    text = "Patient seen 01/02/2024 by Dr Who, NPI 1234567893, phone (555) 123-4567, thanks"
    (finding,) = find(text)
    assert finding.context == "**/**/**** by Dr Who, NPI ******7893, phone (***) ***-****, thanks"
    grouped = find("Rendering NPI 123-456-7893 for the claim")
    assert grouped[0].context == "Rendering NPI ***-***-7893 for the claim"


@given(nine_digits, st.text(max_size=80), st.text(max_size=80))
def test_context_never_shows_an_npi_in_full(first_nine, before, after):
    npi = first_nine + str(npi_check_digit(first_nine))
    found = find(f"{before} NPI {npi} {after}")
    assert npi in [finding.value for finding in found]
    for finding in found:
        assert finding.value not in finding.context
        assert sum(ch.isdigit() for ch in finding.context) <= 4
        if finding.value == npi:
            assert "******" + npi[-4:] in finding.context


# --- the registry ------------------------------------------------------------------

def test_detectors_for_builds_each_named_detector_once():
    detectors = detectors_for(["npi", "npi"])
    assert [d.name for d in detectors] == ["npi"]
    assert isinstance(detectors[0], Detector) and isinstance(detectors[0], NpiDetector)
    assert detectors_for([]) == []


def test_an_unknown_detector_is_a_clear_input_error():
    with pytest.raises(UnknownDetectorError, match="'ssn'.*choose from: npi") as caught:
        detectors_for(["npi", "ssn"])
    assert isinstance(caught.value, InputError) and isinstance(caught.value, ValueError)
    with pytest.raises(UnknownDetectorError, match=r"\['npi'\]"):
        detectors_for([["npi"]])
