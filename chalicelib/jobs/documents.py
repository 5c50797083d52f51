"""Jobs whose input is many documents (scan): planning them into chunks of a
few documents each, and reading one chunk's documents in a worker.

The input is a zip of documents, a zip holding a manifest beside its
documents, or a manifest (CSV or Excel) of S3 keys. A zip is never
downloaded whole: the dispatcher reads its directory once, with ranged reads,
and each chunk message says where its members lie, so a worker fetches only
their bytes (sources/zip_members). Whatever goes wrong with one document
(missing, too big, encrypted, damaged) is that document's error, raised as
DocumentError when the processor asks for it; the chunk and job go on.
"""
from __future__ import annotations

import concurrent.futures as cf
import csv
import io
import mimetypes
import posixpath
import tempfile
import zipfile
from collections.abc import Iterator
from typing import Any

from ..observability.logs import carry
from ..scan.codes import normalise_codes
from ..scan.extract import DocumentError
from ..scan.manifest import MAX_DOCUMENTS, Manifest, read_manifest
from ..sources.excel import iter_xlsx_rows
from ..sources.ranged import open_ranged
from ..sources.sniff import describe_kind, detect_encoding
from ..sources.zip_members import ZipMember, ZipMemberError, inflate, list_documents, runs
from .model import ChunkSource, ChunkTask, InputError, Job
from .pipeline import Pipeline, work_prefix

MANIFEST_NAMES = ("manifest.csv", "manifest.xlsx")
MANIFEST_MAX_BYTES = 50 * 1024 * 1024
#: larger documents are a per-document error: a 512 MB worker holds one at a time
DOCUMENT_MAX_BYTES = 50 * 1024 * 1024
#: codes travel in each chunk message up to this size, else in a work file
#: (an SQS message stops at 256 KB)
INLINE_CODES_BYTES = 32 * 1024
#: one ranged read fetches neighbouring members up to this many bytes
MEMBER_RUN_BYTES = 64 * 1024 * 1024
#: documents copied out of a zip at once, and the bytes they may hold waiting
COPY_THREADS = 8
COPY_PENDING_BYTES = 128 * 1024 * 1024
# S3 prefixes a manifest may not point into: the pipeline's own files.
_INTERNAL_PREFIXES = ("work/", "results/")


# -- planning ------------------------------------------------------------------

def plan_documents(pipe: Pipeline, job: Job, kind: str, fan_out: Any) -> int:
    """Send one chunk per `documents_per_chunk` documents; returns how many
    documents the job has."""
    members: list[ZipMember | None] = []
    if kind == "zip":
        names, members, manifest = _zip_listing(pipe, job)
        container = "zip"
    elif kind in ("csv", "xlsx"):
        manifest = _manifest_from_table(pipe, job, kind)
        names, container = [_key_of(pipe, name) for name in manifest.documents], "keys"
    else:
        raise InputError(f"this is {describe_kind(kind)}; the scan processor reads a zip of documents "
                         "or a manifest (CSV or Excel) listing them")
    options = _task_options(pipe, job, manifest)
    per_chunk = int(job.options.get("documents_per_chunk") or 10)
    for first in range(0, len(names), per_chunk):
        end = first + per_chunk
        located = tuple(m.to_message() if m else None for m in members[first:end])
        fan_out.add(ChunkTask(job.job_id, fan_out.next_index, job.processor, options=options,
                              source=ChunkSource(key=job.source_key if container == "zip" else "",
                                                 first_row=first + 1, documents=tuple(names[first:end]),
                                                 container=container, members=located)))
    return len(names)


def _zip_listing(pipe: Pipeline, job: Job) -> tuple[list[str], list[ZipMember | None], Manifest | None]:
    """The documents to scan, in the order they lie in the zip (so a chunk's
    members are neighbours, fetched in one read) or the manifest's order."""
    try:
        with zipfile.ZipFile(open_ranged(pipe.blobs, job.source_key)) as archive:
            documents = dict(list_documents(archive))
            manifest_member = next((m for m in documents if m.casefold() in MANIFEST_NAMES), None)
            if manifest_member is None:
                if not documents:
                    raise InputError("the zip holds no documents")
                if len(documents) > MAX_DOCUMENTS:
                    raise InputError(f"the zip holds {len(documents):,} documents; a job scans at most "
                                     f"{MAX_DOCUMENTS:,}: split it into several zips")
                return list(documents), list(documents.values()), None
            manifest = _read_zip_manifest(job, archive, manifest_member)
    except zipfile.BadZipFile as exc:
        raise InputError(f"the zip is damaged ({exc})") from None
    by_base: dict[str, list[str]] = {}
    for member in documents:
        by_base.setdefault(posixpath.basename(member), []).append(member)
    # A manifest may name documents by path or, when that is unambiguous, by
    # file name alone; a name not in the zip stays as it is and is that
    # document's error when a worker looks for it.
    names = list(dict.fromkeys(
        name if name in documents or len(by_base.get(name, ())) != 1 else by_base[name][0]
        for name in manifest.documents))
    return names, [documents.get(name) for name in names], manifest


