"""A read-only, seekable file over an object in the blob store, read in
ranges: zipfile can list a 2 GB archive or pull one member out of it by
reading a few hundred KB, never the whole object."""
from __future__ import annotations

import io

from ..jobs.ports import BlobStore

BUFFER_BYTES = 1024 * 1024


class RangeReader(io.RawIOBase):
    def __init__(self, blobs: BlobStore, key: str, size: int | None = None):
        self._blobs = blobs
        self._key = key
        self._size = blobs.head(key).size if size is None else size
        self._pos = 0
        self.error: Exception | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:
        if self._pos >= self._size:
            return 0
        end = min(self._pos + len(buffer), self._size)
        try:
            data = self._blobs.read_range(self._key, self._pos, end)
        except Exception as exc:
            # A C library reading through this file (pdfium) swallows the
            # exception and reports a damaged file instead: keep it, so the
            # caller can raise it as what it was (a throttled read is retried).
            self.error = self.error or exc
            raise
        buffer[:len(data)] = data
        self._pos += len(data)
        return len(data)


def open_ranged(blobs: BlobStore, key: str, size: int | None = None) -> io.BufferedReader:
    return io.BufferedReader(RangeReader(blobs, key, size), buffer_size=BUFFER_BYTES)


def read_error(stream: io.BufferedReader) -> Exception | None:
    """The first error a read of `stream` (from open_ranged) met, if any."""
    return getattr(stream.raw, "error", None)
