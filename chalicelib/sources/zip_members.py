"""Documents inside a zip in the blob store, read without the zip's directory.

A zip's central directory sits at its end and lists every member: for a
100,000-document zip it is several megabytes. The dispatcher reads it once
and hands each chunk where its members lie (ZipMember); a worker then fetches
its members' bytes with one ranged read per run of neighbouring members and
inflates them itself, never touching the directory. zipfile does the
inflating and the CRC check (ZipExtFile), for every method it knows.
"""
from __future__ import annotations

import io
import posixpath
import struct
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., name length, extra length
_LOCAL_SIGNATURE = b"PK\x03\x04"
_ENCRYPTED = 0x1


class ZipMemberError(Exception):
    """One member cannot be read; the message says why."""


@dataclass(frozen=True)
class ZipMember:
    #: where its local header starts, and where the next entry (or the
    #: directory) starts: its bytes, data descriptor and all, lie between
    offset: int
    end: int
    method: int
    flags: int
    crc: int
    compressed: int
    size: int

    def to_message(self) -> dict[str, int]:
        return {"offset": self.offset, "end": self.end, "method": self.method, "flags": self.flags,
                "crc": self.crc, "compressed": self.compressed, "size": self.size}

    @classmethod
    def from_message(cls, body: dict[str, int]) -> ZipMember:
        return cls(**{name: int(body[name]) for name in cls.__dataclass_fields__})


def list_documents(archive: zipfile.ZipFile) -> list[tuple[str, ZipMember]]:
    """The archive's documents (no folders, no macOS resource forks or dot
    files), in the order they lie in it."""
    entries = sorted(archive.infolist(), key=lambda i: i.header_offset)
    if not entries:
        return []
    ends = [i.header_offset for i in entries[1:]] + [archive.start_dir]
    return [(info.filename, ZipMember(info.header_offset, end, info.compress_type, info.flag_bits,
                                      info.CRC, info.compress_size, info.file_size))
            for info, end in zip(entries, ends, strict=True) if _is_document(info)]


def _is_document(info: zipfile.ZipInfo) -> bool:
    # Windows tools may write "\\" between folders: "..\\notes.txt" is notes.txt, not a dot file.
    base = posixpath.basename(info.filename.replace("\\", "/"))
    return not (info.is_dir() or info.filename.startswith("__MACOSX/") or base.startswith(".")
                or not base)


def runs(members: Sequence[ZipMember | None], max_bytes: int) -> Iterator[tuple[int, int, list[int]]]:
    """(start, end, positions in `members`) of byte ranges to fetch: members
    that follow each other in the zip share one range, up to `max_bytes`."""
    run: list[int] = []
    for position in sorted((p for p, m in enumerate(members) if m is not None),
                           key=lambda p: members[p].offset):
        member = members[position]
        if run and (members[run[-1]].end != member.offset
                    or member.end - members[run[0]].offset > max_bytes):
            yield members[run[0]].offset, members[run[-1]].end, run
            run = []
        run.append(position)
    if run:
        yield members[run[0]].offset, members[run[-1]].end, run


def inflate(name: str, member: ZipMember, raw: bytes, limit: int) -> bytes:
    """The member's content from `raw`, its bytes from `member.offset` on.
    Never inflates more than `limit` + 1 bytes (a declared size can lie)."""
    if member.flags & _ENCRYPTED:
        raise ZipMemberError("it is encrypted in the zip")
    if len(raw) < _LOCAL_HEADER.size:
        raise ZipMemberError("the zip ends inside its header")
    signature, name_length, extra_length = _LOCAL_HEADER.unpack_from(raw)
    if signature != _LOCAL_SIGNATURE:
        raise ZipMemberError("the zip is damaged: no member header where its directory says")
    start = _LOCAL_HEADER.size + name_length + extra_length
    info = zipfile.ZipInfo(name)
    info.compress_type, info.flag_bits, info.CRC = member.method, member.flags, member.crc
    info.compress_size, info.file_size = member.compressed, member.size
    try:
        with zipfile.ZipExtFile(io.BytesIO(raw[start:start + member.compressed]), "r", info) as data:
            return data.read(limit + 1)
    except NotImplementedError as exc:  # a compression method zipfile lacks
        raise ZipMemberError(f"it cannot be read from the zip ({exc})") from None
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        raise ZipMemberError(f"it is damaged inside the zip ({exc})") from None
