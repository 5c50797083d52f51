"""Office packages refused before a parser opens them: zip bombs (a part that
inflates far past its packed size), parts too big to hold in memory, and XML
that declares entities (billion laughs, external entities)."""
from __future__ import annotations

import io
import random
import string
import zipfile

import defusedxml
import pytest

from chalicelib.jobs.model import InputError
from chalicelib.sources import packages
from chalicelib.sources.packages import check_xlsx_archive, is_worksheet, package_problem, xml_refusal
from tests.support.files import xlsx_bytes

LAUGHS = ('<!DOCTYPE worksheet [<!ENTITY lol0 "lol">'
          + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)) + "]>")


def _package(parts: dict[str, bytes]) -> zipfile.ZipFile:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return zipfile.ZipFile(io.BytesIO(out.getvalue()))


def _book_with(tmp_path, parts: dict[str, bytes]) -> str:
    base = zipfile.ZipFile(io.BytesIO(xlsx_bytes([["a"], [1]])))
    merged = {name: base.read(name) for name in base.namelist()} | parts
    path = tmp_path / "book.xlsx"
    path.write_bytes(_package(merged).fp.getvalue())
    return str(path)


@pytest.fixture
def small_limits(monkeypatch):
    monkeypatch.setattr(packages, "BOMB_GRACE_BYTES", 10_000)
    monkeypatch.setattr(packages, "MAX_WHOLE_PART_BYTES", 50_000)
    monkeypatch.setattr(packages, "MAX_UNPACKED_BYTES", 200_000)


def test_a_sound_workbook_passes(tmp_path):
    check_xlsx_archive(_book_with(tmp_path, {}))


def test_a_part_that_inflates_a_hundred_fold_past_the_grace_size_is_a_zip_bomb(small_limits):
    problem = package_problem(_package({"xl/worksheets/sheet1.xml": b"A" * 40_000}), streamed=is_worksheet)
    assert "xl/worksheets/sheet1.xml would inflate from" in problem and "a zip bomb" in problem
    # the same bytes under the grace size, or compressing as XML does, pass
    small = _package({"xl/worksheets/sheet1.xml": b"A" * 9_000})
    assert package_problem(small, streamed=is_worksheet) is None
    varied = "".join(f'<row r="{i}"><c><v>{i * 7919 % 10007}</v></c></row>' for i in range(1500)).encode()
    assert package_problem(_package({"xl/worksheets/sheet1.xml": varied}), streamed=is_worksheet) is None


def test_parts_read_whole_are_bounded_and_sheets_only_by_the_total(small_limits):
    text = "".join(random.Random(1).choices(string.ascii_letters, k=56_400)).encode()  # barely compresses
    problem = package_problem(_package({"xl/sharedStrings.xml": text}), streamed=is_worksheet)
    assert problem.startswith("its shared strings (xl/sharedStrings.xml) would unpack to 56,400 bytes")
    assert package_problem(_package({"xl/worksheets/sheet1.xml": text}), streamed=is_worksheet) is None
    many = {f"xl/worksheets/sheet{i}.xml": text for i in range(4)}
    assert "would unpack to 225,600 bytes" in package_problem(_package(many), streamed=is_worksheet)


def test_a_doctype_in_any_part_is_refused_and_the_part_named(tmp_path):
    sheet = (LAUGHS + '<worksheet><sheetData><row r="1"><c t="inlineStr"><is><t>&lol9;</t></is></c>'
             "</row></sheetData></worksheet>").encode()
    with pytest.raises(InputError, match=r"xl/worksheets/sheet1.xml declares XML entities"):
        check_xlsx_archive(_book_with(tmp_path, {"xl/worksheets/sheet1.xml": sheet}))
    xxe = b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><Relationships/>'
    with pytest.raises(InputError, match=r"xl/_rels/workbook.xml.rels declares XML entities"):
        check_xlsx_archive(_book_with(tmp_path, {"xl/_rels/workbook.xml.rels": xxe}))


def test_too_many_parts(monkeypatch):
    monkeypatch.setattr(packages, "MAX_PARTS", 3)
    problem = package_problem(_package({f"p{i}.xml": b"<x/>" for i in range(4)}))
    assert problem == "it holds 4 parts (at most 3): not an Office file Sluice reads"


def test_xml_refusal_finds_the_parser_refusal_among_the_causes():
    try:
        try:
            defusedxml.ElementTree.fromstring(LAUGHS + "<worksheet>&lol9;</worksheet>")
        except Exception as inner:
            raise ValueError("Unable to read workbook") from inner
    except ValueError as outer:
        said = xml_refusal(outer)
    assert said.startswith("its XML declares entities (EntitiesForbidden")
    assert xml_refusal(ValueError("a damaged part")) is None