def _read_zip_manifest(job: Job, archive: zipfile.ZipFile, member: str) -> Manifest:
    info = archive.getinfo(member)
    if info.file_size > MANIFEST_MAX_BYTES:
        raise InputError(f"{member} is {info.file_size:,} bytes; a manifest may be at most "
                         f"{MANIFEST_MAX_BYTES:,}")
    data = archive.read(member)
    kind = "xlsx" if member.casefold().endswith(".xlsx") else "csv"
    try:
        return _parse_manifest(job, data, kind)
    except InputError as exc:
        raise InputError(f"{member}: {exc}") from None


def _manifest_from_table(pipe: Pipeline, job: Job, kind: str) -> Manifest:
    size = pipe.blobs.head(job.source_key).size
    if size > MANIFEST_MAX_BYTES:
        raise InputError(f"the manifest is {size:,} bytes; a manifest may be at most {MANIFEST_MAX_BYTES:,}")
    return _parse_manifest(job, pipe.blobs.get(job.source_key), kind)


def _parse_manifest(job: Job, data: bytes, kind: str) -> Manifest:
    columns = {"document_column": job.options.get("document_column"),
               "codes_column": job.options.get("codes_column")}
    if kind == "xlsx":
        with tempfile.NamedTemporaryFile(suffix=".xlsx") as tmp:
            tmp.write(data)
            tmp.flush()
            return read_manifest(iter_xlsx_rows(tmp.name, job.options.get("sheet")), **columns)
    return read_manifest(_csv_rows(data), **columns)


def _csv_rows(data: bytes) -> Iterator[tuple[int, list[str]]]:
    encoding = detect_encoding(data[:64 * 1024], complete=True)
    try:
        text = data.decode("utf-8-sig" if encoding.startswith("utf-8") else encoding)
    except UnicodeDecodeError as exc:
        raise InputError(f"the manifest is not valid {encoding} text ({exc.reason})") from None
    yield from enumerate(csv.reader(io.StringIO(text, newline="")), start=1)


def _key_of(pipe: Pipeline, name: str) -> str:
    """A manifest entry as a key of the bucket: `s3://<bucket>/<key>` or a
    plain key. Another bucket stays as written and fails when read."""
    prefix = f"s3://{pipe.settings.bucket}/"
    return name[len(prefix):] if name.startswith(prefix) else name.lstrip("/")


def _task_options(pipe: Pipeline, job: Job, manifest: Manifest | None) -> dict[str, Any]:
    given = job.options.get("target_hole_codes")
    if given:
        codes = normalise_codes(given)
    elif manifest is not None and manifest.codes:
        codes = normalise_codes(manifest.codes)
    else:
        raise InputError("no codes to look for: give options.target_hole_codes, or a "
                         "target_hole_codes column in the manifest")
    options = {k: v for k, v in job.options.items() if k != "target_hole_codes"}
    encoded = ",".join(codes)
    if len(encoded.encode()) <= INLINE_CODES_BYTES:
        options["target_hole_codes"] = codes
    else:
        key = work_prefix(job.job_id) + "codes.txt"
        pipe.blobs.put(key, "\n".join(codes).encode(), content_type="text/plain")
        options["target_hole_codes_key"] = key
    return options


def task_codes(pipe: Pipeline, options: dict[str, Any]) -> list[str]:
    """The target codes of a chunk message, inline or from their work file."""
    if "target_hole_codes_key" in options:
        return pipe.blobs.get(options["target_hole_codes_key"]).decode().split("\n")
    return list(options.get("target_hole_codes") or [])


# -- reading one chunk's documents ----------------------------------------------

