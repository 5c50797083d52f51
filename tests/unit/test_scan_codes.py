"""Finding target codes: whole tokens, any case, every dash, in target order."""
from __future__ import annotations

import pytest

from chalicelib.jobs.model import InputError
from chalicelib.scan.codes import MAX_CODES, CodeMatcher, normalise_codes, status_words
from tests.support.documents import near_misses

CODES = ["HOLE-1", "HOLE-2", "HOLE-12", "BH 7"]


@pytest.mark.parametrize("text, found", [
    ("see HOLE-1 and HOLE-2", ["HOLE-1", "HOLE-2"]),
    ("hole-12 only", ["HOLE-12"]),
    ("(HOLE-1), HOLE-2. end", ["HOLE-1", "HOLE-2"]),
    ("HOLE-1,HOLE-2;HOLE-12", ["HOLE-1", "HOLE-2", "HOLE-12"]),
    ("HOLE\u20131 with an en dash, HOLE\u22122 with a minus", ["HOLE-1", "HOLE-2"]),
    ("bh   7 across spaces and bh\n7 across a line", ["BH 7"]),
    ("HOLE-12 is not HOLE-1", ["HOLE-1", "HOLE-12"]),
    ("the end: HOLE-2", ["HOLE-2"]),
    ("", []),
])
def test_codes_are_found_as_whole_tokens_in_any_case(text, found):
    assert CodeMatcher(CODES).find(text) == found


@pytest.mark.parametrize("text", near_misses("HOLE-1") + [
    "HOLE-1-A", "HOLE-1.5", "HOLE-10", "XHOLE-1", "HOLE-1x", "a/HOLE-1", "HOLE-1/b", "HOLE1", "HOLE - 1",
])
def test_near_misses_are_not_matches(text):
    assert CodeMatcher(["HOLE-1"]).find(f"drawing {text} done") == []


def test_each_code_is_reported_once_in_the_order_of_the_targets():
    assert CodeMatcher(["B", "A", "C"]).find("C a c A b C") == ["B", "A", "C"]


def test_codes_with_regex_characters_are_literal():
    matcher = CodeMatcher(["A+B", "X(1)", "P.Q"])
    assert matcher.find("A+B and X(1) and PxQ") == ["A+B", "X(1)"]


def test_many_codes_in_one_expression():
    codes = [f"HOLE-{n}" for n in range(5000)]
    assert CodeMatcher(codes).find("HOLE-4999 HOLE-50000 hole-7") == ["HOLE-7", "HOLE-4999"]


@pytest.mark.parametrize("given, codes", [
    ("HOLE-1, HOLE-2;HOLE-3\nHOLE-4", ["HOLE-1", "HOLE-2", "HOLE-3", "HOLE-4"]),
    (["  HOLE-1 ", "hole-1", "", "HOLE\u20132"], ["HOLE-1", "HOLE-2"]),
    (("A  B",), ["A B"]),
])
def test_codes_are_normalised(given, codes):
    assert normalise_codes(given) == codes


@pytest.mark.parametrize("given, words", [
    ([], "lists no codes"),
    (" , ;", "lists no codes"),
    ([1], r"target_hole_codes\[1\] is 1"),
    (["ok", None], r"target_hole_codes\[2\] is None"),
    ({"a": 1}, "must be a list of codes"),
    (["x" * 201], "at most 200"),
    (["---"], "has no letter or digit"),
    ([f"C{n}" for n in range(MAX_CODES + 1)], "more than 20,000 target codes"),
])
def test_bad_code_lists_say_what_is_wrong(given, words):
    with pytest.raises(InputError, match=words):
        normalise_codes(given)


@pytest.mark.parametrize("count, words", [(0, "No Code"), (1, "1 Code"), (3, "3 Codes")])
def test_status_in_seed_001_words(count, words):
    assert status_words(count) == words
