"""Names and limits, read once from the environment.

Every resource name has a default that matches infra/template.yaml's local
stage, so tests and `chalice local` work without any configuration.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    bucket: str
    table: str
    work_queue: str
    aggregate_queue: str
    # The API Gateway/Lambda request limit is 6 MB; bigger files go through POST /uploads.
    api_max_body_bytes: int
    # Presigned POST size range.
    upload_max_bytes: int
    # A CSV chunk is about this many bytes: large enough that AWS calls stay well
    # under a few hundred per million rows, small enough for a 512 MB Lambda.
    chunk_bytes: int
    # Excel and re-encoded text are rewritten into chunk files of this many rows.
    chunk_rows: int
    job_ttl_days: int
    presign_seconds: int

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            bucket=os.environ.get("SLUICE_BUCKET", "sluice-local-data"),
            table=os.environ.get("SLUICE_TABLE", "sluice-local-jobs"),
            work_queue=os.environ.get("SLUICE_WORK_QUEUE", "sluice-local-work"),
            aggregate_queue=os.environ.get("SLUICE_AGGREGATE_QUEUE", "sluice-local-aggregate"),
            api_max_body_bytes=_int("SLUICE_API_MAX_BODY_BYTES", 5 * 1024 * 1024),
            upload_max_bytes=_int("SLUICE_UPLOAD_MAX_BYTES", 5 * 1024**3),
            chunk_bytes=_int("SLUICE_CHUNK_BYTES", 8 * 1024 * 1024),
            chunk_rows=_int("SLUICE_CHUNK_ROWS", 100_000),
            job_ttl_days=_int("SLUICE_JOB_TTL_DAYS", 14),
            presign_seconds=_int("SLUICE_PRESIGN_SECONDS", 3600),
        )


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