class ChunkDocuments:
    """The documents of one chunk: `read(name)` and `link(name)` for the
    processor. Zip members are fetched a run of neighbours at a time, on
    first need; only the current run is held."""

    def __init__(self, pipe: Pipeline, task: ChunkTask):
        self._pipe = pipe
        self._task = task
        source = task.source
        self._members = {name: ZipMember.from_message(m) if m else None
                         for name, m in zip(source.documents, source.members or
                                            [None] * len(source.documents), strict=True)}
        # Members over the size limit are refused before anything is fetched.
        fetchable = [m if m and m.size <= DOCUMENT_MAX_BYTES else None for m in self._members.values()]
        self._run_of = {position: (start, end) for start, end, positions in
                        runs(fetchable, MEMBER_RUN_BYTES) for position in positions}
        self._positions = {name: p for p, name in enumerate(self._members)}
        self._run: tuple[int, int, bytes] | None = None
        self._last: tuple[str, bytes] | None = None
        self._copies = _BackgroundPuts(pipe)

    def __enter__(self) -> ChunkDocuments:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self._run = None
        # The chunk is only counted (and its links pushed) once every copy
        # landed; a copy that failed fails the chunk, and the queue retries it.
        self._copies.finish(raise_errors=exc_type is None)

    def read(self, name: str) -> bytes:
        data = self._read_member(name) if self._task.source.container == "zip" else self._read_key(name)
        self._last = (name, data)
        return data

    def link(self, name: str) -> str:
        """A presigned link to the document. A zip member is first copied out
        of the zip (under results/, which lives as long as the report), so
        the link opens that one document."""
        seconds = self._pipe.settings.presign_seconds
        if self._task.source.container != "zip":
            return self._pipe.blobs.presign_get(name, seconds)
        key = f"results/{self._task.job_id}/documents/{_safe_path(name)}"
        data = self._last[1] if self._last and self._last[0] == name else self.read(name)
        self._copies.put(key, data, mimetypes.guess_type(name)[0] or "application/octet-stream")
        # A presigned URL is computed, not fetched: it is valid before the copy lands.
        return self._pipe.blobs.presign_get(key, seconds)

    def _read_member(self, name: str) -> bytes:
        member = self._members.get(name)
        if member is None:
            raise DocumentError("it is not in the zip")
        _check_size(member.size)
        start, end = self._run_of[self._positions[name]]
        if self._run is None or self._run[:2] != (start, end):
            self._run = (start, end, self._pipe.blobs.read_range(self._task.source.key, start, end))
        raw = self._run[2][member.offset - start:member.end - start]
        try:
            data = inflate(name, member, raw, DOCUMENT_MAX_BYTES)
        except ZipMemberError as exc:
            raise DocumentError(str(exc)) from None
        _check_size(len(data))
        return data

    def _read_key(self, key: str) -> bytes:
        if key.startswith("s3://"):
            raise DocumentError(f"it is in another bucket; list keys of s3://{self._pipe.settings.bucket}/")
        if not key or key.startswith(_INTERNAL_PREFIXES):
            raise DocumentError("it is not a document this job may read (Sluice's own work and "
                                "result files are off limits)")
        try:
            info = self._pipe.blobs.head(key)
        except (KeyError, InputError):  # S3's "no such key"; the memory store's
            raise DocumentError("there is no such key in the bucket") from None
        _check_size(info.size)
        return self._pipe.blobs.get(key)


class _BackgroundPuts:
    """Copies written beside the scanning: each PUT waits on S3 for tens of
    milliseconds, and a chunk of ten documents may hold thirty matches."""

    def __init__(self, pipe: Pipeline):
        self._pipe = pipe
        self._pool: cf.ThreadPoolExecutor | None = None
        self._pending: list[tuple[cf.Future, int]] = []

    def put(self, key: str, data: bytes, content_type: str) -> None:
        if self._pool is None:
            self._pool = cf.ThreadPoolExecutor(COPY_THREADS, thread_name_prefix="copy")
        # Bounded memory: wait for the oldest copies while too many bytes wait.
        while self._pending and sum(size for _, size in self._pending) + len(data) > COPY_PENDING_BYTES:
            self._pending.pop(0)[0].result()
        # carry: a line the copy logs (a retried PUT) still names its job and chunk.
        future = self._pool.submit(carry(self._pipe.blobs.put), key, data, content_type=content_type)
        self._pending.append((future, len(data)))

    def finish(self, raise_errors: bool) -> None:
        if self._pool is None:
            return
        try:
            for future, _ in self._pending:
                error = future.exception()
                if error is not None and raise_errors:
                    raise error
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool, self._pending = None, []


def _check_size(size: int) -> None:
    if size > DOCUMENT_MAX_BYTES:
        raise DocumentError(f"the document is over {DOCUMENT_MAX_BYTES // 2**20} MB; documents of at "
                            f"most {DOCUMENT_MAX_BYTES // 2**20} MB are scanned")


def _safe_path(name: str) -> str:
    """A zip member's path as a key suffix: no absolute paths, no '..'."""
    parts = [p for p in posixpath.normpath(name.replace("\\", "/")).split("/") if p not in ("", ".", "..")]
    return "/".join(parts) or "document"
