"""Zip members read without the zip's directory: listed once in zip order,
fetched a run of neighbours per read, inflated and CRC-checked by zipfile."""
from __future__ import annotations

import dataclasses
import io
import zipfile

import pytest

from chalicelib.sources.zip_members import ZipMember, ZipMemberError, inflate, list_documents, runs


def _zip(entries: list[tuple[str, bytes, int]], encrypt: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data, method in entries:
            archive.writestr(name, data, compress_type=method)
            if name == encrypt:
                # zipfile cannot encrypt; the directory's flag is what a reader trusts.
                archive.filelist[-1].flag_bits |= 0x1
    return buffer.getvalue()


def _listed(data: bytes) -> dict[str, ZipMember]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return dict(list_documents(archive))


METHODS = [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]


def test_documents_in_zip_order_without_folders_or_hidden_files():
    data = _zip([("b.txt", b"B", 8), ("dir/", b"", 0), ("a.txt", b"A", 8), ("__MACOSX/._a.txt", b"x", 8),
                 ("dir/.DS_Store", b"x", 8), ("dir/c.pdf", b"C", 0)])
    listed = _listed(data)
    assert list(listed) == ["b.txt", "a.txt", "dir/c.pdf"]
    offsets = [m.offset for m in listed.values()]
    assert offsets == sorted(offsets) and listed["b.txt"].offset == 0
    # Each member ends where the next entry (listed or not) begins.
    assert listed["b.txt"].end < listed["a.txt"].offset


@pytest.mark.parametrize("method", METHODS)
def test_every_method_inflates_from_the_members_own_bytes(method):
    content = b"HOLE-1 " * 5000
    data = _zip([("x.txt", b"first", 8), ("y.txt", content, method), ("z.txt", b"last", 0)])
    member = _listed(data)["y.txt"]
    assert inflate("y.txt", member, data[member.offset:member.end], limit=10**6) == content


def test_inflating_stops_past_the_limit_whatever_the_size_declared():
    data = _zip([("big.txt", b"x" * 100_000, 8)])
    member = _listed(data)["big.txt"]
    assert len(inflate("big.txt", member, data[member.offset:member.end], limit=1000)) == 1001


@pytest.mark.parametrize("change, words", [
    ({"crc": 12345}, "damaged inside the zip"),
    ({"offset": 5}, "no member header where its directory says"),
    ({"method": 99}, "cannot be read from the zip"),
])
def test_a_damaged_member_says_so(change, words):
    data = _zip([("a.txt", b"HOLE-1 " * 100, 8)])
    member = dataclasses.replace(_listed(data)["a.txt"], **change)
    with pytest.raises(ZipMemberError, match=words):
        inflate("a.txt", member, data[member.offset:member.end], limit=10**6)


def test_an_encrypted_member_is_refused_before_any_inflating():
    data = _zip([("secret.txt", b"x", 8)], encrypt="secret.txt")
    member = _listed(data)["secret.txt"]
    with pytest.raises(ZipMemberError, match="encrypted"):
        inflate("secret.txt", member, data[member.offset:member.end], limit=100)


def test_neighbours_share_a_read_and_gaps_or_the_size_cap_split_them():
    def m(offset, end):
        return ZipMember(offset, end, 8, 0, 0, 0, 0)

    members = [m(0, 10), m(10, 25), None, m(40, 50), m(25, 30), m(50, 200)]
    assert list(runs(members, max_bytes=100)) == [(0, 30, [0, 1, 4]), (40, 50, [3]), (50, 200, [5])]
    assert list(runs(members, max_bytes=1000)) == [(0, 30, [0, 1, 4]), (40, 200, [3, 5])]
    assert list(runs([None, None], max_bytes=10)) == []


def test_a_member_round_trips_through_a_chunk_message():
    member = ZipMember(1, 2, 8, 0, 3, 4, 5)
    assert ZipMember.from_message(member.to_message()) == member


def test_an_empty_zip_lists_nothing():
    assert _listed(_zip([])) == {}


def test_names_written_with_backslashes_or_leading_dots_are_documents():
    data = _zip([("..\\..\\win.ini", b"A", 8), ("../../etc/passwd", b"B", 8), (".\\.hidden", b"C", 8)])
    assert list(_listed(data)) == ["..\\..\\win.ini", "../../etc/passwd"]
