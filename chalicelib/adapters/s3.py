"""Files in one S3 bucket."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError

from ..jobs.model import InputError, ServiceError
from ..jobs.ports import ObjectInfo

_MISSING = {"NoSuchKey", "404", "NotFound"}


@contextlib.contextmanager
def _translated(key: str):
    """botocore's errors as the domain's: a missing object is the user's
    problem (it was deleted), anything else is worth a retry."""
    try:
        yield
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _MISSING:
            raise InputError(f"s3 object {key} does not exist (was it deleted?)") from None
        raise ServiceError(f"S3 failed on {key}: {exc}") from exc
    except (BotoCoreError, S3UploadFailedError) as exc:  # the latter: upload_file's ClientError
        raise ServiceError(f"S3 failed on {key}: {exc}") from exc


class S3BlobStore:
    def __init__(self, client, bucket: str):
        self._s3 = client
        self.bucket = bucket

    def head(self, key: str) -> ObjectInfo:
        with _translated(key):
            resp = self._s3.head_object(Bucket=self.bucket, Key=key)
        return ObjectInfo(
            key=key,
            size=resp["ContentLength"],
            content_type=resp.get("ContentType", ""),
            metadata=resp.get("Metadata", {}),
        )

    def get(self, key: str) -> bytes:
        with _translated(key):
            return self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def read_range(self, key: str, start: int, end: int | None) -> bytes:
        if end is not None and end <= start:
            return b""
        # HTTP ranges are inclusive; ours are [start, end).
        byte_range = f"bytes={start}-" if end is None else f"bytes={start}-{end - 1}"
        with _translated(key):
            return self._s3.get_object(Bucket=self.bucket, Key=key, Range=byte_range)["Body"].read()

    def iter_blocks(self, key: str, block_size: int) -> Iterator[bytes]:
        with _translated(key):
            body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"]
            try:
                yield from body.iter_chunks(block_size)
            finally:
                body.close()

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream",
            metadata: dict[str, str] | None = None) -> None:
        with _translated(key):
            self._s3.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type,
                Metadata=metadata or {},
            )

    def download_to(self, key: str, path: str) -> None:
        with _translated(key):
            self._s3.download_file(self.bucket, key, path)

    def upload_from(self, path: str, key: str, content_type: str = "text/csv") -> None:
        with _translated(key):
            self._s3.upload_file(path, self.bucket, key, ExtraArgs={"ContentType": content_type})

    def delete_prefix(self, prefix: str) -> int:
        deleted = 0
        paginator = self._s3.get_paginator("list_objects_v2")
        with _translated(prefix):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
                if keys:
                    self._s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
                    deleted += len(keys)
        return deleted

    def presign_get(self, key: str, seconds: int, filename: str | None = None) -> str:
        params = {"Bucket": self.bucket, "Key": key}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        return self._s3.generate_presigned_url("get_object", Params=params, ExpiresIn=seconds)

    def presign_post(self, key: str, max_bytes: int, metadata: dict[str, str],
                     seconds: int) -> dict:
        fields = {f"x-amz-meta-{k}": v for k, v in metadata.items()}
        conditions = [["content-length-range", 1, max_bytes]]
        conditions += [{name: value} for name, value in fields.items()]
        return self._s3.generate_presigned_post(
            Bucket=self.bucket, Key=key, Fields=fields, Conditions=conditions,
            ExpiresIn=seconds,
        )
