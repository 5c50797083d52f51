"""In-memory implementations of the ports, for unit tests and experiments.

They keep the same promises as the AWS adapters (conditional transitions,
chunk settling as one atomic step) and pass the same contract tests.
"""
from __future__ import annotations

import copy
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from .model import ChunkStatus, Job, JobNotFoundError, JobStatus, TransitionRejectedError, utc_now
from .ports import JobRecord, ObjectInfo


class MemoryBlobStore:
    def __init__(self):
        self.objects: dict[str, tuple[bytes, str, dict[str, str]]] = {}

    def head(self, key: str) -> ObjectInfo:
        data, ctype, meta = self._get(key)
        return ObjectInfo(key=key, size=len(data), content_type=ctype, metadata=dict(meta))

    def _get(self, key):
        try:
            return self.objects[key]
        except KeyError:
            raise KeyError(f"no object {key!r}") from None

    def get(self, key: str) -> bytes:
        return self._get(key)[0]

    def read_range(self, key: str, start: int, end: int | None) -> bytes:
        return self._get(key)[0][start:end]

    def iter_blocks(self, key: str, block_size: int) -> Iterator[bytes]:
        data = self._get(key)[0]
        for i in range(0, len(data), block_size):
            yield data[i:i + block_size]

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream",
            metadata: dict[str, str] | None = None) -> None:
        self.objects[key] = (bytes(data), content_type, dict(metadata or {}))

    def download_to(self, key: str, path: str) -> None:
        with open(path, "wb") as fh:
            fh.write(self.get(key))

    def upload_from(self, path: str, key: str, content_type: str = "text/csv") -> None:
        with open(path, "rb") as fh:
            self.put(key, fh.read(), content_type)

    def presign_get(self, key: str, seconds: int, filename: str | None = None) -> str:
        # As S3's: computed, not looked up; the object may come later (or never).
        return f"memory://{key}?expires={seconds}"

    def delete_prefix(self, prefix: str) -> int:
        doomed = [k for k in self.objects if k.startswith(prefix)]
        for key in doomed:
            del self.objects[key]
        return len(doomed)


class MemoryTaskQueue:
    def __init__(self):
        self.messages: list[dict[str, Any]] = []
        self.delays: list[int] = []

    def send_all(self, messages: Iterable[dict[str, Any]]) -> int:
        batch = [copy.deepcopy(m) for m in messages]
        self.messages.extend(batch)
        return len(batch)

    def send(self, message: dict[str, Any], delay_seconds: int = 0) -> None:
        self.delays.append(delay_seconds)
        self.messages.append(copy.deepcopy(message))

    def drain(self) -> list[dict[str, Any]]:
        out, self.messages = self.messages, []
        return out


