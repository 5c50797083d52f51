"""A multipart/form-data body that streams its file from disk.

requests builds `files=` bodies in memory, which a 2 GB upload cannot afford.
This body is an iterable with a length: requests sends it with a
Content-Length (S3's POST refuses chunked bodies) and reads the file one
block at a time.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

BLOCK_BYTES = 1024 * 1024


class FileChangedError(Exception):
    """The file got shorter between measuring it and sending it."""


class MultipartFileBody:
    """`fields` in their order, then the file as the form field `file_field`
    (S3 requires the file to come last: it ignores fields after it)."""

    def __init__(self, fields: Mapping[str, str], path: Path, file_field: str = "file",
                 block_bytes: int = BLOCK_BYTES):
        self.path = Path(path)
        self.boundary = uuid.uuid4().hex
        self._block_bytes = block_bytes
        self._file_bytes = os.stat(self.path).st_size
        parts = [self._part_header(f'name="{_quoted(name)}"') + str(value).encode() + b"\r\n"
                 for name, value in fields.items()]
        parts.append(self._part_header(
            f'name="{_quoted(file_field)}"; filename="{_quoted(self.path.name)}"',
            "Content-Type: application/octet-stream\r\n"))
        self._head = b"".join(parts)
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return len(self._head) + self._file_bytes + len(self._tail)

    def __iter__(self) -> Iterator[bytes]:
        yield self._head
        left = self._file_bytes
        with self.path.open("rb") as file:
            while left > 0:
                block = file.read(min(self._block_bytes, left))
                if not block:
                    raise FileChangedError(f"{self.path} got shorter while it was being uploaded")
                left -= len(block)
                yield block
        yield self._tail

    def _part_header(self, disposition: str, extra: str = "") -> bytes:
        return (f"--{self.boundary}\r\nContent-Disposition: form-data; {disposition}\r\n"
                f"{extra}\r\n").encode()


def _quoted(text: str) -> str:
    # A quote or line break would end the header early; browsers (WHATWG) escape them so.
    return text.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
