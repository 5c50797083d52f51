"""Reading scan manifests: which column lists the documents, which the codes."""
from __future__ import annotations

import pytest

from chalicelib.jobs.model import InputError
from chalicelib.scan.manifest import MAX_DOCUMENTS, read_manifest


def _rows(*rows):
    return list(enumerate(rows, start=1))


@pytest.mark.parametrize("header", ["document", "File Name", "file_name", "S3 key", "KEY", "path"])
def test_the_documents_column_is_found_by_any_usual_name(header):
    manifest = read_manifest(_rows(["notes", header], ["x", "a.pdf"], ["y", "b.pdf"]))
    assert manifest.documents == ["a.pdf", "b.pdf"]
    assert manifest.codes == []


def test_codes_come_from_their_column_split_on_commas_and_semicolons_first_spelling_kept():
    manifest = read_manifest(_rows(["document", "Hole code"], ["a.pdf", "HOLE-1, HOLE-2"],
                                   ["b.pdf", "hole-1;HOLE-3"], ["c.pdf", ""]))
    assert manifest.codes == ["HOLE-1", "HOLE-2", "HOLE-3"]
    assert manifest.documents == ["a.pdf", "b.pdf", "c.pdf"]


def test_a_document_listed_twice_is_scanned_once_and_blank_cells_are_skipped():
    manifest = read_manifest(_rows(["key"], ["a.pdf"], [""], ["a.pdf"], ["b.pdf"], []))
    assert manifest.documents == ["a.pdf", "b.pdf"]


def test_a_bare_list_of_file_names_needs_no_header():
    assert read_manifest(_rows(["a.pdf"], ["b.docx"])).documents == ["a.pdf", "b.docx"]


def test_a_single_column_with_any_header_name_is_the_documents():
    assert read_manifest(_rows(["Drawings"], ["a.pdf"])).documents == ["a.pdf"]


def test_named_columns_override_the_usual_names():
    manifest = read_manifest(_rows(["Drawing", "document", "Wanted"], ["a.pdf", "x", "H1"]),
                             document_column="drawing", codes_column="wanted")
    assert manifest.documents == ["a.pdf"] and manifest.codes == ["H1"]


@pytest.mark.parametrize("rows, kwargs, words", [
    ([], {}, "the manifest is empty"),
    ([["title", "size"], ["x", "1"]], {}, "no column of documents: name one document, file_name or key"),
    ([["document"], [""]], {}, "column 'document' lists no documents"),
    ([["document"], ["a.pdf"]], {"document_column": "Drawing"}, "no column 'Drawing'"),
    ([["document"], ["a.pdf"]], {"codes_column": "codes2"}, "options.codes_column"),
])
def test_manifests_that_cannot_be_read_say_why(rows, kwargs, words):
    with pytest.raises(InputError, match=words):
        read_manifest(_rows(*rows), **kwargs)


def test_too_many_documents_names_the_row():
    rows = ((n, [f"d{n}.pdf"]) for n in range(1, MAX_DOCUMENTS + 3))
    with pytest.raises(InputError, match=f"row {MAX_DOCUMENTS + 1}"):
        read_manifest(iter([(0, ["document"]), *rows]))