class MemoryJobStore:
    def __init__(self):
        self._lock = threading.Lock()
        self.jobs: dict[str, Job] = {}
        self.chunks: dict[str, dict[int, dict[str, Any]]] = {}
        self.records: dict[tuple[str, str], dict[str, Any]] = {}

    def create_job(self, job: Job, ttl_epoch: int) -> bool:
        with self._lock:
            if job.job_id in self.jobs:
                return False
            self.jobs[job.job_id] = copy.deepcopy(job)
            self.chunks[job.job_id] = {}
            return True

    def get_job(self, job_id: str) -> Job:
        with self._lock:
            return copy.deepcopy(self._job(job_id))

    def _job(self, job_id: str) -> Job:
        try:
            return self.jobs[job_id]
        except KeyError:
            raise JobNotFoundError(f"no job with id {job_id!r}") from None

    def list_jobs(self, limit: int = 50, tenant: str = "default") -> list[Job]:
        with self._lock:
            jobs = [j for j in self.jobs.values() if j.tenant == tenant]
        jobs.sort(key=lambda j: (j.created_at, j.job_id), reverse=True)
        return [copy.deepcopy(j) for j in jobs[:limit]]

    def transition(self, job_id: str, from_statuses: Iterable[str], to_status: str,
                   record: JobRecord | None = None, **fields: Any) -> Job:
        allowed = set(from_statuses)
        with self._lock:
            job = self._job(job_id)
            if job.status.value not in allowed:
                raise TransitionRejectedError(
                    f"job {job_id} is {job.status.value}, not one of {sorted(allowed)}")
            job.status = JobStatus(to_status)
            job.updated_at = utc_now()
            for name, value in fields.items():
                setattr(job, name, copy.deepcopy(value))
            if record is not None:
                self._put_record(job_id, record.sort_key, record.item)
            return copy.deepcopy(job)

    def put_chunks(self, job_id: str, chunks: list[dict[str, Any]], ttl_epoch: int) -> None:
        with self._lock:
            table = self.chunks.setdefault(job_id, {})
            for chunk in chunks:
                if chunk["index"] not in table:
                    table[chunk["index"]] = {**copy.deepcopy(chunk), "status": ChunkStatus.PENDING.value}

    def complete_chunk(self, job_id: str, index: int, rows: int, result_key: str,
                       open_statuses: Iterable[str], summary: dict[str, Any] | None = None) -> bool:
        return self._settle(job_id, index, open_statuses,
                            {"status": ChunkStatus.DONE.value, "rows": rows, "result_key": result_key,
                             **({"summary": copy.deepcopy(summary)} if summary else {})},
                            done=1, rows=rows)

    def fail_chunk(self, job_id: str, index: int, error: str,
                   open_statuses: Iterable[str]) -> bool:
        return self._settle(job_id, index, open_statuses,
                            {"status": ChunkStatus.FAILED.value, "error": error}, failed=1)

    def _settle(self, job_id, index, open_statuses, changes, done=0, failed=0, rows=0) -> bool:
        with self._lock:
            chunk = self.chunks.get(job_id, {}).get(index)
            if chunk is None or chunk["status"] != ChunkStatus.PENDING.value:
                return False
            job = self._job(job_id)
            if job.status.value not in set(open_statuses):
                raise TransitionRejectedError(f"job {job_id} is not open for work")
            chunk.update(changes, settled_at=utc_now())
            job.chunks_done += done
            job.chunks_failed += failed
            job.rows_done += rows
            job.updated_at = utc_now()
            return True

    def list_chunks(self, job_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(c) for _, c in sorted(self.chunks.get(job_id, {}).items())]

    def get_chunk(self, job_id: str, index: int) -> dict[str, Any] | None:
        with self._lock:
            return copy.deepcopy(self.chunks.get(job_id, {}).get(index))

    def note_chunk_error(self, job_id: str, index: int, error: str) -> None:
        with self._lock:
            chunk = self.chunks.get(job_id, {}).get(index)
            if chunk is not None and chunk["status"] == ChunkStatus.PENDING.value:
                chunk.update(last_error=error, last_error_at=utc_now(),
                             attempts=chunk.get("attempts", 0) + 1)

    def retry_chunks(self, job_id: str, indexes: list[int], from_statuses: Iterable[str],
                     ttl_epoch: int) -> Job:
        with self._lock:
            job = self._job(job_id)
            if job.status.value not in set(from_statuses):
                raise TransitionRejectedError(
                    f"job {job_id} is {job.status.value}, not one of {sorted(from_statuses)}")
            table = self.chunks.get(job_id, {})
            if any(table.get(i, {}).get("status") != ChunkStatus.FAILED.value for i in indexes):
                raise TransitionRejectedError(f"job {job_id}: not every chunk to retry has failed")
            for index in indexes:
                chunk = table[index]
                chunk["last_error"] = chunk.pop("error", None)
                chunk.pop("settled_at", None)
                chunk["status"] = ChunkStatus.PENDING.value
            job.status = JobStatus.PROCESSING
            job.chunks_failed -= len(indexes)
            job.error = job.finished_at = None
            job.updated_at = utc_now()
            return copy.deepcopy(job)

    def list_open_jobs(self) -> list[Job]:
        with self._lock:
            return [copy.deepcopy(j) for _, j in sorted(self.jobs.items()) if not j.status.is_final]

    def put_record(self, job_id: str, sort_key: str, item: dict[str, Any], ttl_epoch: int) -> None:
        with self._lock:
            self._put_record(job_id, sort_key, item)

    def _put_record(self, job_id: str, sort_key: str, item: dict[str, Any]) -> None:
        self.records[(job_id, sort_key)] = {k: copy.deepcopy(v) for k, v in item.items() if v is not None}

    def get_record(self, job_id: str, sort_key: str) -> dict[str, Any] | None:
        with self._lock:
            record = self.records.get((job_id, sort_key))
            return copy.deepcopy(record) if record is not None else None
